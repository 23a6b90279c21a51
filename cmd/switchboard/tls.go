package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"github.com/switchboardhq/switchboard/internal/config"
)

// certReloader serves the certificate of a pair of PEM files and reads them
// again on Reload. Connections already open keep the certificate they were
// made with; new handshakes get the new one. A pair that does not load
// leaves the certificate being served in place.
type certReloader struct {
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]
}

func newCertReloader(certFile, keyFile string) (*certReloader, error) {
	c := &certReloader{certFile: certFile, keyFile: keyFile}
	if err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload reads the files again and, when they hold a valid pair, serves it.
func (c *certReloader) Reload() error {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		// The error names the files and the problem, never key material.
		return fmt.Errorf("tls certificate: %w", err)
	}
	c.cert.Store(&cert)
	return nil
}

// GetCertificate is tls.Config.GetCertificate.
func (c *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cert.Load(), nil
}

// watchHUP starts listening for SIGHUP, at once, and returns the loop that
// reloads the certificate on each until ctx ends. Listening before the server
// announces itself means that a SIGHUP sent once it has is never the default
// one, which ends the process.
func (c *certReloader) watchHUP(log *slog.Logger) func(ctx context.Context) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return func(ctx context.Context) error {
		defer signal.Stop(hup)
		return c.watch(ctx, hup, log)
	}
}

// watch reloads the certificate on every value of hup until ctx ends.
func (c *certReloader) watch(ctx context.Context, hup <-chan os.Signal, log *slog.Logger) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			if err := c.Reload(); err != nil {
				log.Error("reload the TLS certificate: still serving the previous one", "err", err.Error())
				continue
			}
			log.Info("reloaded the TLS certificate", "cert", c.certFile)
		}
	}
}

// newACMEManager returns the manager of the certificates obtained with ACME
// for cfg's domains, kept in its cache directory. Only those host names are
// asked for, whatever name a client sends.
func newACMEManager(cfg config.Config) *autocert.Manager {
	m := &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      autocert.DirCache(cfg.ACMECache),
		HostPolicy: autocert.HostWhitelist(cfg.ACMEDomains()...),
		Email:      cfg.ACMEEmail,
	}
	if cfg.ACMEDirectory != "" {
		m.Client = &acme.Client{DirectoryURL: cfg.ACMEDirectory}
	}
	return m
}

// tlsSetup returns the TLS configuration of the server, nil when it serves
// plain HTTP, and the background work it needs (reloading on SIGHUP).
func tlsSetup(cfg config.Config, log *slog.Logger) (*tls.Config, func(context.Context) error, error) {
	switch {
	case cfg.TLSCert != "":
		r, err := newCertReloader(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, nil, err
		}
		tc := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate}
		return tc, r.watchHUP(log), nil
	case cfg.ACMEDomain != "":
		if err := os.MkdirAll(cfg.ACMECache, 0o700); err != nil {
			return nil, nil, fmt.Errorf("acme cache: %w", err)
		}
		// The manager's configuration answers the tls-alpn-01 challenge on
		// this listener, so it must be reachable on port 443 of the domains.
		tc := newACMEManager(cfg).TLSConfig()
		tc.MinVersion = tls.VersionTLS12
		return tc, nil, nil
	}
	return nil, nil, nil
}
