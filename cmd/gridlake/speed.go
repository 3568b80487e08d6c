package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/gridlake/gridlake/auth"
	"github.com/gridlake/gridlake/config"
	"github.com/gridlake/gridlake/internal/netutil"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/metrics"
	"github.com/gridlake/gridlake/objstore"
	"github.com/gridlake/gridlake/serving"
	"github.com/gridlake/gridlake/speed"
)

const speedSynopsis = `Runs a speed-layer process: it joins the consumer group "gridlake-speed"
on gridlake.battery and gridlake.room and keeps exact real-time aggregates of
the records above the newest batch cut. Several processes split the
partitions; each answers for its share at /speed/v1/... on --http-addr,
with /metrics, /healthz and /readyz.

On start it rebuilds its state by replaying Kafka from the newest cut, so
Kafka retention (kafka.retention) must far exceed the batch interval.

Example: gridlake speed --kafka-brokers kafka:9092 --s3-endpoint minio:9000`

func runSpeed(ctx context.Context, e *env, args []string) error {
	return runLayerProcess(ctx, e, args, "speed", speedSynopsis, false)
}

// runLayerProcess runs a speed layer with the HTTP surface every process
// has; withServing also mounts the serving layer (gridlake serve).
func runLayerProcess(ctx context.Context, e *env, args []string, name, synopsis string, withServing bool) error {
	fs, loader := flags(e, name, synopsis)
	cfg, err := load(fs, loader, e, args)
	if err != nil {
		return err
	}
	log := newLogger(e.stderr, cfg.Log)
	binds := map[string]string{"http.addr": cfg.HTTP.Addr}
	if withServing {
		binds["serve.pg_addr"] = cfg.Serve.PGAddr
	}
	acc, err := openAccess(ctx, &cfg, binds, log)
	if err != nil {
		return err
	}
	brokers := cfg.BrokerAddrs()
	if err := connectKafka(ctx, &cfg, brokers); err != nil {
		return err
	}
	store, err := objstore.Open(ctx, storeOptions(&cfg, cfg.S3Endpoint()))
	if err != nil {
		return fmt.Errorf("%w\nthe %s process reads the lake (batch cuts, views): pass --s3-endpoint", err, name)
	}
	w := kafkaio.NewWriter(brokers)
	defer w.Close()
	reg := metrics.NewRegistry()
	layer, err := newSpeed(&cfg, brokers, store, w, reg, log)
	if err != nil {
		return err
	}
	health := serving.NewHealth()
	health.Add("object_store", store.Ping)
	mux := processMux(layer, reg, health, brokers, acc)
	banner := "gridlake speed: %s/speed/v1/status\n"
	var sv *servingStack
	if withServing {
		sv, err = startServing(ctx, &cfg, store, layer, mux, acc, log)
		if err != nil {
			return err
		}
		defer sv.close()
		stopJobs, err := startJobs(ctx, &cfg, brokers, store, reg, mux, log)
		if err != nil {
			return err
		}
		defer stopJobs()
		banner = "gridlake serve: %s/v1/openapi.json  " + sv.pgHint() + "\n"
	}
	stop, base, err := listenHTTP(cfg.HTTP, mux, acc, log)
	if err != nil {
		return err
	}
	defer stop()
	fmt.Fprintf(e.stdout, banner, base)
	if acc.demoToken != "" {
		fmt.Fprint(e.stdout, tokenBanner(acc, &cfg, base, sv))
	}
	return layer.Run(ctx)
}

// newSpeed builds a speed layer from the configuration.
func newSpeed(cfg *config.Config, brokers []string, store *objstore.Store, w kafkaio.Writer, reg *metrics.Registry, log *slog.Logger) (*speed.Layer, error) {
	loc, err := cfg.Location()
	if err != nil {
		return nil, err
	}
	return speed.New(speed.Options{
		Brokers: brokers, Limits: cfg.Limits(), Location: loc, Store: store,
		DeadLetters: kafkaio.NewDeadLetters(w), Metrics: reg, Log: log.With("layer", "speed"),
	})
}

func storeOptions(cfg *config.Config, endpoint string) objstore.Options {
	return objstore.Options{Endpoint: endpoint, AccessKey: cfg.S3.AccessKey, SecretKey: cfg.S3.SecretKey,
		Bucket: cfg.S3.Bucket, Region: cfg.S3.Region, UseTLS: cfg.S3.UseTLS, Timeout: cfg.S3.Timeout}
}

// processMux is the HTTP surface every gridlake process has: the speed
// layer's queries, /metrics, /healthz, /readyz and /debug/pprof.
func processMux(layer *speed.Layer, reg *metrics.Registry, health *serving.Health, brokers []string, acc *access) *http.ServeMux {
	mux := newMux(reg)
	layer.Register(mux)
	health.Add("kafka", func(ctx context.Context) error { return kafkaio.Ping(ctx, brokers) })
	health.Register(mux)
	return mux
}

// newMux is a mux with /metrics and the profiler, which every process has.
func newMux(reg *metrics.Registry) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", reg.Handler())
	mountPprof(mux)
	return mux
}

// mountPprof exposes the Go profiler at /debug/pprof/, so operators can
// profile a live process (go tool pprof http://host/debug/pprof/profile).
func mountPprof(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}

// listenHTTP serves mux on h.Addr behind the access check of acc (every
// process's HTTP surface goes through here) and returns a stop function
// and the base URL (https:// when http.tls_cert_file is set). Header and
// idle timeouts reap half-open and idle connections; accept errors
// (descriptors exhausted) back off.
func listenHTTP(h config.HTTP, mux http.Handler, acc *access, log *slog.Logger) (func(), string, error) {
	var tlsConf *tls.Config
	if h.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(h.TLSCertFile, h.TLSKeyFile)
		if err != nil {
			return nil, "", fmt.Errorf("HTTP TLS (http.tls_cert_file, http.tls_key_file): %w", err)
		}
		tlsConf = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	}
	raw, err := net.Listen("tcp", h.Addr)
	if err != nil {
		return nil, "", fmt.Errorf("listen on %s (in use? pick another with --http-addr): %w", h.Addr, err)
	}
	ln := netutil.Wrap(raw, log)
	srv := &http.Server{Handler: auth.Protect(acc.dir, acc.sessions, mux), ReadHeaderTimeout: h.ReadHeaderTimeout, IdleTimeout: h.IdleTimeout,
		MaxHeaderBytes: h.MaxHeaderBytes, TLSConfig: tlsConf, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() {
		var err error
		if tlsConf != nil {
			err = srv.ServeTLS(ln, "", "")
		} else {
			err = srv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server stopped", "err", err)
		}
	}()
	scheme := "http://"
	if tlsConf != nil {
		scheme = "https://"
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, scheme + ln.Addr().String(), nil
}
