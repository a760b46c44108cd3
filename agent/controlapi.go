package agent

import (
	"context"

	"github.com/ocm-agent/ocm-agent/control"
	"github.com/ocm-agent/ocm-agent/store"
)

// ControlBackend adapts the agent to the control API.
func (a *Agent) ControlBackend() control.Backend { return controlBackend{a} }

type controlBackend struct{ a *Agent }

func toControl(sh store.Share) control.Share { return control.Share(sh) }

func toControlList(l []store.Share) []control.Share {
	out := make([]control.Share, len(l))
	for i, sh := range l {
		out[i] = toControl(sh)
	}
	return out
}

func (b controlBackend) Status(ctx context.Context) control.Status { return b.a.Status(ctx) }

func (b controlBackend) Shares(ctx context.Context, all bool) ([]control.Share, error) {
	l, err := b.a.Shares(ctx, all)
	return toControlList(l), err
}

func (b controlBackend) Share(ctx context.Context, id string) (control.Share, error) {
	sh, err := b.a.Share(ctx, id)
	return toControl(sh), err
}

func (b controlBackend) AcceptShare(ctx context.Context, id string) (control.Share, error) {
	sh, err := b.a.AcceptShare(ctx, id)
	return toControl(sh), err
}

func (b controlBackend) DeclineShare(ctx context.Context, id string) (control.Share, error) {
	sh, err := b.a.DeclineShare(ctx, id)
	return toControl(sh), err
}

func (b controlBackend) RemoveShare(ctx context.Context, id string) (control.Share, error) {
	sh, err := b.a.RemoveShare(ctx, id)
	return toControl(sh), err
}

func (b controlBackend) Subscribe(after uint64) ([]control.Event, <-chan control.Event, func()) {
	return b.a.Subscribe(after)
}

// SecretsStatus is what the secret store reported at start.
type SecretsStatus struct {
	Backend  string
	Reason   string
	Unlocked bool
}

// SetSecretsStatus records the secret store's state for status reports.
func (a *Agent) SetSecretsStatus(s SecretsStatus) {
	a.mu.Lock()
	a.secretsStatus = s
	a.mu.Unlock()
}

// SetCertStatus connects the certificate manager: f fills the Cert*
// fields of the status.
func (a *Agent) SetCertStatus(f func() control.Status) {
	a.mu.Lock()
	a.certStatus = f
	a.mu.Unlock()
}

// Status reports the daemon's state.
func (a *Agent) Status(ctx context.Context) control.Status {
	a.mu.Lock()
	st := control.Status{
		Version: Version, User: a.cfg.User, Address: a.cfg.Address(), PublicURL: a.cfg.PublicURL,
		Listen: a.cfg.Listen, Mount: a.cfg.Mount, SecretsBackend: a.secrets.Backend(),
		SecretsReason: a.secretsStatus.Reason, KeyringUnlocked: a.secretsStatus.Unlocked,
		Errors: append([]string(nil), a.errs...), StartedAt: a.started.UTC(),
	}
	switch {
	case a.cfg.Mount == "":
		st.MountState = "disabled"
	case a.mountErr != "":
		st.MountState = "error: " + a.mountErr
	case a.mounter != nil:
		st.MountState = "mounted"
		if p, ok := a.mounter.(interface{ PendingUploads() []string }); ok {
			st.PendingUploads = p.PendingUploads()
		}
	default:
		st.MountState = "not mounted"
	}
	certStatus := a.certStatus
	a.mu.Unlock()
	if certStatus != nil {
		c := certStatus()
		st.CertName, st.CertIssuer, st.CertNotAfter, st.CertError = c.CertName, c.CertIssuer, c.CertNotAfter, c.CertError
	}
	if pending, err := a.store.Shares(ctx, store.StatePending); err == nil {
		st.Pending = len(pending)
	}
	return st
}
