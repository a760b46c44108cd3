package vfs

import "net/http"

// noteRefusal tells OnRefused about answers that mean the sender stopped
// serving a share: a 401 although the credentials were just renewed
// (attempt > 0), or a 403/404 (which count only for the share root).
func (c *Client) noteRefusal(r Request, status, attempt int) {
	if c.OnRefused == nil || r.ShareID == "" {
		return
	}
	switch {
	case status == http.StatusUnauthorized && attempt > 0:
	case status == http.StatusForbidden || status == http.StatusNotFound:
	default:
		return
	}
	c.OnRefused(r.ShareID, r.URL, status)
}
