package vfs

import (
	"context"
	"net/http"
)

// CredentialInvalidator is an Authorizer that can be told which
// credential got a 401, so that it drops that one however young it is and
// ignores 401s to a credential it already replaced.
type CredentialInvalidator interface {
	InvalidateCredential(shareID, header string)
}

// invalidate reports a 401 to resp's request to a.
func invalidate(a Authorizer, shareID string, resp *http.Response) {
	if ci, ok := a.(CredentialInvalidator); ok && resp != nil && resp.Request != nil {
		ci.InvalidateCredential(shareID, resp.Request.Header.Get("Authorization"))
		return
	}
	a.Invalidate(shareID)
}

// Authorizer sets credentials on WebDAV requests of a share.
type Authorizer interface {
	// Authorize sets the Authorization header of req.
	Authorize(ctx context.Context, shareID string, req *http.Request) error
	// Invalidate is called after a 401; the next Authorize renews (once).
	Invalidate(shareID string)
}
