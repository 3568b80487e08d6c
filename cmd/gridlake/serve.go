package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"

	"github.com/gridlake/gridlake/auth"
	"github.com/gridlake/gridlake/config"
	"github.com/gridlake/gridlake/objstore"
	"github.com/gridlake/gridlake/serving"
	"github.com/gridlake/gridlake/serving/pgwire"
	"github.com/gridlake/gridlake/speed"
	"github.com/gridlake/gridlake/views"
)

const serveSynopsis = `Runs the serving layer: the HTTP API under /v1 (OpenAPI at
/v1/openapi.json), SQL over HTTP (POST /v1/sql) and over the PostgreSQL wire
protocol on --serve-pg-addr (psql -h 127.0.0.1 -p 15432), with the speed
layer in-process. Every answer merges the newest batch views with the speed
layer's state above their cut, exactly, and states its freshness.

With serve.speed=local (the default) the speed layer runs in this process:
it joins the consumer group "gridlake-speed" and must own every partition,
so run one such serve process. With serve.speed=remote it runs none and
asks the gridlake speed processes that announce themselves in the lake
(with the engineer token of serve.speed_token); run as many serve processes
as the load needs.

Example: gridlake serve --kafka-brokers kafka:9092 --s3-endpoint minio:9000`

func runServe(ctx context.Context, e *env, args []string) error {
	return runLayerProcess(ctx, e, args, "serve", serveSynopsis, true)
}

// servingStack is the serving layer of a process: the merger, the API, the
// SQL engine and the PostgreSQL listener.
type servingStack struct {
	merger *serving.Merger
	sql    *serving.SQL
	pgAddr string
	// pg is the PostgreSQL listener, nil when serve.pg_addr is empty; the
	// process's lifecycle serves it.
	pg *pgListener
	// flight is the Flight SQL listener, nil when serve.flight_addr is
	// empty (serveflight.go).
	flight *flightListener
	closer []func()
}

// pgListener is a listening PostgreSQL protocol server.
type pgListener struct {
	srv *pgwire.Server
	ln  net.Listener
}

// serve serves until ctx ends (nil) or the listener fails.
func (p *pgListener) serve(ctx context.Context) error { return p.srv.Serve(ctx, p.ln) }

func (s *servingStack) close() {
	for i := len(s.closer) - 1; i >= 0; i-- {
		s.closer[i]()
	}
}

func (s *servingStack) pgHint() string {
	if s.pgAddr == "" {
		return "(PostgreSQL protocol off)"
	}
	host, port, _ := net.SplitHostPort(s.pgAddr)
	return fmt.Sprintf("psql -h %s -p %s", host, port)
}

// join adds the PostgreSQL listener, if any, to the process's lifecycle.
func (s *servingStack) join(lc *lifecycle) {
	if s.pg != nil {
		lc.add("PostgreSQL listener", s.pg.serve)
	}
	if s.flight != nil {
		lc.add("Flight SQL listener", s.flight.serve)
	}
}

// startServing mounts the /v1 API on mux and opens the PostgreSQL
// listener.
//
// The speed side is layer, in this process, or fan, the speed processes
// that announce themselves in the lake (serve.speed=remote).
func startServing(ctx context.Context, e *env, cfg *config.Config, store *objstore.Store, layer *speed.Layer, fan *serving.Fanout, mux *http.ServeMux, acc *access, log *slog.Logger) (*servingStack, error) {
	loc, err := cfg.Location()
	if err != nil {
		return nil, err
	}
	sv := &servingStack{}
	rd, err := views.OpenReader(ctx, store, filepath.Join(cfg.DataDir, "serve"))
	if err != nil {
		return nil, err
	}
	sv.closer = append(sv.closer, func() { rd.Close() })
	if fan != nil {
		sv.merger = serving.NewFanoutMerger(store, rd, fan, loc, nil)
	} else {
		sv.merger = serving.NewMerger(store, rd, layer, loc, nil)
	}
	sv.sql, err = serving.NewSQL(ctx, sv.merger, serving.SQLOptions{Timeout: cfg.Serve.SQLTimeout, MaxRows: cfg.Serve.SQLMaxRows,
		MaxResultBytes: int64(cfg.Serve.SQLMaxResultBytes), MemoryLimit: int64(cfg.Serve.SQLMemoryLimit), MaxSpillBytes: int64(cfg.Serve.SQLMaxSpillBytes),
		MaxConcurrent: cfg.Serve.SQLMaxConcurrent, MaxBodyBytes: int64(cfg.Serve.SQLMaxBodyBytes), MaxRoomDays: cfg.Serve.SQLMaxRoomDays, DataDir: cfg.DataDir, Log: log})
	if err != nil {
		sv.close()
		return nil, err
	}
	sv.closer = append(sv.closer, func() { sv.sql.Close() })
	h := cfg.HTTP
	tar := cfg.Site.Tariff
	serving.NewAPI(sv.merger, sv.sql).
		WithLimits(serving.Limits{MaxWindows: h.MaxWindows, MaxDays: h.MaxDays, MaxHotelDays: h.MaxHotelDays, MaxIDs: h.MaxIDs, MaxPage: h.MaxPage}).
		WithTariff(serving.Tariff{Currency: tar.Currency, PricePerKWh: tar.PricePerKWh, CO2GPerKWh: tar.CO2GPerKWh}).
		Register(mux)
	serving.RegisterDashboard(mux)
	if cfg.Serve.PGAddr != "" {
		pgTLS, err := loadPGTLS(cfg)
		if err != nil {
			sv.close()
			return nil, err
		}
		ln, err := e.listenTCP(cfg.Serve.PGAddr)
		if err != nil {
			sv.close()
			return nil, fmt.Errorf("listen for PostgreSQL clients on %s (in use? pick another with --serve-pg-addr, or empty to disable): %w", cfg.Serve.PGAddr, err)
		}
		if pgTLS == nil && !auth.IsLoopback(cfg.Serve.PGAddr) {
			log.Warn("PostgreSQL listens beyond loopback without TLS: queries and answers cross the network readable (SCRAM keeps passwords safe); set serve.pg_tls_cert_file and serve.pg_tls_key_file", "addr", cfg.Serve.PGAddr)
		}
		sv.pgAddr = ln.Addr().String()
		sv.closer = append(sv.closer, func() { ln.Close() }) // when the process stops before it serves
		sv.pg = &pgListener{ln: ln, srv: &pgwire.Server{Q: sv.sql, Auth: acc.dir, TLS: pgTLS, RequireTLS: cfg.Serve.PGTLSRequired, Log: log.With("layer", "pgwire"),
			MaxConns: cfg.Serve.PGMaxConns, StartupTimeout: cfg.Serve.PGStartupTimeout, IdleTimeout: cfg.Serve.PGIdleTimeout, WriteTimeout: cfg.Serve.PGWriteTimeout,
			MaxMessageBytes: cfg.Serve.PGMaxMessageBytes, MaxSessionBytes: cfg.Serve.PGMaxSessionBytes}}
	}
	if sv.flight, err = startFlight(e, cfg, sv.sql, acc, log); err != nil {
		sv.close()
		return nil, err
	}
	if sv.flight != nil {
		sv.closer = append(sv.closer, func() { sv.flight.ln.Close() })
	}
	return sv, nil
}

// loadPGTLS reads the PostgreSQL listener's certificate and key, if
// configured (serve.pg_tls_cert_file, serve.pg_tls_key_file).
func loadPGTLS(cfg *config.Config) (*tls.Config, error) {
	certFile, keyFile := cfg.Serve.PGTLSCertFile, cfg.Serve.PGTLSKeyFile
	if certFile == "" && keyFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load the PostgreSQL TLS certificate (serve.pg_tls_cert_file %s, serve.pg_tls_key_file %s): %w", certFile, keyFile, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}
