package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/gridlake/gridlake/config"
	"github.com/gridlake/gridlake/internal/httpx"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/kafkaio/broker"
	"github.com/gridlake/gridlake/metrics"
	"github.com/gridlake/gridlake/objstore"
	"github.com/gridlake/gridlake/objstore/s3server"
)

const upSynopsis = `Runs the whole pipeline in one process on embedded defaults: a
Kafka-protocol broker on 127.0.0.1 (unless --kafka-brokers is given), an
S3-compatible object store backed by --data-dir (unless --s3-endpoint is
given), the speed and serving layers, the batch job scheduler (compaction
every 5 minutes, recompute, the daily close, housekeeping: jobs.*), the HTTP
endpoints on --http-addr and, with --simulate, the device simulator at a
small scale.

Data lives under --data-dir: kafka/ holds the broker's log, s3/ the lake.
Stop with Ctrl-C; a restart continues where it stopped.

Example: gridlake up --simulate`

func runUp(ctx context.Context, e *env, args []string) error {
	fs, loader := flags(e, "up", upSynopsis)
	withSim := fs.Bool("simulate", false, "also run the device simulator (simulate.* settings)")
	cfg, err := load(fs, loader, e, args)
	if err != nil {
		return err
	}
	log := newLogger(e.stderr, cfg.Log)
	acc, err := openAccess(&cfg, map[string]string{"http.addr": cfg.HTTP.Addr, "serve.pg_addr": cfg.Serve.PGAddr})
	if err != nil {
		return err
	}
	st, err := startStack(ctx, &cfg, log)
	if err != nil {
		return err
	}
	defer st.close()

	lc := newLifecycle(ctx)
	st.join(lc)
	w := kafkaio.NewWriter(st.brokers)
	defer w.Close()
	reg := metrics.NewRegistry()
	layer, err := newSpeed(&cfg, st.brokers, st.store, w, reg, log)
	if err != nil {
		return err
	}
	// The speed layer stops the process when it must not go on (a topic
	// re-created below the lake's cut): serving without it would mislead.
	lc.add("speed layer", layer.Run)
	health := httpx.NewHealth()
	health.Add("object_store", st.store.Ping)
	mux := processMux(layer, reg, health, st.brokers, acc)
	sv, err := startServing(ctx, e, &cfg, st.store, layer, mux, acc, log)
	if err != nil {
		return err
	}
	defer sv.close()
	sv.join(lc)
	sched, err := startJobs(ctx, &cfg, st.brokers, st.store, reg, mux, log)
	if err != nil {
		return err
	}
	defer sched.close()
	sched.join(lc)
	hl, err := listenHTTP(e, cfg.HTTP, mux, acc, log)
	if err != nil {
		return err
	}
	defer hl.close()
	hl.join(lc)
	acc.join(lc, log)
	if *withSim {
		lc.add("simulator", func(ctx context.Context) error {
			if err := simulateTo(ctx, &cfg, w, e.stderr); err != nil {
				return fmt.Errorf("simulator: %w", err)
			}
			<-ctx.Done() // a finished simulation leaves the pipeline running
			return nil
		})
	}

	fmt.Fprintf(e.stdout, "gridlake is up\n  dashboard %s/\n%s  kafka   %s   (try: kcat -b %s -L)\n  s3      http://%s   bucket %s\n  http    %s   (/v1/openapi.json, /v1/status, /v1/jobs, /metrics, /healthz)\n  sql     %s   or: gridlake sql -c 'SELECT count(*) FROM battery_now'\n  data    %s\n",
		hl.base, tokenBanner(acc, &cfg, hl.base, sv), st.brokers[0], st.brokers[0], st.s3Addr, cfg.S3.Bucket, hl.base, sv.pgHint(), cfg.DataDir)
	stop := context.AfterFunc(ctx, func() { fmt.Fprintln(e.stdout, "gridlake: shutting down") })
	defer stop()
	return lc.run()
}

// stack is the broker and object store a process runs on, embedded or not.
type stack struct {
	brokers []string
	s3Addr  string
	store   *objstore.Store
	// s3 is the embedded object store, if started.
	s3      *s3server.Server
	closers []func()
}

// join adds the embedded object store to the process's lifecycle: its
// listener failing stops the process. The broker and store close after
// every other part has stopped (close).
func (s *stack) join(lc *lifecycle) {
	if s.s3 != nil {
		lc.addBackground(s.s3.Failed(), nil)
	}
}

func (s *stack) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
}

// startStack starts the embedded broker and object store unless external
// ones are configured, creates the topics and opens the lake's bucket.
func startStack(ctx context.Context, cfg *config.Config, log *slog.Logger) (*stack, error) {
	st := &stack{brokers: cfg.BrokerAddrs(), s3Addr: cfg.S3Endpoint()}
	ok := false
	defer func() {
		if !ok {
			st.close()
		}
	}()
	if len(cfg.Kafka.Brokers) == 0 {
		b, err := broker.Start(broker.Options{Port: cfg.Kafka.EmbeddedPort, DataDir: filepath.Join(cfg.DataDir, "kafka"),
			DefaultPartitions: cfg.Kafka.Partitions, Log: log.With("component", "broker")})
		if err != nil {
			return nil, fmt.Errorf("%w (another gridlake running? --kafka-embedded-port 0 picks a free port)", err)
		}
		st.closers = append(st.closers, b.Close)
		st.brokers = []string{b.Addr()}
		log.Info("embedded Kafka broker started", "addr", b.Addr())
	}
	if err := kafkaio.EnsureTopics(ctx, st.brokers, topicSpec(cfg)); err != nil {
		return nil, err
	}
	if cfg.S3.Endpoint == "" {
		srv := s3server.New(filepath.Join(cfg.DataDir, "s3"), cfg.S3.AccessKey, cfg.S3.SecretKey, log)
		srv.Limits = s3server.Limits{ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout, IdleTimeout: cfg.HTTP.IdleTimeout, MaxHeaderBytes: cfg.HTTP.MaxHeaderBytes}
		if err := srv.Start(fmt.Sprintf("127.0.0.1:%d", cfg.S3.EmbeddedPort)); err != nil {
			return nil, fmt.Errorf("%w (another gridlake running? --s3-embedded-port 0 picks a free port)", err)
		}
		st.closers = append(st.closers, func() { _ = srv.Close() })
		st.s3 = srv
		st.s3Addr = srv.Addr()
		log.Info("embedded object store started", "addr", srv.Addr())
	}
	store, err := objstore.Open(ctx, storeOptions(cfg, st.s3Addr))
	if err != nil {
		return nil, err
	}
	st.store = store
	ok = true
	return st, nil
}
