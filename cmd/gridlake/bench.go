package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/gridlake/gridlake/bench"
)

const benchUsage = `Usage: gridlake bench <layer> [flags]

Measures a layer end to end and prints one JSON line of figures, each named
with its unit; progress goes to stderr.

Layers:
  speed   fill the embedded broker with the reference fleet (30,000 batteries,
          1,000 rooms), measure events/s through a speed process, then its
          p99 event-to-visible latency at the fleet's real rate, and its peak
          RSS. The peer: a bare kafka-go consumer process reading the same
          backlog (default --fill-seconds 2400: 72M events, a window of 30 s or more);
          speed_over_bare_ratio. Targets: DESIGN §8.
          --with-batch runs batch jobs (compaction, backfill) beside the
          latency run, to show they do not delay the real-time path.
  compact fill the broker with the reference fleet, compact it once to Parquet
          in MinIO (bin/minio from make deps; else the embedded S3 server).
          The peer: DuckDB read_json -> zstd Parquet of the same messages
          (exported to NDJSON, untimed); compact_over_duckdb_ratio.
  recompute generate one hour of the fleet (108M readings) as raw Parquet in
          MinIO and time the DuckDB recompute of its views. The peer: the
          battery 1m stats in plain DuckDB SQL over the same files;
          recompute_over_duckdb_seconds_ratio.
  serve   the previous UTC hour of the fleet compacted in MinIO and the last
          --fill-seconds in Kafka above the cut, then the /v1 API with the
          dashboard mix (72.5% a battery's last-hour 1m stats, 25% its latest
          reading, 0.5% each fleet now, fleet last hour, the out-of-range
          page, hotel today and status) sent by a separate process
          (serve-load) at a fixed open-loop rate over --conns connections;
          then up to --search-steps short runs find the highest rate with
          every p99 under --target-p99-ms. Target: p99 < 10 ms for every
          endpoint at 2,000 requests/s. About 2 minutes of load after the
          setup. --target URL measures a running gridlake serve instead
          (several, comma-separated, take the requests in turn).
          --speed-procs 3 --serve-procs 2 runs the same data and load over
          three gridlake speed processes and two gridlake serve processes
          with serve.speed=remote, the load split across the two; the line
          says speed_procs and serve_procs. --ingest sends the fleet live
          (30,000 readings/s) while measuring.
  serve-load  the load process of serve: the dashboard mix at --rate for
          --duration against --target (several, comma-separated, take the
          requests in turn; token in $GRIDLAKE_TOKEN), latency
          from each request's scheduled send time; prints p50/p99/max per
          endpoint.
  sql     one serving layer's SQL engine behind the PostgreSQL protocol, Arrow
          Flight SQL and POST /v1/sql (Arrow), on loopback: rows/s of a client
          reading a --rows result (default 1M rows of id, battery_id, ts,
          voltage_v) through each, the best of --runs, and Flight SQL's ratio
          to the PostgreSQL protocol.
`

func runBench(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		return actionHelp(e, args, benchUsage)
	}
	switch args[0] {
	case "speed":
		fs := flag.NewFlagSet("gridlake bench speed", flag.ContinueOnError)
		fs.SetOutput(e.stderr)
		o := bench.SpeedOptions{Progress: e.stderr}
		// Half an hour of the fleet (55.8M events): a window of about 30 s
		// at the speed layer's rate, so the figure is sustained.
		fleetFlags(fs, &o.Fleet, 2400)
		fs.IntVar(&o.LatencySeconds, "latency-seconds", 20, "seconds of paced traffic for the latency run")
		fs.StringVar(&o.ProfileDir, "profile", "", "save pprof CPU and heap profiles of the speed process into this folder")
		fs.BoolVar(&o.WithBatch, "with-batch", false, "run compaction and backfill jobs beside the latency run (isolation check)")
		fs.BoolVar(&o.Alerts, "alerts", true, "evaluate the default alert rules in the speed process (--alerts=false measures without)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		bin, err := os.Executable()
		if err != nil {
			return err
		}
		o.Binary = bin
		res, err := bench.Speed(ctx, o)
		if err != nil {
			return err
		}
		return json.NewEncoder(e.stdout).Encode(res)
	case "compact":
		fs := flag.NewFlagSet("gridlake bench compact", flag.ContinueOnError)
		fs.SetOutput(e.stderr)
		o := bench.CompactOptions{Progress: e.stderr}
		fleetFlags(fs, &o.Fleet, 60)
		fs.IntVar(&o.Concurrency, "concurrency", 4, "partitions compacted at once")
		fs.StringVar(&o.ProfileDir, "profile", "", "save a pprof CPU profile of the run into this folder")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		res, err := bench.Compact(ctx, o)
		if err != nil {
			return err
		}
		return json.NewEncoder(e.stdout).Encode(res)
	case "recompute":
		fs := flag.NewFlagSet("gridlake bench recompute", flag.ContinueOnError)
		fs.SetOutput(e.stderr)
		o := bench.RecomputeOptions{Progress: e.stderr}
		fs.IntVar(&o.Batteries, "batteries", 30000, "batteries (one reading per second for an hour each)")
		fs.IntVar(&o.Partitions, "partitions", 12, "raw files (one per partition)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		res, err := bench.Recompute(ctx, o)
		if err != nil {
			return err
		}
		return json.NewEncoder(e.stdout).Encode(res)
	case "serve":
		fs := flag.NewFlagSet("gridlake bench serve", flag.ContinueOnError)
		fs.SetOutput(e.stderr)
		o := bench.ServeOptions{Progress: e.stderr}
		fleetFlags(fs, &o.Fleet, 60)
		fs.IntVar(&o.Rate, "rate", 2000, "requests per second")
		fs.IntVar(&o.Seconds, "seconds", 20, "seconds of measured traffic at --rate")
		fs.IntVar(&o.Conns, "conns", 16, "keep-alive connections of the load process")
		fs.Float64Var(&o.TargetP99, "target-p99-ms", 10, "the p99 every endpoint must stay under")
		fs.IntVar(&o.SearchSteps, "search-steps", 6, "short runs searching the highest rate within the target (0: no search)")
		fs.IntVar(&o.StepSeconds, "step-seconds", 8, "seconds of each search run")
		fs.IntVar(&o.SearchCeiling, "search-ceiling", 20000, "the highest rate the search tries")
		target := fs.String("target", "", "measure a serving process already running at this base URL (token: $GRIDLAKE_TOKEN) instead of the bench's own")
		fs.StringVar(&o.ProfileDir, "profile", "", "save a pprof CPU profile of the measured part into this folder")
		fs.IntVar(&o.SpeedProcs, "speed-procs", 0, "run the speed layer as this many gridlake speed processes (0: in the bench's own process)")
		fs.BoolVar(&o.Ingest, "ingest", false, "send the fleet live at one reading per battery a second while measuring, as in production")
		fs.IntVar(&o.ServeProcs, "serve-procs", 0, "with --speed-procs: this many gridlake serve --serve-speed remote processes share the load")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		bin, err := os.Executable()
		if err != nil {
			return err
		}
		o.Binary = bin
		var res bench.ServeResult
		if *target != "" && (o.SpeedProcs > 0 || o.ServeProcs > 0) {
			return fmt.Errorf("%w: --target measures a running server; --speed-procs and --serve-procs start the bench's own", errUsage)
		}
		if *target != "" {
			res, err = bench.ServeTarget(ctx, o, strings.TrimRight(*target, "/"), os.Getenv("GRIDLAKE_TOKEN"))
		} else {
			res, err = bench.Serve(ctx, o)
		}
		if err != nil {
			return err
		}
		return json.NewEncoder(e.stdout).Encode(res)
	case "serve-load":
		fs := flag.NewFlagSet("gridlake bench serve-load", flag.ContinueOnError)
		fs.SetOutput(e.stderr)
		var o bench.LoadOptions
		fs.StringVar(&o.Target, "target", "", "base URL of the serving process, e.g. http://127.0.0.1:8080")
		fs.IntVar(&o.Rate, "rate", 2000, "requests per second")
		fs.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to send")
		fs.IntVar(&o.Conns, "conns", 16, "keep-alive connections")
		fs.IntVar(&o.Batteries, "batteries", 30000, "battery ids drawn from B-00000 up")
		fs.Uint64Var(&o.Seed, "seed", 1, "seed of the request mix")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		o.Target = strings.TrimRight(o.Target, "/")
		o.Token = os.Getenv("GRIDLAKE_TOKEN")
		res, err := bench.Load(ctx, o)
		if err != nil {
			return err
		}
		return json.NewEncoder(e.stdout).Encode(res)
	case "kafka-read":
		fs := flag.NewFlagSet("gridlake bench kafka-read", flag.ContinueOnError)
		fs.SetOutput(e.stderr)
		brokers := fs.String("kafka-brokers", "", "bootstrap servers, comma separated")
		partitions := fs.Int("partitions", 12, "partitions per topic")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *brokers == "" || *partitions < 1 || *partitions > 10000 {
			return fmt.Errorf("%w: send --kafka-brokers and 1 to 10000 --partitions", errUsage)
		}
		res, err := bench.KafkaRead(ctx, strings.Split(*brokers, ","), *partitions)
		if err != nil {
			return err
		}
		return json.NewEncoder(e.stdout).Encode(res)
	case "sql":
		fs := flag.NewFlagSet("gridlake bench sql", flag.ContinueOnError)
		fs.SetOutput(e.stderr)
		o := bench.SQLOptions{Progress: e.stderr}
		fs.IntVar(&o.Rows, "rows", 1_000_000, "rows of the result")
		fs.IntVar(&o.Runs, "runs", 3, "runs per protocol; the best counts")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		res, err := bench.SQL(ctx, o)
		if err != nil {
			return err
		}
		return json.NewEncoder(e.stdout).Encode(res)
	}
	fmt.Fprint(e.stderr, benchUsage)
	return fmt.Errorf("%w: unknown layer %q", errUsage, args[0])
}

// fleetFlags binds the reference-fleet settings every benchmark shares.
func fleetFlags(fs *flag.FlagSet, f *bench.Fleet, fillSeconds int) {
	fs.IntVar(&f.Batteries, "batteries", 30000, "batteries in the fleet")
	fs.IntVar(&f.Rooms, "rooms", 1000, "hotel rooms")
	fs.IntVar(&f.Partitions, "partitions", 12, "partitions per topic")
	fs.IntVar(&f.FillSeconds, "fill-seconds", fillSeconds, "fleet-seconds preloaded before measuring")
}
