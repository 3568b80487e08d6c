package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/gridlake/gridlake/config"
	"github.com/gridlake/gridlake/internal/httpx"
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
with /metrics, /healthz and /readyz, and announces what it owns in the
lake (_speed/gridlake-speed/members/) so that gridlake serve processes with
serve.speed=remote find it and ask it over /speed/v1/source/ (role engineer).

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
		binds["serve.flight_addr"] = cfg.Serve.FlightAddr
	}
	acc, err := openAccess(&cfg, binds)
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
	health := httpx.NewHealth()
	health.Add("object_store", store.Ping)
	lc := newLifecycle(ctx)
	// A serve process with serve.speed=remote runs no speed layer: it asks
	// the speed processes (fanout.go).
	var layer *speed.Layer
	var fan *serving.Fanout
	var mux *http.ServeMux
	if withServing && cfg.Serve.Speed == "remote" {
		if fan, err = newFanout(ctx, &cfg, brokers, store, log); err != nil {
			return err
		}
		mux = newMux(reg)
		health.Add("kafka", func(ctx context.Context) error { return kafkaio.Ping(ctx, brokers) })
		health.Register(mux)
	} else {
		if layer, err = newSpeed(&cfg, brokers, store, w, reg, log); err != nil {
			return err
		}
		mux = processMux(layer, reg, health, brokers, acc)
		lc.add("speed layer", layer.Run)
		// A serve process reloads its layer's rules with its own
		// (alertserve.go).
		if !withServing && cfg.Alerts.Enabled && cfg.Alerts.RulesFile != "" {
			lc.add("alert rules", func(ctx context.Context) error { return watchRules(ctx, cfg.Alerts.RulesFile, log, layer.SetRules) })
		}
	}
	if !withServing {
		layer.RegisterSource(mux, cfg.Speed.SourceMaxItems, "speed.source_max_items")
	}
	banner := "gridlake speed: %s/speed/v1/status\n"
	var sv *servingStack
	if withServing {
		sv, err = startServing(ctx, e, &cfg, store, layer, fan, mux, acc, log)
		if err != nil {
			return err
		}
		defer sv.close()
		sv.join(lc)
		sched, err := startJobs(ctx, &cfg, brokers, store, reg, mux, log)
		if err != nil {
			return err
		}
		defer sched.close()
		sched.join(lc)
		al, err := startAlerting(ctx, &cfg, brokers, store, layer, sv, sched, reg, w, health, mux, log)
		if err != nil {
			return err
		}
		al.join(lc)
		banner = "gridlake serve: %s/v1/openapi.json  " + sv.pgHint() + "\n" + sv.flightHint()
	}
	hl, err := listenHTTP(e, cfg.HTTP, mux, acc, log)
	if err != nil {
		return err
	}
	defer hl.close()
	hl.join(lc)
	acc.join(lc, log)
	if !withServing {
		announce(lc, &cfg, layer, store, hl.base)
	}
	fmt.Fprintf(e.stdout, banner, hl.base)
	if acc.demoToken != "" {
		fmt.Fprint(e.stdout, tokenBanner(acc, &cfg, hl.base, sv))
	}
	return lc.run()
}

// newSpeed builds a speed layer from the configuration.
func newSpeed(cfg *config.Config, brokers []string, store *objstore.Store, w kafkaio.Writer, reg *metrics.Registry, log *slog.Logger) (*speed.Layer, error) {
	loc, err := cfg.Location()
	if err != nil {
		return nil, err
	}
	al, err := alertOptions(cfg, w)
	if err != nil {
		return nil, err
	}
	return speed.New(speed.Options{
		Brokers: brokers, Limits: cfg.Limits(), Location: loc, Store: store,
		DeadLetters: kafkaio.NewDeadLetters(w), Metrics: reg, Log: log.With("layer", "speed"), Alerts: al,
	})
}

func storeOptions(cfg *config.Config, endpoint string) objstore.Options {
	return objstore.Options{Endpoint: endpoint, AccessKey: cfg.S3.AccessKey, SecretKey: cfg.S3.SecretKey,
		Bucket: cfg.S3.Bucket, Region: cfg.S3.Region, UseTLS: cfg.S3.UseTLS, Timeout: cfg.S3.Timeout}
}

// processMux is the HTTP surface every gridlake process has: the speed
// layer's queries, /metrics, /healthz, /readyz and /debug/pprof.
func processMux(layer *speed.Layer, reg *metrics.Registry, health *httpx.Health, brokers []string, acc *access) *http.ServeMux {
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
	httpx.MountPprof(mux)
	return mux
}
