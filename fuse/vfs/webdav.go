package vfs

import (
	"context"
	"net/http"
)

// WebDAV is the WebDAV client the core works through. *Client talks to real
// servers; the spool takes any implementation.
type WebDAV interface {
	// Do sends an authorized request; the caller closes the body.
	Do(ctx context.Context, r Request) (*http.Response, error)
	// Propfind lists u (Depth "0" or "1"), handing children to onChild as
	// they arrive when set.
	Propfind(ctx context.Context, shareID, u, depth string, onChild func(string, Info)) (*Listing, string, error)
	Head(ctx context.Context, shareID, u string) (Info, error)
	// Stat is a file's metadata: PROPFIND Depth 0, or HEAD where refused.
	Stat(ctx context.Context, shareID, u string) (Info, error)
	// GetRange reads len(buf) bytes of u from off.
	GetRange(ctx context.Context, shareID, u string, off int64, buf []byte, progress func(int)) (int, error)
	GetWhole(ctx context.Context, shareID, u string) (*http.Response, error)
	Mkcol(ctx context.Context, shareID, u string) error
	Remove(ctx context.Context, shareID, u string) error
	Move(ctx context.Context, shareID, src, dst string, overwrite bool) error
}

var _ WebDAV = (*Client)(nil)
