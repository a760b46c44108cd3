package ocm

import (
	"encoding/json"
)

// Notification types of the spec, plus the ones real peers send.
const (
	ShareAccepted           = "SHARE_ACCEPTED"
	ShareDeclined           = "SHARE_DECLINED"
	ShareUnshared           = "SHARE_UNSHARED"
	RequestReshare          = "REQUEST_RESHARE"
	ReshareUndo             = "RESHARE_UNDO"
	ReshareChangePermission = "RESHARE_CHANGE_PERMISSION"
	ShareChangePermission   = "SHARE_CHANGE_PERMISSION" // oCIS
	UserRemoved             = "USER_REMOVED"
)

// KnownNotification reports whether t is a notification type we handle;
// others are answered with 501 per the spec.
func KnownNotification(t string) bool {
	switch t {
	case ShareAccepted, ShareDeclined, ShareUnshared, RequestReshare, ReshareUndo,
		ReshareChangePermission, ShareChangePermission, UserRemoved:
		return true
	}
	return false
}

// Notification is a POST /notifications body.
type Notification struct {
	NotificationType string          `json:"notificationType"`
	ResourceType     string          `json:"resourceType"`
	ProviderID       string          `json:"providerId"`
	Notification     json.RawMessage `json:"notification,omitempty"`
}

// ParseNotification decodes and validates a notification body. An unknown
// type is not an error here: the caller answers it with 501.
func ParseNotification(body []byte) (*Notification, error) {
	m, err := parseObject(body)
	if err != nil {
		return nil, err
	}
	var errs ValidationErrors
	f := fields{m: m, errs: &errs}
	n := &Notification{
		NotificationType: f.str("notificationType", 64),
		ResourceType:     f.str("resourceType", 64),
		ProviderID:       f.id("providerId"),
	}
	for k, v := range map[string]string{"notificationType": n.NotificationType, "resourceType": n.ResourceType, "providerId": n.ProviderID} {
		if v == "" && !hasErr(errs, k) {
			errs.Add(k, "is required")
		}
	}
	if raw, ok := m["notification"]; ok && string(raw) != "null" {
		if _, ok := f.object("notification"); ok {
			n.Notification = raw
		}
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return n, nil
}

// NotificationPayload is the optional inner object of a notification.
type NotificationPayload struct {
	Message      string `json:"message,omitempty"`
	SharedSecret string `json:"sharedSecret,omitempty"`
}
