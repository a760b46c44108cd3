package agent

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/ocm-agent/ocm-agent/store"
	"github.com/ocm-agent/ocm-agent/tokens"
)

// A sender that does not sign can be impersonated by anyone, so a re-sent
// share (same sender and providerId) may change a live share (pending,
// accepted or in error) only when it is signed by the sender's key or
// carries the share's current secret: a stranger knows neither. A change
// to an accepted share forgets the cached credentials and is shown on it.
// A declined or removed share sent again is a new decision for the
// person, as any new share is.

// checkUpdate decides on sh, a re-send of prev (same sender and
// providerId). It refuses an unsigned re-send of a live share that does
// not prove the current secret. For an update of an accepted share it
// returns what the person should see ("" for anything else, or when
// nothing they care about changes) and accepted true.
func (a *Agent) checkUpdate(ctx context.Context, prev, sh store.Share, secret []byte, peer Peer) (change string, accepted bool, err error) {
	accepted = prev.State == store.StateAccepted
	if prev.State != store.StatePending && !accepted && prev.State != store.StateError {
		return "", false, nil // over: sent again, the person decides again
	}
	current, serr := a.secrets.Get(ctx, secretKey(prev.ID))
	if serr != nil && !errors.Is(serr, tokens.ErrSecretNotFound) {
		return "", false, a.unavailable("read a share's secret", serr) // the sender retries
	}
	sameSecret := serr == nil && subtle.ConstantTimeCompare(current, secret) == 1
	if !peer.Signed && !sameSecret {
		a.log.Warn("refused an unsigned change to a share that does not carry its current secret",
			"share", prev.ID, "peer", prev.Peer, "state", prev.State)
		return "", accepted, errorf(http.StatusForbidden, "this share was already received: changing it needs a request signed by the sending server, or one carrying the share's current sharedSecret")
	}
	if !accepted {
		return "", false, nil
	}
	return describeChange(prev, sh, !sameSecret, peer), true, nil
}

// describeChange says what an update changes in an accepted share, for
// the person ("" when it changes nothing they would care about).
func describeChange(prev, next store.Share, newSecret bool, peer Peer) string {
	var what []string
	if newSecret {
		what = append(what, "secret")
	}
	if prev.WebDAVURI != next.WebDAVURI {
		what = append(what, "address")
	}
	if !slices.Equal(prev.Permissions, next.Permissions) || prev.LegacyPermissions != next.LegacyPermissions {
		what = append(what, "permissions ("+strings.Join(next.Permissions, ", ")+")")
	}
	if !slices.Equal(prev.Requirements, next.Requirements) {
		what = append(what, "requirements")
	}
	if prev.Name != next.Name {
		what = append(what, "name (was "+prev.Name+")")
	}
	if len(what) == 0 {
		return ""
	}
	how := "with the share's secret"
	if peer.Signed {
		how = "signed"
	}
	return time.Now().UTC().Format(time.RFC3339) + " " + strings.Join(what, ", ") + " (" + how + ")"
}

// resetAccess drops what was obtained with a share's old secret or for
// its old address: cached headers, exchanged and refresh tokens. The
// secret itself stays (it was just stored).
func (a *Agent) resetAccess(ctx context.Context, id string) {
	a.mu.Lock()
	tm := a.tokenMgr
	a.mu.Unlock()
	if tm != nil {
		tm.Reset(id)
	}
	for _, k := range []string{"share/" + id + "/token", "share/" + id + "/refresh"} {
		if err := a.secrets.Delete(context.WithoutCancel(ctx), k); err != nil && !errors.Is(err, tokens.ErrSecretNotFound) {
			a.log.Warn("could not delete a share's old token", "share", id, "err", err)
		}
	}
}

// stripFormat removes Unicode format characters (bidi overrides and
// isolates, zero-width marks): in a name they make it read as something
// else ("Invoice\u202efdp.exe" shows as "Invoiceexe.pdf").
func stripFormat(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, s)
}
