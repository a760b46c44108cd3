package agent

import (
	"reflect"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/control"
	"github.com/ocm-agent/ocm-agent/store"
)

// filled returns a T whose every field holds a value that is not zero.
func filled[T any](t *testing.T) T {
	t.Helper()
	var v T
	rv := reflect.ValueOf(&v).Elem()
	for i := 0; i < rv.NumField(); i++ {
		f := rv.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(rv.Type().Field(i).Name)
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Int, reflect.Int64:
			f.SetInt(int64(i + 1))
		case reflect.Slice:
			if f.Type().Elem().Kind() != reflect.String {
				continue // byte slices such as a token hash stay inside
			}
			f.Set(reflect.ValueOf([]string{rv.Type().Field(i).Name}))
		case reflect.Struct:
			if f.Type() == reflect.TypeOf(time.Time{}) {
				f.Set(reflect.ValueOf(time.Unix(int64(1700000000+i), 0).UTC()))
			}
		default:
			t.Fatalf("field %s of %T: add its kind here", rv.Type().Field(i).Name, v)
		}
	}
	return v
}

// checkCopied says which fields of the wire value w were not filled from
// the row.
func checkCopied(t *testing.T, w any) {
	t.Helper()
	rv := reflect.ValueOf(w)
	for i := 0; i < rv.NumField(); i++ {
		if rv.Field(i).IsZero() {
			t.Errorf("%s.%s is never set from the store's row: copy it in agent/controlapi.go", rv.Type(), rv.Type().Field(i).Name)
		}
	}
}

// TestControlTypesAreFilled: the conversions from store rows to the API's
// own types set every field of the API type (a field added to both and
// not copied would otherwise be silently empty).
func TestControlTypesAreFilled(t *testing.T) {
	checkCopied(t, shareToControl(filled[store.Share](t)))
	checkCopied(t, inviteToControl(filled[store.Invite](t)))
	checkCopied(t, contactToControl(filled[store.Contact](t)))
	sh := filled[store.Share](t)
	if got := shareToControl(sh); got.ID != sh.ID || got.NotifyState != sh.NotifyState || !got.CreatedAt.Equal(sh.CreatedAt) {
		t.Errorf("fields copied to the wrong places: %+v", got)
	}
}

// TestControlStatesAreTheStoreStates: the API names the states the store
// keeps, word for word.
func TestControlStatesAreTheStoreStates(t *testing.T) {
	for api, st := range map[string]string{
		control.InviteOpen: store.InviteOpen, control.InviteAccepted: store.InviteAccepted,
		control.InviteRevoked: store.InviteRevoked, control.InviteExpired: store.InviteExpired,
		control.ContactActive: store.ContactActive, control.ContactRemovedByPeer: store.ContactRemovedByPeer,
		control.SourceAcceptedOurInvite:   store.SourceAcceptedOurInvite,
		control.SourceAcceptedTheirInvite: store.SourceAcceptedTheirInvite,
	} {
		if api != st {
			t.Errorf("the API says %q where the store says %q", api, st)
		}
	}
}
