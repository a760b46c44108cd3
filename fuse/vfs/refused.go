package vfs

import "net/http"

// noteRefusal tells OnRefused about answers that say whether the sender
// still serves a share: a 401 although the credentials were just renewed
// (attempt > 0), a 403/404 or a server error (which count only for the
// share root), and success after such errors.
func (c *Client) noteRefusal(r Request, status, attempt int) {
	if c.OnRefused == nil || r.ShareID == "" {
		return
	}
	switch {
	case status == http.StatusUnauthorized && attempt > 0:
	case status == http.StatusForbidden || status == http.StatusNotFound:
	case status >= 500 || (status >= 200 && status < 300):
	default:
		return
	}
	c.OnRefused(r.ShareID, r.URL, status)
}
