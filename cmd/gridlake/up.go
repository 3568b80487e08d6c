package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/gridlake/gridlake/config"
	"github.com/gridlake/gridlake/internal/devstack"
	"github.com/gridlake/gridlake/internal/httpx"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/kafkaio/broker"
	"github.com/gridlake/gridlake/metrics"
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
	acc, err := openAccess(&cfg, map[string]string{"http.addr": cfg.HTTP.Addr, "serve.pg_addr": cfg.Serve.PGAddr, "serve.flight_addr": cfg.Serve.FlightAddr})
	if err != nil {
		return err
	}
	st, err := startStack(ctx, &cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()

	lc := newLifecycle(ctx)
	joinStack(st, lc)
	w := kafkaio.NewWriter(st.Brokers)
	defer w.Close()
	reg := metrics.NewRegistry()
	layer, err := newSpeed(&cfg, st.Brokers, st.Store, w, reg, log)
	if err != nil {
		return err
	}
	// The speed layer stops the process when it must not go on (a topic
	// re-created below the lake's cut): serving without it would mislead.
	lc.add("speed layer", layer.Run)
	health := httpx.NewHealth()
	health.Add("object_store", st.Store.Ping)
	mux := processMux(layer, reg, health, st.Brokers, acc)
	sv, err := startServing(ctx, e, &cfg, st.Store, layer, nil, mux, acc, log)
	if err != nil {
		return err
	}
	defer sv.close()
	sv.join(lc)
	sched, err := startJobs(ctx, &cfg, st.Brokers, st.Store, reg, mux, log)
	if err != nil {
		return err
	}
	defer sched.close()
	sched.join(lc)
	al, err := startAlerting(ctx, &cfg, st.Brokers, st.Store, layer, sv, sched, reg, w, health, mux, log)
	if err != nil {
		return err
	}
	al.join(lc)
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

	fmt.Fprintf(e.stdout, "gridlake is up\n  dashboard %s/\n%s  kafka   %s   (try: kcat -b %s -L)\n  s3      http://%s   bucket %s\n  http    %s   (/v1/openapi.json, /v1/status, /v1/jobs, /metrics, /healthz)\n  sql     %s   or: gridlake sql -c 'SELECT count(*) FROM battery_now'\n%s  data    %s\n",
		hl.base, tokenBanner(acc, &cfg, hl.base, sv), st.Brokers[0], st.Brokers[0], st.S3Addr, cfg.S3.Bucket, hl.base, sv.pgHint(), sv.flightHint(), cfg.DataDir)
	stop := context.AfterFunc(ctx, func() { fmt.Fprintln(e.stdout, "gridlake: shutting down") })
	defer stop()
	return lc.run()
}

// startStack starts the embedded broker and object store unless external
// ones are configured, creates the topics and opens the lake's bucket.
func startStack(ctx context.Context, cfg *config.Config, log *slog.Logger) (*devstack.Stack, error) {
	o := devstack.Options{
		Broker: broker.Options{Port: cfg.Kafka.EmbeddedPort, DataDir: filepath.Join(cfg.DataDir, "kafka"),
			DefaultPartitions: cfg.Kafka.Partitions, Log: log.With("component", "broker")},
		Topics: topicSpec(cfg),
		Server: devstack.ServerOptions{Kind: devstack.Embedded, Dir: cfg.DataDir, Addr: fmt.Sprintf("127.0.0.1:%d", cfg.S3.EmbeddedPort),
			Limits:    s3server.Limits{ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout, IdleTimeout: cfg.HTTP.IdleTimeout, MaxHeaderBytes: cfg.HTTP.MaxHeaderBytes},
			AccessKey: cfg.S3.AccessKey, SecretKey: cfg.S3.SecretKey, Log: log},
		Store:      storeOptions(cfg, ""),
		Log:        log,
		BrokerHint: "another gridlake running? --kafka-embedded-port 0 picks a free port",
		ServerHint: "another gridlake running? --s3-embedded-port 0 picks a free port",
	}
	if len(cfg.Kafka.Brokers) > 0 {
		o.Brokers = cfg.BrokerAddrs()
	}
	if cfg.S3.Endpoint != "" {
		o.S3Endpoint = cfg.S3Endpoint()
	}
	return devstack.Start(ctx, o)
}

// joinStack adds the embedded object store to the process's lifecycle:
// its listener failing stops the process. The embedded broker cannot
// report a failure; both close after every other part has stopped.
func joinStack(st *devstack.Stack, lc *lifecycle) {
	if st.Server != nil {
		lc.addBackground(st.Server.Failed(), nil)
	}
}
