package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ocm-agent/ocm-agent/discovery"
	"github.com/ocm-agent/ocm-agent/ocm"
)

// Credentials (a share's secret, tokens exchanged for it, Basic) go only to
// the sender's own origin: the host of its OCM address, or a host its
// discovery document names (the origin the document came from, its
// endPoint). Anything else named by a share or a document is foreign, and
// a share pointing there would hand the secret to whoever runs it.

// errForeignOrigin marks a URL that is not on the sender's server.
var errForeignOrigin = errors.New("not on the sender's server")

// isAbsoluteHTTP reports whether s is an http or https URL.
func isAbsoluteHTTP(s string) bool {
	l := strings.ToLower(s)
	return strings.HasPrefix(l, "https://") || strings.HasPrefix(l, "http://")
}

// originKey is the host[:port] of an absolute http(s) URL, normalised, its
// scheme's default port dropped, so that it compares with a peer's host.
func originKey(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("%q is not an absolute http(s) URL", raw)
	}
	if u.User != nil {
		return "", fmt.Errorf("%q carries credentials", raw)
	}
	host := u.Host
	if h, port, err := net.SplitHostPort(host); err == nil &&
		((u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80")) {
		host = h
		if strings.Contains(h, ":") {
			host = "[" + h + "]"
		}
	}
	return ocm.NormalizeHost(host)
}

// onOrigins reports whether raw is on one of origins (host[:port] forms).
func onOrigins(raw string, origins []string) bool {
	k, err := originKey(raw)
	return err == nil && slices.Contains(origins, k)
}

// senderOrigins lists where the credentials of peer's shares may go: the
// peer itself and, from its discovery document res (may be nil), the
// origin the document came from and the origin of its endPoint.
func senderOrigins(peer string, res *discovery.Result) []string {
	var out []string
	if h, err := ocm.NormalizeHost(peer); err == nil {
		out = append(out, h)
	}
	if res != nil {
		for _, u := range []string{res.BaseURL, res.Doc.EndPoint} {
			if k, err := originKey(u); err == nil && !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
	}
	return out
}

// checkShareURI refuses an absolute webdav URI that is not on the sender's
// server. Most senders (reva) put it on the very host of their address,
// which needs no look-up; otherwise the sender's discovery decides.
func (a *Agent) checkShareURI(ctx context.Context, peer, uri string) error {
	if !isAbsoluteHTTP(uri) {
		return nil
	}
	if _, err := originKey(uri); err != nil {
		return invalid("protocol.webdav.uri", "must be a plain http(s) URL on the sender's server")
	}
	if onOrigins(uri, senderOrigins(peer, nil)) {
		return nil
	}
	dc := a.Discovery()
	if dc == nil {
		return a.foreignURI(peer, uri)
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := dc.Discover(dctx, peer)
	if err != nil {
		a.log.Info("could not check a share URI against the sender's discovery", "peer", peer, "err", err)
		return &Error{Status: http.StatusServiceUnavailable, Message: "the webdav uri is not on the sender's host, and the sender's discovery document could not be read to check it"}
	}
	if !onOrigins(uri, senderOrigins(peer, res)) {
		return a.foreignURI(peer, uri)
	}
	return nil
}

func (a *Agent) foreignURI(peer, uri string) error {
	host, _ := originKey(uri)
	a.log.Warn("share refused: its webdav uri is on another server than the sender's", "peer", peer, "uri_host", host)
	return invalid("protocol.webdav.uri", "is on "+host+", not on the sender's server "+peer+": a share's secret is only ever sent to the server that shared it")
}
