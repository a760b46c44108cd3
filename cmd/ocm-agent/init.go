package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/BurntSushi/toml"
	"github.com/ocm-agent/ocm-agent/config"
	"github.com/spf13/cobra"
)

func init() { extraCommands = append(extraCommands, newInit) }

// initAnswers are the settings 'init' asks for, written in this order.
type initAnswers struct {
	User               string   `toml:"user"`
	DisplayName        string   `toml:"display-name,omitempty"`
	PublicURL          string   `toml:"public-url,omitempty"`
	Listen             string   `toml:"listen"`
	Mount              string   `toml:"mount"`
	TLSCert            string   `toml:"tls-cert,omitempty"`
	TLSKey             string   `toml:"tls-key,omitempty"`
	ACME               bool     `toml:"acme,omitempty"`
	ACMEEmail          string   `toml:"acme-email,omitempty"`
	AllowInsecurePeers bool     `toml:"allow-insecure-peers,omitempty"`
	TrustedProxies     []string `toml:"trusted-proxies,omitempty"`
}

// maxAttempts bounds how often one question is asked again.
const maxAttempts = 5

func newInit() *cobra.Command {
	def := config.Default()
	a := initAnswers{User: def.User, Listen: def.Listen, Mount: def.Mount}
	var file string
	var nonInteractive, force bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write a first configuration, and print the DNS and reverse proxy settings to publish",
		Long: `Ask for the settings a new agent needs (or take them from flags with
--non-interactive), check them, and write ` + config.DefaultFile() + `
(mode 0600). An existing file is kept unless --force is given (the old one is
saved as config.toml.bak).

With an https public URL, the agent can get its certificate from Let's Encrypt
itself (acme, the first choice offered): then port 443 of the public name must
reach the agent's listen address. Otherwise a reverse proxy or your own
certificate files serve HTTPS.

Then print what to publish so that other servers reach the agent: the DNS SRV
record, the ports to open or forward, or a reverse proxy configuration for nginx
and for Caddy.

Other keys can be added to the file later; see ocm-agent.toml(5).`,
		Example: `  ocm-agent init
  ocm-agent init --non-interactive --user alice --display-name "Alice Example" \
      --public-url https://ocm.example.org --mount ~/OCM`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := file
			if path == "" {
				path = config.DefaultFile()
			}
			out := cmd.OutOrStdout()
			if _, err := os.Stat(path); err == nil && !force {
				return fmt.Errorf("%s already exists; edit it, or give --force to replace it", path)
			}
			if !nonInteractive {
				if err := askAll(bufio.NewReader(cmd.InOrStdin()), out, &a); err != nil {
					return err
				}
			}
			a.normalize()
			if err := a.check(); err != nil {
				return err
			}
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if err := writeConfigFile(path, a, force); err != nil {
				return err
			}
			printSummary(out, path, a, cfg)
			printPublish(out, a, cfg)
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&nonInteractive, "non-interactive", false, "take every setting from flags and defaults; ask nothing")
	f.BoolVar(&force, "force", false, "replace an existing configuration file")
	f.StringVarP(&file, "config", "c", "", "file to write (default "+config.DefaultFile()+")")
	f.StringVar(&a.User, "user", a.User, "your OCM user id (the part before @ in your OCM address)")
	f.StringVar(&a.DisplayName, "display-name", "", "the name people who share with you see (default: the user id)")
	f.StringVar(&a.PublicURL, "public-url", "", "the https origin other servers use to reach the agent, e.g. https://ocm.example.org (default: reachable from this machine only)")
	f.StringVar(&a.Listen, "listen", a.Listen, "address the agent listens on (host:port); behind a reverse proxy keep it on 127.0.0.1")
	f.StringVar(&a.Mount, "mount", a.Mount, "directory where accepted shares appear; empty for none")
	f.StringVar(&a.TLSCert, "tls-cert", "", "TLS certificate (PEM) when the agent serves HTTPS itself instead of a reverse proxy")
	f.StringVar(&a.TLSKey, "tls-key", "", "TLS private key (PEM) that goes with --tls-cert")
	f.BoolVar(&a.ACME, "acme", false, "the agent gets its certificate from Let's Encrypt itself (port 443 of the public name must reach --listen)")
	f.StringVar(&a.ACMEEmail, "acme-email", "", "e-mail address for the Let's Encrypt account (optional)")
	f.BoolVar(&a.AllowInsecurePeers, "allow-insecure-peers", false, "allow a plain http public URL and private-address peers (labs and tests only)")
	return cmd
}

// prompter asks questions on a terminal or a pipe.
type prompter struct {
	in  *bufio.Reader
	out io.Writer
}

// ask shows question with its default and returns the answer, the
// default for an empty line. A check that fails asks again, a bounded
// number of times.
func (p prompter) ask(question, def string, check func(string) error) (string, error) {
	for i := 0; i < maxAttempts; i++ {
		if def != "" {
			fmt.Fprintf(p.out, "%s [%s]: ", question, def)
		} else {
			fmt.Fprintf(p.out, "%s: ", question)
		}
		line, err := p.in.ReadString('\n')
		if err != nil && (line == "" || !errors.Is(err, io.EOF)) {
			if errors.Is(err, io.EOF) {
				return "", errors.New("the input ended before every question was answered")
			}
			return "", err
		}
		ans := strings.TrimSpace(line)
		if ans == "" {
			ans = def
		}
		if ans == "-" {
			ans = ""
		}
		if check == nil {
			return ans, nil
		}
		if err := check(ans); err != nil {
			fmt.Fprintf(p.out, "  %v\n", err)
			continue
		}
		return ans, nil
	}
	return "", fmt.Errorf("no usable answer to %q after %d tries", question, maxAttempts)
}

func askAll(in *bufio.Reader, out io.Writer, a *initAnswers) error {
	p := prompter{in: in, out: out}
	fmt.Fprintln(out, `Setting up ocm-agent. Press Enter to keep the value in brackets; "-" clears it.`)
	var err error
	if a.User, err = p.ask("Your OCM user id (before the @ of your address)", a.User, checkUser); err != nil {
		return err
	}
	dn := a.DisplayName
	if dn == "" {
		dn = a.User
	}
	if a.DisplayName, err = p.ask("Your name, as people who share with you see it", dn, nil); err != nil {
		return err
	}
	fmt.Fprintln(out, "The public URL is the https address other servers use to reach this agent,")
	fmt.Fprintln(out, "usually through a reverse proxy (e.g. https://ocm.example.org). Leave it empty")
	fmt.Fprintln(out, "to try the agent on this machine only.")
	if a.PublicURL, err = p.ask("Public URL", a.PublicURL, func(s string) error { return checkPublicURL(s, a.AllowInsecurePeers) }); err != nil {
		return err
	}
	if a.Listen, err = p.ask("Address to listen on (host:port; keep 127.0.0.1 behind a reverse proxy)", a.Listen, checkListen); err != nil {
		return err
	}
	if a.Mount, err = p.ask("Folder where accepted shares appear (\"-\" for none)", a.Mount, checkMount); err != nil {
		return err
	}
	if strings.HasPrefix(a.PublicURL, "https://") {
		if err := askACME(p, a); err != nil || a.ACME {
			return err
		}
		fmt.Fprintln(out, "If a reverse proxy (nginx, Caddy) handles TLS, leave the certificate empty.")
		if a.TLSCert, err = p.ask("TLS certificate file (PEM) for the agent itself", a.TLSCert, checkReadable); err != nil {
			return err
		}
		if a.TLSCert != "" {
			if a.TLSKey, err = p.ask("TLS private key file (PEM)", a.TLSKey, func(s string) error {
				if s == "" {
					return errors.New("the key file is required with a certificate")
				}
				return checkReadable(s)
			}); err != nil {
				return err
			}
		}
	}
	return nil
}

// askACME offers the agent's own certificate from Let's Encrypt, the first
// choice for an https URL without a reverse proxy; it says which ports must
// reach the machine and asks for a listen address that they can reach.
func askACME(p prompter, a *initAnswers) error {
	u, _ := url.Parse(a.PublicURL)
	fmt.Fprintf(p.out, `HTTPS: the agent can get and renew its certificate from Let's Encrypt itself
(no reverse proxy). Port 443 of %s must then reach this machine: forward it on
your router to the agent's port, or let the agent listen on :443 itself (see the
README: setcap, no root). Port 80 is needed only for the HTTP-01 challenge
(key acme-http-listen); 443 alone works (TLS-ALPN-01).
`, u.Hostname())
	mode, err := p.ask("Who serves HTTPS: acme (the agent, Let's Encrypt), proxy (nginx, Caddy) or files (your certificate)", "acme", func(s string) error {
		if s != "acme" && s != "proxy" && s != "files" {
			return errors.New("answer acme, proxy or files")
		}
		return nil
	})
	if err != nil || mode != "acme" {
		return err
	}
	a.ACME = true
	if isLoopbackListen(a.Listen) {
		fmt.Fprintln(p.out, "Peers and Let's Encrypt connect to the agent directly, so it cannot listen on loopback only.")
		if a.Listen, err = p.ask("Address to listen on (:443 with setcap, or 0.0.0.0:8443 with 443 forwarded to it)", "0.0.0.0:8443", checkACMEListen); err != nil {
			return err
		}
	}
	a.ACMEEmail, err = p.ask("E-mail address for Let's Encrypt's notices (optional)", a.ACMEEmail, nil)
	return err
}

// bindProblem says why this user cannot listen on addr now, if so.
func bindProblem(addr string) string {
	ln, err := net.Listen("tcp", addr)
	switch {
	case err == nil:
		ln.Close()
		return ""
	case errors.Is(err, syscall.EACCES):
		return fmt.Sprintf("you cannot listen on %s as this user: run 'sudo setcap cap_net_bind_service=+ep $(command -v ocm-agent)', or listen on a port above 1023 and forward 443 to it", addr)
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Sprintf("%s is in use (fine if it is this agent already running; otherwise choose another port)", addr)
	}
	return fmt.Sprintf("cannot listen on %s: %v", addr, err)
}

func checkACMEListen(s string) error {
	if err := checkListen(s); err != nil {
		return err
	}
	if isLoopbackListen(s) {
		return errors.New("with acme the agent must listen beyond loopback, e.g. :443 or 0.0.0.0:8443")
	}
	return nil
}

func checkUser(s string) error {
	if s == "" || strings.ContainsAny(s, "@/ \t") {
		return errors.New("the user id must be non-empty, without '@', '/' or spaces")
	}
	return nil
}

func checkPublicURL(s string, insecure bool) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(strings.TrimSuffix(s, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
		return errors.New("give an origin such as https://ocm.example.org (scheme and host, no path)")
	}
	if u.Scheme == "http" && !insecure {
		if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return errors.New("other servers require https; use an https URL (a reverse proxy can provide it)")
		}
	}
	return nil
}

func checkListen(s string) error {
	if _, _, err := net.SplitHostPort(s); err != nil {
		return fmt.Errorf("expected host:port, such as 127.0.0.1:9200 (%v)", err)
	}
	return nil
}

func checkMount(s string) error {
	s = expandHome(s)
	if s != "" && !filepath.IsAbs(s) {
		return errors.New("give an absolute path (or ~/...)")
	}
	return nil
}

func checkReadable(s string) error {
	if s == "" {
		return nil
	}
	f, err := os.Open(expandHome(s))
	if err != nil {
		return fmt.Errorf("cannot read it: %v", err)
	}
	f.Close()
	return nil
}

func expandHome(s string) string {
	if s == "~" || strings.HasPrefix(s, "~/") {
		if h, err := os.UserHomeDir(); err == nil {
			return filepath.Join(h, s[1:])
		}
	}
	return s
}

// normalize tidies the answers: absolute paths, no trailing slash, and
// the local reverse proxy trusted.
func (a *initAnswers) normalize() {
	a.PublicURL = strings.TrimSuffix(strings.TrimSpace(a.PublicURL), "/")
	a.Mount = expandHome(a.Mount)
	if a.TLSCert != "" {
		a.TLSCert, _ = filepath.Abs(expandHome(a.TLSCert))
	}
	if a.TLSKey != "" {
		a.TLSKey, _ = filepath.Abs(expandHome(a.TLSKey))
	}
	if a.DisplayName == a.User {
		a.DisplayName = ""
	}
	a.TrustedProxies = nil
	if behindProxy(*a) && isLoopbackListen(a.Listen) {
		a.TrustedProxies = []string{"127.0.0.1", "::1"}
	}
}

// behindProxy: an https public URL served by someone else's TLS.
func behindProxy(a initAnswers) bool {
	return strings.HasPrefix(a.PublicURL, "https://") && a.TLSCert == "" && !a.ACME
}

func isLoopbackListen(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// check tests what 'serve' would only find out later: readable TLS
// files, and a public URL peers accept.
func (a initAnswers) check() error {
	if err := checkPublicURL(a.PublicURL, a.AllowInsecurePeers); err != nil {
		return fmt.Errorf("public URL %q: %w", a.PublicURL, err)
	}
	for _, f := range []string{a.TLSCert, a.TLSKey} {
		if err := checkReadable(f); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
	}
	if a.ACME {
		if err := checkACMEListen(a.Listen); err != nil {
			return fmt.Errorf("listen %q: %w", a.Listen, err)
		}
	}
	return nil
}

// config checks the answers exactly as 'serve' will.
func (a initAnswers) config() (config.Config, error) {
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(a); err != nil {
		return config.Config{}, err
	}
	cfg := config.Default()
	if _, err := toml.Decode(buf.String(), &cfg); err != nil {
		return config.Config{}, err
	}
	if err := cfg.Finish(); err != nil {
		return config.Config{}, err
	}
	return cfg, nil
}

// writeConfigFile writes the answers to path with mode 0600, through a
// temporary file so a crash never leaves half a file.
func writeConfigFile(path string, a initAnswers, force bool) error {
	var buf bytes.Buffer
	buf.WriteString("# ocm-agent configuration, written by 'ocm-agent init'.\n")
	buf.WriteString("# Every key is described in ocm-agent.toml(5); a flag of 'ocm-agent serve' wins over this file.\n")
	if err := toml.NewEncoder(&buf).Encode(a); err != nil {
		return fmt.Errorf("encoding the configuration: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, ".config.toml.*")
	if err != nil {
		return fmt.Errorf("writing the configuration: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("writing the configuration: %w", err)
	}
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return fmt.Errorf("writing the configuration: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("writing the configuration: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing the configuration: %w", err)
	}
	if _, err := os.Stat(path); err == nil {
		if !force {
			return fmt.Errorf("%s already exists; give --force to replace it", path)
		}
		if err := os.Rename(path, path+".bak"); err != nil {
			return fmt.Errorf("keeping the old configuration: %w", err)
		}
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

func printSummary(w io.Writer, path string, a initAnswers, cfg config.Config) {
	fmt.Fprintf(w, "\nWrote %s:\n", path)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  OCM address\t%s\n", cfg.Address())
	fmt.Fprintf(tw, "  Display name\t%s\n", cfg.DisplayName)
	fmt.Fprintf(tw, "  Public URL\t%s\n", cfg.PublicURL)
	fmt.Fprintf(tw, "  Listens on\t%s\n", cfg.Listen)
	mount := cfg.Mount
	if mount == "" {
		mount = "none (mounting disabled)"
	}
	fmt.Fprintf(tw, "  Shares appear in\t%s\n", mount)
	switch {
	case a.ACME:
		fmt.Fprintf(tw, "  TLS\tserved by the agent, certificate from %s\n", cfg.ACMECA)
	case a.TLSCert != "":
		fmt.Fprintf(tw, "  TLS\tserved by the agent (%s)\n", a.TLSCert)
	case behindProxy(a):
		fmt.Fprintf(tw, "  TLS\tterminated by a reverse proxy\n")
	default:
		fmt.Fprintf(tw, "  TLS\tnone\n")
	}
	tw.Flush()
}

// printPublish says what to set up outside the agent for peers to reach it.
func printPublish(w io.Writer, a initAnswers, cfg config.Config) {
	u, _ := url.Parse(cfg.PublicURL)
	host := u.Hostname()
	port := u.Port()
	if port == "" {
		port = map[string]string{"https": "443", "http": "80"}[u.Scheme]
	}
	next := `
Next:
  systemctl --user enable --now ocm-agent   # start it now and at every login
  ocm-agent doctor                          # check that everything works
  ocm-agent status                          # your OCM address, to give to people
`
	local := false
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		local = true
	}
	if local && !behindProxy(a) {
		fmt.Fprintf(w, "\nThe agent is reachable from this machine only (%s). To receive shares from\n", cfg.PublicURL)
		fmt.Fprintln(w, "other servers, run 'ocm-agent init --force' again with an https public URL.")
		fmt.Fprint(w, next)
		return
	}
	if local {
		fmt.Fprintf(w, "\n%s is reachable from this machine only; for other servers use a public name.\n", host)
	} else {
		fmt.Fprintf(w, `
To be reachable, publish the following.

DNS: %s must resolve to this machine (or to your reverse proxy). Optionally add an
SRV record, which lets OCM servers find the endpoint from your address:

  _ocm._tcp.%s. 3600 IN SRV 10 10 %s %s.
`, host, host, port, host)
	}
	if a.ACME {
		_, lport, _ := net.SplitHostPort(cfg.Listen)
		fmt.Fprintf(w, `
Ports: port %[1]s of %[2]s must reach this machine's port %[3]s, from the whole
Internet (Let's Encrypt checks it from several places):
  - on a home network, forward TCP %[1]s on the router to this machine's port %[3]s;
  - to listen on 443 directly without root:
      sudo setcap cap_net_bind_service=+ep $(command -v ocm-agent)
    then set listen = ":443". The agent refuses to run as root (key allow-root).
Port 80 is not needed unless you set acme-http-listen (HTTP-01 challenge).
The first start asks Let's Encrypt for the certificate; 'ocm-agent status' shows it,
'ocm-agent doctor' checks it, the name and the port.
`, port, host, lport)
		if msg := bindProblem(cfg.Listen); msg != "" {
			fmt.Fprintf(w, "\nWarning: %s\n", msg)
		}
		fmt.Fprint(w, next)
		return
	}
	if !behindProxy(a) {
		if a.TLSCert != "" {
			fmt.Fprintf(w, "\nThe agent serves HTTPS itself on %s: open that port in your firewall and\nforward %s to it.\n", cfg.Listen, port)
		}
		fmt.Fprint(w, next)
		return
	}
	upstream := cfg.Listen
	if h, p, err := net.SplitHostPort(upstream); err == nil {
		if ip := net.ParseIP(h); h == "" || (ip != nil && ip.IsUnspecified()) {
			upstream = net.JoinHostPort("127.0.0.1", p)
		}
	}
	listen := port
	caddySite := host
	if port != "443" {
		caddySite = net.JoinHostPort(host, port)
	}
	fmt.Fprintf(w, `
Reverse proxy, nginx (e.g. /etc/nginx/sites-available/ocm-agent; certificate from certbot):

  server {
      listen %[1]s ssl;
      listen [::]:%[1]s ssl;
      server_name %[2]s;
      ssl_certificate     /etc/letsencrypt/live/%[2]s/fullchain.pem;
      ssl_certificate_key /etc/letsencrypt/live/%[2]s/privkey.pem;

      location / {
          proxy_pass http://%[3]s;
          proxy_set_header Host $host;
          proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
          proxy_set_header X-Forwarded-Proto $scheme;
          proxy_read_timeout 60s;
          client_max_body_size 1m;
      }
  }

Reverse proxy, Caddy (Caddyfile; Caddy obtains the certificate itself):

  %[4]s {
      reverse_proxy %[3]s
  }
`, listen, host, upstream, caddySite)
	if a.TrustedProxies != nil {
		fmt.Fprintln(w, "\nThe configuration trusts X-Forwarded-For from a proxy on this machine (trusted-proxies).")
	} else {
		fmt.Fprintln(w, "\nIf the proxy runs on another machine, add its address to 'trusted-proxies' in the configuration.")
	}
	fmt.Fprint(w, next)
}
