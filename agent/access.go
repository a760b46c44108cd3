package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/ocm-agent/ocm-agent/ocm"
	"github.com/ocm-agent/ocm-agent/store"
	"github.com/ocm-agent/ocm-agent/tokens"
)

// ShareAccess implements tokens.ShareAccessSource: how to reach one
// accepted share, from its stored row, its secret and the sender's
// discovery document.
func (a *Agent) ShareAccess(ctx context.Context, shareID string) (tokens.Access, error) {
	sh, err := a.store.Share(ctx, shareID)
	if err != nil {
		return tokens.Access{}, err
	}
	if sh.State != store.StateAccepted {
		return tokens.Access{}, fmt.Errorf("share %s is %s, not accepted", shareID, sh.State)
	}
	secret, err := a.ShareSecret(ctx, shareID)
	if err != nil {
		return tokens.Access{}, err
	}
	acc := tokens.Access{
		ShareID: sh.ID, Peer: sh.Peer, Secret: secret, ClientID: a.cfg.PublicHost(),
		MustExchange:  slices.Contains(sh.Requirements, ocm.RequireExchangeToken),
		LegacyCode:    sh.LegacyCode,
		LegacyOptions: sh.Dialect == string(ocm.DialectLegacyOptions),
	}
	if dc := a.Discovery(); dc != nil {
		res, err := dc.Discover(ctx, sh.Peer)
		switch {
		case err == nil:
			// The code goes to the token endpoint: only on the sender's origin.
			origins := senderOrigins(sh.Peer, res)
			if te := res.Doc.TokenEndPoint; te != "" && !onOrigins(te, origins) {
				a.log.Warn("ignoring a tokenEndPoint on another server than the sender's", "share", sh.ID, "peer", sh.Peer)
				if acc.MustExchange {
					err := fmt.Errorf("the tokenEndPoint %s advertises: %w", sh.Peer, errForeignOrigin)
					// Shown on the share; the mount lets it go (not from
					// this caller, which may be serving the mount).
					a.foreignShare(ctx, sh, err)
					go a.refreshMount(context.WithoutCancel(ctx))
					return acc, err
				}
			} else {
				acc.TokenEndpoint = te
				acc.PeerExchanges = res.Doc.HasCapability("exchange-token") && te != ""
			}
			acc.LegacyTokenEndpoint = strings.TrimSuffix(res.Doc.EndPoint, "/") + "/token"
		case acc.MustExchange || acc.LegacyCode:
			return acc, fmt.Errorf("discover %s to exchange the share's code: %w", sh.Peer, err)
		}
	}
	return acc, nil
}

// TokenManager is the part of tokens.Manager the agent uses.
type TokenManager interface {
	Forget(ctx context.Context, shareID string) error
	// Reset drops cached credentials, keeping the share's secrets.
	Reset(shareID string)
}

// SetTokenManager connects the token cache so that removed shares forget
// their tokens too.
func (a *Agent) SetTokenManager(m TokenManager) {
	a.mu.Lock()
	a.tokenMgr = m
	a.mu.Unlock()
}

// mountReports hands what the mount reports to the agent (a share that
// cannot be accessed, say) to a worker: reports arrive from inside
// filesystem operations (a lookup renewing a token), and what they cause (a
// state change, a mount refresh that notifies the kernel) must not run
// there. Reports are coalesced by key; the latest one wins.
type mountReports struct {
	mu      sync.Mutex
	pending map[string]func()
	order   []string
	running bool
}

// fromMount runs fn on the mount-report worker and returns at once.
func (a *Agent) fromMount(key string, fn func()) {
	q := &a.mountReports
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.pending == nil {
		q.pending = map[string]func(){}
	}
	if _, ok := q.pending[key]; !ok {
		q.order = append(q.order, key)
	}
	q.pending[key] = fn
	if !q.running {
		q.running = true
		go a.mountReportWorker()
	}
}

// mountReportWorker runs queued reports, oldest first, until none is left.
func (a *Agent) mountReportWorker() {
	q := &a.mountReports
	for {
		q.mu.Lock()
		if len(q.order) == 0 {
			q.running = false
			q.mu.Unlock()
			return
		}
		key := q.order[0]
		q.order = q.order[1:]
		fn := q.pending[key]
		delete(q.pending, key)
		q.mu.Unlock()
		fn()
	}
}

// ShareErrorLater records that a share's access failed for good and returns
// at once (it is called inside filesystem operations); a worker moves the
// share to error (see shareAccessFailed).
func (a *Agent) ShareErrorLater(shareID string, err error) {
	a.fromMount("error/"+shareID, func() { a.shareAccessFailed(shareID, err) })
}

// shareRevoked moves an accepted share whose server refuses it (a 401
// to fresh credentials, a 403 or 404 for its root) to revoked: it leaves
// the mount, and status and the share say why. reva, OpenCloud and
// opencloudmesh-go end shares this way without SHARE_UNSHARED.
func (a *Agent) shareRevoked(shareID string, status int) {
	ctx := context.Background()
	// Its writes not uploaded stay in the spool under this name; the
	// share and status report them.
	a.rememberMountName(ctx, shareID)
	msg := fmt.Sprintf("the sender's server refuses the share (HTTP %d): revoked without notice? 'shares retry %s' tries again", status, shareID)
	sh, err := a.store.SetShareState(ctx, shareID, store.StateRevoked, msg, store.StateAccepted)
	if err != nil {
		return // not accepted any more, or gone
	}
	a.log.Warn("share revoked by its sender", "share", shareID, "peer", sh.Peer, "status", status)
	a.recordError("share " + sh.Name + " from " + sh.Peer + ": " + msg)
	a.events.publish("share", shareID, store.StateRevoked)
	a.events.publish("status", "", "")
	a.refreshMount(ctx)
}

// shareAccessFailed moves an accepted share to the error state when its
// credentials are refused for good (a revoked code, say).
func (a *Agent) shareAccessFailed(shareID string, err error) {
	ctx := context.Background()
	msg := "access refused by the sender: " + err.Error()
	if errors.Is(err, tokens.ErrCodeRejected) {
		msg = "the sender rejected this share's code (revoked or expired)"
	}
	sh, serr := a.store.SetShareState(ctx, shareID, store.StateError, msg, store.StateAccepted)
	if serr != nil {
		return
	}
	a.rememberMountName(ctx, shareID)
	a.log.Warn("share moved to error", "share", shareID, "reason", msg)
	a.recordError("share " + sh.Name + ": " + msg)
	a.events.publish("share", shareID, store.StateError)
	a.refreshMount(ctx)
}
