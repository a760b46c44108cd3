package agent

import (
	"context"
	"fmt"
	"os"

	"github.com/ocm-agent/ocm-agent/discovery"
	ocmfs "github.com/ocm-agent/ocm-agent/fuse"
)

// fsMounter adapts the filesystem to the agent's Mounter.
type fsMounter struct{ fs *ocmfs.FS }

func (m fsMounter) SetEntries(entries []MountEntry) {
	out := make([]ocmfs.Entry, len(entries))
	for i, e := range entries {
		out[i] = ocmfs.Entry(e)
	}
	m.fs.SetEntries(out)
}

func (m fsMounter) PendingUploads() []string { return m.fs.PendingUploads() }

func (m fsMounter) EntryName(id string) string { return m.fs.EntryName(id) }

// mount mounts the shares filesystem at the configured directory and
// shows the accepted shares in it. A failure is reported in the status,
// not fatal: the agent still receives shares without a mount.
func (d *Daemon) mount(ctx context.Context, auth ocmfs.Authorizer) {
	a, cfg := d.Agent, d.cfg
	if cfg.Mount == "" {
		return
	}
	fail := func(err error) {
		d.log.Error("the shares folder could not be mounted; shares are still received", "dir", cfg.Mount, "err", err)
		a.SetMountError(err.Error())
	}
	if err := os.MkdirAll(cfg.Mount, 0o700); err != nil {
		fail(fmt.Errorf("create %s: %w", cfg.Mount, err))
		return
	}
	client := discovery.NewHTTPClient(discovery.Options{AllowInsecure: cfg.AllowInsecurePeers, DNSServer: cfg.DNSServer, Timeout: -1, Logger: d.log})
	fs, err := ocmfs.Mount(ctx, ocmfs.Options{
		Dir:      cfg.Mount,
		FSName:   "ocm-agent",
		Timeout:  cfg.MountTimeout.Duration,
		SpoolDir: a.spoolDir(),
		Client:   client,
		Logger:   d.log,
		// Senders that end shares without SHARE_UNSHARED.
		OnShareRefused: a.shareRevoked,
		// OpenCloud answers 500 for a share it removed.
		OnShareRoot: a.shareRoot,
		// Nextcloud calls folders "file".
		OnShareKind: a.shareKind,
	}, auth)
	if err != nil {
		fail(err)
		return
	}
	a.SetMounter(fsMounter{fs}, a)
	a.SetMountError("")
	d.closers = append(d.closers, func(context.Context) error {
		a.SetMounter(nil, nil)
		return fs.Unmount()
	})
	a.refreshMount(ctx)
	d.log.Info("shares mounted", "dir", cfg.Mount)
}
