package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/gridlake/gridlake/auth"
	"github.com/gridlake/gridlake/config"
	"github.com/gridlake/gridlake/internal/netutil"
)

// httpListener is a process's HTTP surface, listening; the process's
// lifecycle serves it (join).
type httpListener struct {
	srv *http.Server
	ln  net.Listener
	// base is the listener's URL, https:// when http.tls_cert_file is set.
	base string
}

// listenHTTP listens on h.Addr for mux behind the access check of acc
// (every process's HTTP surface goes through here). Header and idle
// timeouts reap half-open and idle connections; accept errors
// (descriptors exhausted) back off.
func listenHTTP(e *env, h config.HTTP, mux http.Handler, acc *access, log *slog.Logger) (*httpListener, error) {
	var tlsConf *tls.Config
	if h.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(h.TLSCertFile, h.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("HTTP TLS (http.tls_cert_file, http.tls_key_file): %w", err)
		}
		tlsConf = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	}
	if tlsConf == nil && !auth.IsLoopback(h.Addr) {
		log.Warn("HTTP listens beyond loopback without TLS: tokens, passwords and session cookies cross the network readable; set http.tls_cert_file and http.tls_key_file, or put a TLS proxy in front", "addr", h.Addr)
	}
	raw, err := e.listenTCP(h.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (in use? pick another with --http-addr): %w", h.Addr, err)
	}
	ln := netutil.Wrap(raw, log)
	srv := &http.Server{Handler: auth.Protect(acc.dir, acc.sessions, mux), ReadHeaderTimeout: h.ReadHeaderTimeout, IdleTimeout: h.IdleTimeout,
		MaxHeaderBytes: h.MaxHeaderBytes, TLSConfig: tlsConf, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	scheme := "http://"
	if tlsConf != nil {
		scheme = "https://"
	}
	return &httpListener{srv: srv, ln: ln, base: scheme + ln.Addr().String()}, nil
}

// serve serves until shutdown (nil) or until the listener fails.
func (l *httpListener) serve() error {
	var err error
	if l.srv.TLSConfig != nil {
		err = l.srv.ServeTLS(l.ln, "", "")
	} else {
		err = l.srv.Serve(l.ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("serve HTTP on %s: %w", l.ln.Addr(), err)
}

// shutdown stops accepting and waits briefly for requests in flight.
func (l *httpListener) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = l.srv.Shutdown(ctx)
}

// close closes the listener of a process that stops before it serves.
func (l *httpListener) close() { _ = l.ln.Close() }

// join adds the HTTP server to the process's lifecycle.
func (l *httpListener) join(lc *lifecycle) { lc.addServer(l.serve, l.shutdown) }
