package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/gridlake/gridlake/auth"
	"github.com/gridlake/gridlake/config"
	"github.com/gridlake/gridlake/serving"
	"github.com/gridlake/gridlake/serving/flightsql"
)

// flightListener is a listening Arrow Flight SQL server.
type flightListener struct {
	srv  *flightsql.Server
	ln   net.Listener
	addr string
}

// serve serves until ctx ends (nil) or the listener fails.
func (f *flightListener) serve(ctx context.Context) error { return f.srv.Serve(ctx, f.ln) }

// startFlight opens the Flight SQL listener (serve.flight_addr; nil when
// empty), with the PostgreSQL port's certificate when one is configured.
func startFlight(e *env, cfg *config.Config, q *serving.SQL, acc *access, log *slog.Logger) (*flightListener, error) {
	if cfg.Serve.FlightAddr == "" {
		return nil, nil
	}
	tlsCfg, err := loadPGTLS(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := e.listenTCP(cfg.Serve.FlightAddr)
	if err != nil {
		return nil, fmt.Errorf("listen for Flight SQL clients on %s (in use? pick another with --serve-flight-addr, or empty to disable): %w", cfg.Serve.FlightAddr, err)
	}
	if tlsCfg == nil && !auth.IsLoopback(cfg.Serve.FlightAddr) {
		log.Warn("Flight SQL listens beyond loopback without TLS: tokens, queries and answers cross the network readable; set serve.pg_tls_cert_file and serve.pg_tls_key_file", "addr", cfg.Serve.FlightAddr)
	}
	return &flightListener{ln: ln, addr: ln.Addr().String(), srv: &flightsql.Server{Q: q, Auth: acc.dir, Sessions: acc.sessions, TLS: tlsCfg,
		Log: log.With("layer", "flightsql"), Version: "gridlake",
		MaxConns: cfg.Serve.FlightMaxConns, MaxMessageBytes: cfg.Serve.FlightMaxMessageBytes, IdleTimeout: cfg.Serve.FlightIdleTimeout}}, nil
}

// flightHint is the banner line naming the Flight SQL address.
func (s *servingStack) flightHint() string {
	if s.flight == nil {
		return ""
	}
	scheme := "grpc"
	if s.flight.srv.TLS != nil {
		scheme = "grpc+tls"
	}
	return fmt.Sprintf("  flight  %s://%s   (Arrow Flight SQL: ADBC, pandas, polars)\n", scheme, s.flight.addr)
}
