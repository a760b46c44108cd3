package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/ocm-agent/ocm-agent/config"
	"github.com/ocm-agent/ocm-agent/control"
	"github.com/ocm-agent/ocm-agent/doctor"
	"github.com/spf13/cobra"
)

func init() { extraCommands = append(extraCommands, newDoctor) }

// dnsServerEnv overrides the DNS server of the SRV check (host:port).
const dnsServerEnv = "OCM_AGENT_DNS_SERVER"

func newDoctor() *cobra.Command {
	var asJSON bool
	var file, dnsServer, clockPeer string
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check that the agent works on this machine, and say how to fix what does not",
		Long: `Check the installation and print one line per check: PASS, WARN, FAIL or SKIP,
with the fix under each problem. The checks:

- config: the configuration file loads and is valid
- fuse: /dev/fuse and fusermount3 are usable
- mount: the mount directory exists or can be created, and is not a stale mount
- secrets: the OS keyring is reachable and unlocked, or why the file store is used
- endpoint: the daemon runs and its OCM endpoint accepts connections
- public-url: <public-url>/.well-known/ocm answers from this machine with a valid
  discovery document naming this agent's endpoint
- tls: the certificate of an https public URL is valid and not expiring within 14 days
- acme: with acme, the daemon holds its certificate, renewing it works, and the
  name resolves to this machine
- dns-srv: a _ocm._tcp.<host> SRV record, if there is one, points here
- clock: this clock agrees with another server's (the public URL's when it is
  served from elsewhere, or --clock-peer)
- systemd: the ocm-agent user service is enabled and active

The exit status is 1 when any check fails; warnings do not fail.
Certificates are verified against the system's authorities ($SSL_CERT_FILE adds
others); the DNS server is --dns-server, $` + dnsServerEnv + `, the key dns-server, or
/etc/resolv.conf.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, src, cfgErr := loadConfig(file)
			if dnsServer == "" {
				dnsServer = os.Getenv(dnsServerEnv)
			}
			if dnsServer == "" {
				dnsServer = cfg.DNSServer
			}
			c := client()
			if socketFlag == "" && os.Getenv(control.SocketEnv) == "" && cfg.Socket != "" {
				c = control.NewClient(cfg.Socket)
			}
			rep := doctor.Run(cmd.Context(), doctor.Options{
				Config: cfg, ConfigSource: src, ConfigErr: cfgErr,
				Status:    c.Status,
				DNSServer: dnsServer, ClockPeer: clockPeer,
			})
			out := cmd.OutOrStdout()
			var err error
			if asJSON {
				err = writeJSON(out, rep)
			} else {
				err = rep.WriteText(out)
			}
			if err != nil {
				return err
			}
			if rep.Failed > 0 {
				return fmt.Errorf("%d of %d checks failed", rep.Failed, len(rep.Checks))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().StringVarP(&file, "config", "c", "", "configuration file (default "+config.DefaultFile()+")")
	cmd.Flags().StringVar(&dnsServer, "dns-server", "", "DNS server (host:port) for the SRV check")
	cmd.Flags().StringVar(&clockPeer, "clock-peer", "", "URL of a server whose clock to compare with (default: the public URL, when served from another machine)")
	return cmd
}

// loadConfig reads the configuration the way 'serve' does, without flags.
// It returns the defaults with the error when the file is unusable.
func loadConfig(file string) (cfg config.Config, source string, err error) {
	path, optional := file, false
	if path == "" {
		path, optional = config.DefaultFile(), true
	}
	source = path
	if _, serr := os.Stat(path); errors.Is(serr, os.ErrNotExist) && optional {
		source = "no configuration file (" + path + "); built-in defaults"
	}
	def := config.Default()
	cfg, err = config.Load(path, def, nil, optional)
	if err == nil {
		err = cfg.Finish()
	}
	if err != nil {
		cfg = def
		cfg.Finish()
	}
	return cfg, source, err
}
