package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/ocm-agent/ocm-agent/acmecert"
	"github.com/ocm-agent/ocm-agent/control"
)

// setupACME puts the ACME certificate manager on the public listener ln
// and, with acme-http-listen, opens the plain HTTP listener for HTTP-01.
func (d *Daemon) setupACME(ln net.Listener) error {
	httpAddr := ""
	if d.cfg.ACMEHTTPListen != "" {
		hl, err := net.Listen("tcp", d.cfg.ACMEHTTPListen)
		if err != nil {
			return fmt.Errorf("acme-http-listen %s: %w (port 80 needs the capability described in the README, or use a forwarded high port)", d.cfg.ACMEHTTPListen, err)
		}
		d.acmeHTTPLn = hl
		httpAddr = hl.Addr().String()
		d.closers = append(d.closers, func(context.Context) error { hl.Close(); return nil })
	}
	u := d.cfg.PublicHost()
	host, _, err := net.SplitHostPort(u)
	if err != nil {
		host = u
	}
	m, err := acmecert.New(acmecert.Options{
		Name: host, CA: d.cfg.ACMECA, Email: d.cfg.ACMEEmail, CARoot: d.cfg.ACMECARoot,
		StateDir: d.cfg.StateDir, TLSAddr: ln.Addr().String(), HTTPAddr: httpAddr, Logger: d.log,
	})
	if err != nil {
		return err
	}
	d.acme = m
	d.closers = append(d.closers, func(context.Context) error { m.Stop(); return nil })
	if d.acmeHTTPLn != nil {
		d.acmeHTTP = &http.Server{
			Handler:           m.HTTPHandler(http.HandlerFunc(d.redirectToHTTPS)),
			ReadHeaderTimeout: 5 * time.Second,
			IdleTimeout:       30 * time.Second,
		}
		d.closers = append(d.closers, d.acmeHTTP.Shutdown)
	}
	d.Agent.SetCertStatus(func() control.Status {
		s := m.Status()
		st := control.Status{CertName: s.Name, CertIssuer: s.Issuer, CertNotAfter: s.NotAfter.UTC()}
		if s.LastError != "" {
			st.CertError = s.LastErrorAt.UTC().Format(time.RFC3339) + " " + s.LastError
		}
		return st
	})
	return nil
}

// startACME begins obtaining or renewing once the listeners serve.
func (d *Daemon) startACME(ctx context.Context) {
	if d.acme == nil {
		return
	}
	if d.acmeHTTP != nil {
		go func() {
			if err := d.acmeHTTP.Serve(d.acmeHTTPLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				d.log.Error("the HTTP-01 listener stopped", "err", err)
			}
		}()
	}
	if err := d.acme.Start(ctx); err != nil {
		d.log.Error("cannot manage the certificate", "err", err)
		d.Agent.recordError(err.Error())
	}
}

// redirectToHTTPS sends plain HTTP visitors to the public URL.
func (d *Daemon) redirectToHTTPS(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, d.cfg.PublicURL+r.URL.RequestURI(), http.StatusMovedPermanently)
}
