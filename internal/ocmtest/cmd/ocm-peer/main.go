// Command ocm-peer runs a reference OCM sending server (internal/ocmtest)
// on loopback, for demos and manual tests: it serves a directory over
// WebDAV, publishes discovery, keys and a token endpoint, can share a path
// with an OCM address at start, and then takes commands on standard input
// (type "help").
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ocm-agent/ocm-agent/internal/ocmtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ocm-peer:", err)
		os.Exit(1)
	}
}

type config struct {
	listen, dir, user, displayName string
	tls                            bool
	caOut, trustCA                 string
	shareTo, sharePath, dialect    string
	signing, permissions           string
	receiverURL                    string
	mustExchange, absoluteURI      bool
	shareWait                      time.Duration
	requireSignedTokens            bool
	tokenLifetime                  time.Duration
	noStdin, verbose               bool
	emulate                        string
}

// run serves until ctx ends or a "quit" command arrives.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var c config
	fs := flag.NewFlagSet("ocm-peer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.listen, "listen", "127.0.0.1:9280", "address to serve on (loopback)")
	fs.StringVar(&c.dir, "dir", "", "directory with the files to share (default: a temporary one); a sample folder is made in it when it is empty")
	fs.StringVar(&c.user, "user", ocmtest.DefaultUser, "the local user who shares")
	fs.StringVar(&c.displayName, "display-name", ocmtest.DefaultDisplayName, "the user's display name")
	fs.BoolVar(&c.tls, "tls", false, "serve HTTPS with a fresh test CA (see --ca-out)")
	fs.StringVar(&c.caOut, "ca-out", "", "with --tls, write the CA certificate (PEM) here (default: <dir>/../ocm-peer-ca.pem)")
	fs.StringVar(&c.trustCA, "trust-ca", "", "PEM file of extra CA certificates to trust when calling receivers over HTTPS")
	fs.StringVar(&c.shareTo, "share-to", "", "share --share-path with this OCM address at start (user@host:port)")
	fs.StringVar(&c.sharePath, "share-path", "sample", "path under --dir to share at start")
	fs.StringVar(&c.dialect, "dialect", ocmtest.DialectMulti, "share body dialect: "+strings.Join(ocmtest.Dialects, ", "))
	fs.StringVar(&c.signing, "signing", "", "rfc9421, cavage or none (default: the dialect's habit)")
	fs.StringVar(&c.permissions, "permissions", "read", "comma-separated share permissions (read, write, share)")
	fs.StringVar(&c.receiverURL, "receiver-url", "", "base URL of the receiver (default: discovered from the address, https then http on loopback)")
	fs.BoolVar(&c.mustExchange, "must-exchange-token", false, "require the receiver to exchange the secret for a token")
	fs.BoolVar(&c.absoluteURI, "absolute-uri", false, "send an absolute webdav uri")
	fs.DurationVar(&c.shareWait, "share-wait", 30*time.Second, "how long to keep trying to reach the receiver for --share-to")
	fs.BoolVar(&c.requireSignedTokens, "require-signed-token-requests", false, "refuse unsigned token requests")
	fs.DurationVar(&c.tokenLifetime, "token-lifetime", ocmtest.DefaultTokenLifetime, "lifetime of issued access tokens")
	fs.StringVar(&c.emulate, "emulate", "", "behave as a real server does on the wire: nextcloud, reva, ocmgo or opencloud (see ocmtest.Emulate)")
	fs.BoolVar(&c.noStdin, "no-stdin", false, "do not read commands from standard input")
	fs.BoolVar(&c.verbose, "v", false, "log requests and decisions to standard error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}

	ctx, stop := context.WithCancel(ctx)
	defer stop()

	dir := c.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "ocm-peer-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	made, err := ensureSample(dir)
	if err != nil {
		return err
	}
	if made {
		fmt.Fprintf(stdout, "ocm-peer: made a sample folder in %s\n", filepath.Join(dir, "sample"))
	}

	opts := ocmtest.Options{
		User:                       c.user,
		DisplayName:                c.displayName,
		Dir:                        dir,
		Listen:                     c.listen,
		TLS:                        c.tls,
		TokenLifetime:              c.tokenLifetime,
		RequireSignedTokenRequests: c.requireSignedTokens,
	}
	if err := ocmtest.Emulate(&opts, c.emulate); err != nil {
		return err
	}
	level := slog.LevelWarn
	if c.verbose {
		level = slog.LevelDebug
	}
	opts.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if c.trustCA != "" {
		pemBytes, err := os.ReadFile(c.trustCA)
		if err != nil {
			return err
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pemBytes) {
			return fmt.Errorf("no certificates in %s", c.trustCA)
		}
		opts.ClientRootCAs = pool
	}
	srv, err := ocmtest.New(opts)
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	defer srv.Close()
	fmt.Fprintf(stdout, "ocm-peer: serving %s as %s, files in %s\n", srv.URL(), srv.Address(), dir)
	if c.tls {
		caOut := c.caOut
		if caOut == "" {
			caOut = filepath.Join(filepath.Dir(filepath.Clean(dir)), "ocm-peer-ca.pem")
		}
		if err := os.WriteFile(caOut, srv.CACertPEM(), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "ocm-peer: test CA certificate written to %s\n", caOut)
	}

	p := &peer{srv: srv, c: c, out: stdout}
	if c.shareTo != "" {
		if err := p.shareWithRetry(ctx, c.shareTo, c.sharePath, c.dialect); err != nil {
			fmt.Fprintf(stdout, "ocm-peer: share failed: %v\n", err)
		}
	}
	if !c.noStdin && stdin != nil {
		go p.readCommands(ctx, stdin, stop)
	}
	<-ctx.Done()
	fmt.Fprintln(stdout, "ocm-peer: stopping")
	return nil
}

type peer struct {
	srv *ocmtest.Server
	c   config
	out io.Writer
}

func (p *peer) request(to, path, dialect string) ocmtest.ShareRequest {
	var perms []string
	for _, x := range strings.Split(p.c.permissions, ",") {
		if x = strings.TrimSpace(x); x != "" {
			perms = append(perms, x)
		}
	}
	return ocmtest.ShareRequest{
		To: to, Path: path, Dialect: dialect, Signing: p.c.signing, Permissions: perms,
		MustExchangeToken: p.c.mustExchange, AbsoluteURI: p.c.absoluteURI, ReceiverBase: p.c.receiverURL,
	}
}

// shareWithRetry keeps trying while the receiver cannot be reached (it may
// still be starting); an answer from the receiver ends the attempts.
func (p *peer) shareWithRetry(ctx context.Context, to, path, dialect string) error {
	ctx, cancel := context.WithTimeout(ctx, p.c.shareWait)
	defer cancel()
	for attempt := 1; ; attempt++ {
		sh, err := p.srv.CreateShare(ctx, p.request(to, path, dialect))
		if err == nil {
			p.printShare(sh)
			return nil
		}
		var se *ocmtest.StatusError
		if errors.As(err, &se) || ctx.Err() != nil || attempt >= 1000 {
			return err
		}
		if attempt == 1 {
			fmt.Fprintf(p.out, "ocm-peer: waiting for %s to answer...\n", to)
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (p *peer) printShare(sh *ocmtest.Share) {
	kind := "file"
	if sh.IsDir {
		kind = "folder"
	}
	fmt.Fprintf(p.out, "ocm-peer: shared %s %q with %s: share %s, providerId %s, dialect %s, signing %s, permissions %s\n",
		kind, sh.Path, sh.To, sh.ID, sh.ProviderID, sh.Dialect, sh.Signing, strings.Join(sh.Permissions, ","))
}

const help = `commands:
  share <user@host:port> [path] [dialect]   share a path (default: sample) with an OCM address
  unshare <share-id>                        end a share and send SHARE_UNSHARED
  revoke <share-id>                         end a share silently
  shares                                    list the shares made
  invite                                    make an invite (prints the invite string)
  notifications                             list notifications received
  acceptances                               list invite acceptances received
  expire-tokens                             make every issued access token expire
  quit                                      stop`

func (p *peer) readCommands(ctx context.Context, in io.Reader, stop func()) {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 4096), 64<<10)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		quit := p.command(cctx, f)
		cancel()
		if quit {
			stop()
			return
		}
	}
}

func (p *peer) command(ctx context.Context, f []string) (quit bool) {
	out := p.out
	switch f[0] {
	case "help", "?":
		fmt.Fprintln(out, help)
	case "quit", "exit":
		return true
	case "share":
		if len(f) < 2 {
			fmt.Fprintln(out, "usage: share <user@host:port> [path] [dialect]")
			return false
		}
		path, dialect := p.c.sharePath, p.c.dialect
		if len(f) > 2 {
			path = f[2]
		}
		if len(f) > 3 {
			dialect = f[3]
		}
		sh, err := p.srv.CreateShare(ctx, p.request(f[1], path, dialect))
		if err != nil {
			fmt.Fprintf(out, "ocm-peer: share failed: %v\n", err)
			return false
		}
		p.printShare(sh)
	case "unshare":
		if len(f) != 2 {
			fmt.Fprintln(out, "usage: unshare <share-id>")
			return false
		}
		if err := p.srv.Unshare(ctx, f[1]); err != nil {
			fmt.Fprintf(out, "ocm-peer: unshare: %v\n", err)
			return false
		}
		fmt.Fprintf(out, "ocm-peer: unshared %s\n", f[1])
	case "revoke":
		if len(f) != 2 || !p.srv.RevokeShare(f[1]) {
			fmt.Fprintln(out, "usage: revoke <share-id> (of an existing share)")
			return false
		}
		fmt.Fprintf(out, "ocm-peer: revoked %s\n", f[1])
	case "shares":
		for _, sh := range p.srv.Shares() {
			fmt.Fprintf(out, "%s  %-8s %-15s %s -> %s\n", sh.ID, sh.State, sh.Dialect, sh.Path, sh.To)
		}
	case "invite":
		_, invite := p.srv.CreateInvite(ocmtest.InviteOptions{})
		fmt.Fprintf(out, "ocm-peer: invite: %s\n", invite)
	case "notifications":
		for _, n := range p.srv.Notifications() {
			fmt.Fprintf(out, "%s  %s providerId %s share %s signed=%v verified=%v status %d\n",
				n.Time.Format(time.TimeOnly), n.Type, n.ProviderID, n.ShareID, n.Signature.Present, n.Signature.Verified, n.Status)
		}
	case "acceptances":
		for _, a := range p.srv.InviteAcceptances() {
			fmt.Fprintf(out, "%s  %s@%s (%s) signed=%v status %d\n",
				a.Time.Format(time.TimeOnly), a.UserID, a.RecipientProvider, a.Name, a.Signature.Present, a.Status)
		}
	case "expire-tokens":
		p.srv.ExpireTokensNow()
		fmt.Fprintln(out, "ocm-peer: access tokens expired")
	default:
		fmt.Fprintf(out, "unknown command %q (try help)\n", f[0])
	}
	return false
}

// ensureSample makes dir/sample with a few files when dir is empty.
func ensureSample(dir string) (bool, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, err
	}
	if len(entries) > 0 {
		return false, nil
	}
	root := filepath.Join(dir, "sample")
	files := map[string]string{
		"README.md":      "# Sample share\n\nThis folder is shared by ocm-peer over Open Cloud Mesh.\n",
		"hello.txt":      "Hello from the other side of the mesh!\n",
		"docs/notes.txt": "Notes kept in a sub-folder.\n",
	}
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return false, err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return false, err
		}
	}
	data := make([]byte, 256<<10)
	_, _ = rand.Read(data)
	if err := os.WriteFile(filepath.Join(root, "data.bin"), data, 0o644); err != nil {
		return false, err
	}
	return true, nil
}
