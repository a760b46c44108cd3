package vfs

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"

	"github.com/studio-b12/gowebdav"
)

// gowebdav serves MKCOL and DELETE. It has no context support, so each
// operation gets its own gowebdav.Client whose transport puts the operation's
// context on every request, and whose Authorizer asks ours for credentials and
// answers a 401 by invalidating them and sending the request once more.
// Its DELETE treats 404 as success (what unlink wants when the file is already
// gone) and its MKCOL treats 405 (exists) as success, so the caller checks the
// listing for an existing name first.

type ctxTransport struct {
	ctx context.Context
	rt  http.RoundTripper
}

func (t ctxTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.rt.RoundTrip(req.WithContext(t.ctx))
}

type gwAuthorizer struct {
	ctx     context.Context
	c       *Client
	shareID string
}

func (a *gwAuthorizer) NewAuthenticator(body io.Reader) (gowebdav.Authenticator, io.Reader) {
	return &gwAuthenticator{a: a}, body
}

func (a *gwAuthorizer) AddAuthenticator(string, gowebdav.AuthFactory) {}

type gwAuthenticator struct {
	a       *gwAuthorizer
	retried bool
}

func (g *gwAuthenticator) Authorize(_ *http.Client, rq *http.Request, _ string) error {
	if err := g.a.c.auth.Authorize(g.a.ctx, g.a.shareID, rq); err != nil {
		return &AuthError{Err: err}
	}
	return nil
}

func (g *gwAuthenticator) Verify(_ *http.Client, rs *http.Response, _ string) (bool, error) {
	if rs.StatusCode == http.StatusUnauthorized && !g.retried {
		g.retried = true
		invalidate(g.a.c.auth, g.a.shareID, rs)
		return true, nil
	}
	return false, nil
}

func (g *gwAuthenticator) Clone() gowebdav.Authenticator { return &gwAuthenticator{a: g.a} }
func (g *gwAuthenticator) Close() error                  { return nil }

// gowebdavFor returns a client rooted at the origin of target and the decoded
// path of target below it (gowebdav escapes each segment itself).
func (c *Client) gowebdavFor(ctx context.Context, shareID, target string) (*gowebdav.Client, string, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, "", fmt.Errorf("webdav url: %w", err)
	}
	root := u.Scheme + "://" + u.Host + "/"
	gc := gowebdav.NewAuthClient(root, &gwAuthorizer{ctx: ctx, c: c, shareID: shareID})
	rt := c.hc.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	gc.SetTransport(ctxTransport{ctx: ctx, rt: rt})
	return gc, u.Path, nil
}

// Mkcol creates the collection at target.
func (c *Client) Mkcol(ctx context.Context, shareID, target string) error {
	ctx, cancel := context.WithTimeoutCause(ctx, c.timeout, ErrTimeout)
	defer cancel()
	gc, p, err := c.gowebdavFor(ctx, shareID, target)
	if err != nil {
		return err
	}
	if err := gc.Mkdir(p, 0o755); err != nil {
		return gwErr(ctx, "MKCOL", err)
	}
	return nil
}

// Remove deletes target (a file, or a collection with everything in it).
func (c *Client) Remove(ctx context.Context, shareID, target string) error {
	ctx, cancel := context.WithTimeoutCause(ctx, c.timeout, ErrTimeout)
	defer cancel()
	gc, p, err := c.gowebdavFor(ctx, shareID, target)
	if err != nil {
		return err
	}
	if err := gc.Remove(p); err != nil {
		return gwErr(ctx, "DELETE", err)
	}
	return nil
}

// gwErr keeps status codes from gowebdav errors and notes a timeout (gowebdav
// reports transport failures of DELETE as a 400).
func gwErr(ctx context.Context, method string, err error) error {
	if context.Cause(ctx) == ErrTimeout {
		return fmt.Errorf("webdav %s: %w", method, ErrTimeout)
	}
	var pe *os.PathError
	if pe, _ = err.(*os.PathError); pe != nil {
		if se, ok := pe.Err.(gowebdav.StatusError); ok {
			if se.Status == http.StatusBadRequest && method == "DELETE" {
				return fmt.Errorf("webdav %s: transport failure", method)
			}
			return &StatusError{Method: method, Code: se.Status}
		}
		return fmt.Errorf("webdav %s: %w", method, scrubURLError(pe.Err))
	}
	return fmt.Errorf("webdav %s: %w", method, scrubURLError(err))
}
