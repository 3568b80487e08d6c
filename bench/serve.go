package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/gridlake/gridlake/batch"
	"github.com/gridlake/gridlake/internal/devstack"
	"github.com/gridlake/gridlake/internal/wait"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/objstore"
	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/serving"
	"github.com/gridlake/gridlake/simulate"
	"github.com/gridlake/gridlake/speed"
)

// ServeOptions configure the serving benchmark.
type ServeOptions struct {
	Fleet
	Binary  string // the gridlake binary, run as the load process
	Rate    int    // requests per second, open loop
	Seconds int    // measuring time at Rate
	Conns   int    // keep-alive connections of the load process
	// TargetP99 is the p99 every endpoint must stay under (ms).
	TargetP99 float64
	// The search for the highest rate meeting TargetP99: at most
	// SearchSteps runs of StepSeconds, rates up to SearchCeiling.
	SearchSteps   int
	StepSeconds   int
	SearchCeiling int
	Progress      io.Writer
	// ProfileDir, when set, receives a CPU profile of the measured part.
	ProfileDir string
	// SpeedProcs and ServeProcs, when either is set, run the serving layer
	// as ServeProcs `gridlake serve --serve-speed remote` processes over
	// SpeedProcs `gridlake speed` processes (DESIGN §12), the load split
	// across the serve processes; 0 and 0 is one in-process stack.
	SpeedProcs int
	ServeProcs int

	// Ingest sends the fleet at its real rate (one reading per battery a
	// second, and the rooms) into the broker while the load runs, as in
	// production: the speed state then changes under every fleet query.
	Ingest bool

	// onMeasure, when set, runs as the measured run starts.
	onMeasure func()
	// brokers take the live readings of Ingest.
	brokers []string
}

// ServeResult is the JSON line of `gridlake bench serve`.
type ServeResult struct {
	Bench          string                     `json:"bench"`
	Target         string                     `json:"target,omitempty"`      // an outside server (--target); empty: the bench's own
	SpeedProcs     int                        `json:"speed_procs,omitempty"` // gridlake speed processes; omitted: one in-process stack
	ServeProcs     int                        `json:"serve_procs,omitempty"` // gridlake serve processes the load is split across
	Batteries      int                        `json:"batteries"`
	BatchReadings  int64                      `json:"batch_readings"`
	SpeedEvents    int64                      `json:"speed_events"`
	TargetRPS      int                        `json:"target_requests_per_s"`
	AchievedRPS    float64                    `json:"achieved_requests_per_s"`
	Conns          int                        `json:"conns"`
	Requests       int                        `json:"requests"`
	Errors         int                        `json:"errors"`
	FirstError     string                     `json:"first_error,omitempty"`
	TargetP99      float64                    `json:"target_p99_ms"`
	WorstP99       float64                    `json:"worst_p99_ms"`
	Worst          string                     `json:"worst_endpoint"`
	MeetsTarget    bool                       `json:"meets_target"`
	SendLagP99     float64                    `json:"send_lag_p99_ms"`
	BatteryHourP50 float64                    `json:"battery_last_hour_p50_ms"`
	BatteryHourP99 float64                    `json:"battery_last_hour_p99_ms"`
	Endpoints      map[string]EndpointFigures `json:"endpoints"`
	MaxRate        int                        `json:"max_requests_per_s_within_target"`
	Search         []RateStep                 `json:"search"`
	IngestRate     float64                    `json:"ingest_events_per_s,omitempty"` // with --ingest: the live readings sent while measuring
	LoadSeconds    float64                    `json:"load_seconds"`
	Seconds        float64                    `json:"seconds"`
}

// Serve loads the reference fleet's data as the serving layer sees it in
// steady state (the previous UTC hour compacted and recomputed in MinIO, the
// last FillSeconds in Kafka above the cut, held by an in-process speed
// layer) and measures the /v1 API with the dashboard mix sent by a separate
// process (`gridlake bench serve-load`) at a fixed open-loop rate over
// several keep-alive connections: the latency of each request is measured
// from its scheduled send time, so a slow server cannot hide queueing (no
// coordinated omission). Then a short search finds the highest rate at
// which every endpoint's p99 stays under the target.
func Serve(ctx context.Context, o ServeOptions) (ServeResult, error) {
	if o.SpeedProcs > 0 || o.ServeProcs > 0 {
		return serveScaleOut(ctx, o)
	}
	begin := time.Now()
	res := ServeResult{Bench: "serve", Batteries: o.Batteries, TargetRPS: o.Rate, Conns: o.Conns, TargetP99: o.TargetP99}
	dir, err := os.MkdirTemp("", "gridlake-bench-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	st, err := startServeData(ctx, o, dir, &res)
	defer st.close()
	if err != nil {
		return res, err
	}
	sp, err := speed.New(speed.Options{Brokers: st.brokers, Limits: schemas.DefaultLimits(), Store: st.store, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		return res, err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go sp.Run(sctx)
	fmt.Fprintf(o.Progress, "bench serve: waiting for the speed layer to apply %d events and manifest 1\n", res.SpeedEvents)
	for deadline := time.Now().Add(5 * time.Minute); ; {
		if time.Now().After(deadline) {
			return res, errors.New("the speed layer did not catch up in 5 minutes")
		}
		st := sp.Status()
		caught := len(st.Partitions) == 2*o.Partitions && st.ManifestVersion == 1
		for _, p := range st.Partitions {
			caught = caught && p.CaughtUp && p.Lag == 0
		}
		if caught {
			break
		}
		if err := wait.Sleep(ctx, 200*time.Millisecond); err != nil {
			return res, err
		}
	}

	mux := http.NewServeMux()
	serving.NewAPI(serving.NewMerger(st.store, st.rc.Reader(), sp, time.UTC, nil), nil).Register(mux)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	// Behind the access check every process has, so its cost is measured.
	token, protected, err := protect(dir, mux)
	if err != nil {
		return res, err
	}
	srv := &http.Server{Handler: protected}
	go srv.Serve(ln)
	defer srv.Close()
	o.brokers = st.brokers
	return measureServe(ctx, o, res, begin, []string{"http://" + ln.Addr().String()}, token)
}

// serveData is the reference fleet's data as the serving layer sees it in
// steady state: the previous UTC hour compacted and recomputed in MinIO
// (manifest 1), the last FillSeconds in Kafka above its cut.
type serveData struct {
	minio   *devstack.Server
	store   *objstore.Store
	brokers []string
	rc      *batch.Recomputer
	hour    time.Time // the compacted hour
	// batteryReadings is how many battery readings both sides hold.
	batteryReadings int64
	closers         []func()
}

// close stops what startServeData started, last first.
func (d *serveData) close() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
}

// startServeData starts MinIO and the broker under dir and loads them with
// the fleet's data; it fills res's BatchReadings and SpeedEvents. The
// returned data is closed by the caller, also after an error.
func startServeData(ctx context.Context, o ServeOptions, dir string, res *ServeResult) (*serveData, error) {
	say := func(format string, args ...any) { fmt.Fprintf(o.Progress, "bench serve: "+format+"\n", args...) }
	d := &serveData{}
	srv, store, err := startMinIOServer(ctx, dir, "serve")
	if err != nil {
		return d, err
	}
	d.minio, d.store = srv, store
	d.closers = append(d.closers, srv.Close)
	b, brokers, err := startBroker(ctx, o.Partitions)
	if err != nil {
		return d, err
	}
	d.brokers = brokers
	d.closers = append(d.closers, func() { b.Close() })

	// The batch side: the previous full UTC hour, generated as raw files,
	// recomputed and committed.
	d.hour = time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	say("generating %s of %d batteries as raw Parquet in MinIO and recomputing its views", d.hour.Format("2006-01-02T15"), o.Batteries)
	files, err := batch.GenerateHour(ctx, batch.GenerateOptions{Store: store, Hour: d.hour, Batteries: o.Batteries, Partitions: o.Partitions, Dir: dir})
	if err != nil {
		return d, err
	}
	for _, f := range files {
		res.BatchReadings += f.Rows
	}
	rc, err := batch.OpenRecomputer(ctx, batch.RecomputeOptions{Store: store, Dir: filepath.Join(dir, "work")})
	if err != nil {
		return d, err
	}
	d.rc = rc
	d.closers = append(d.closers, func() { rc.Close() })
	m := &lake.Manifest{Version: 1, Files: files, Cut: lake.Cut{}, CommittedAt: time.Now().UTC(), CutTime: time.Now().UTC()}
	if _, err := rc.Update(ctx, m, true, nil); err != nil {
		return d, err
	}
	if err := lake.Commit(ctx, store, m); err != nil {
		return d, err
	}

	// The speed side: the last FillSeconds of the fleet in Kafka.
	w := kafkaio.NewWriter(brokers)
	defer w.Close()
	sent, _, err := fillStats(ctx, w, o.Fleet, o.Progress)
	if err != nil {
		return d, err
	}
	res.SpeedEvents = sent.Sent
	d.batteryReadings = res.BatchReadings + sent.Batteries
	return d, nil
}

// ServeTarget measures a serving process already running at base (for
// instance two `gridlake serve` processes over three speed processes) the
// way Serve measures its own, with token as the credential.
func ServeTarget(ctx context.Context, o ServeOptions, base, token string) (ServeResult, error) {
	res := ServeResult{Bench: "serve", Target: base, Batteries: o.Batteries, TargetRPS: o.Rate, Conns: o.Conns, TargetP99: o.TargetP99}
	return measureServe(ctx, o, res, time.Now(), strings.Split(base, ","), token)
}

// measureServe warms the serving processes at bases up, runs the load
// process at o.Rate against them (request i to bases[i mod len(bases)], as
// a round-robin balancer would) and searches the highest rate within the
// target.
func measureServe(ctx context.Context, o ServeOptions, start ServeResult, begin time.Time, bases []string, token string) (res ServeResult, err error) {
	res = start
	say := func(format string, args ...any) { fmt.Fprintf(o.Progress, "bench serve: "+format+"\n", args...) }
	// Warm up: touch every row group once, as a server in steady state has.
	say("warming up")
	warmCl := &http.Client{Transport: withToken(token, nil), Timeout: 10 * time.Second}
	warm := rand.New(rand.NewPCG(2, 2))
	mix := dashboardMix(o.Batteries)
	for i := 0; i < 2000*len(bases); i++ {
		get(warmCl, bases[i%len(bases)]+mix[(i/len(bases))%len(mix)].Path(warm))
	}
	if o.ProfileDir != "" {
		f, err := os.Create(filepath.Join(o.ProfileDir, "serve-cpu.pprof"))
		if err != nil {
			return res, err
		}
		pprof.StartCPUProfile(f)
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	load := func(ctx context.Context, rate int, d time.Duration) (LoadResult, error) {
		return runLoadProcess(ctx, o.Binary, token, LoadOptions{Target: strings.Join(bases, ","), Rate: rate, Duration: d, Conns: o.Conns, Batteries: o.Batteries, Seed: 1}, o.Progress)
	}
	if o.Ingest {
		if len(o.brokers) == 0 {
			return res, errors.New("--ingest needs the bench's own broker, not --target")
		}
		ictx, stop := context.WithCancel(ctx)
		w := kafkaio.NewWriter(o.brokers)
		live := simulate.New(simulate.Options{Batteries: o.Batteries, Rooms: o.Rooms, Rate: 1, Seed: 3, Start: time.Now()})
		done := make(chan struct{})
		t := time.Now()
		go func() {
			defer close(done)
			_ = live.Run(ictx, w, simulate.RunOptions{})
		}()
		defer func() {
			stop()
			<-done
			w.Close()
			res.IngestRate = math.Round(float64(live.Stats().Sent) / time.Since(t).Seconds())
		}()
		say("sending the fleet live, %d batteries and %d rooms at one reading a second, while measuring", o.Batteries, o.Rooms)
	}
	say("measuring %d requests/s for %d s over %d connections, from a separate process", o.Rate, o.Seconds, o.Conns)
	if o.onMeasure != nil {
		o.onMeasure()
	}
	t0 := time.Now()
	lr, err := load(ctx, o.Rate, time.Duration(o.Seconds)*time.Second)
	if err != nil {
		return res, err
	}
	res.AchievedRPS, res.Requests, res.Errors, res.FirstError = lr.AchievedRPS, lr.Requests, lr.Errors, lr.FirstError
	res.Endpoints, res.WorstP99, res.Worst, res.SendLagP99 = lr.Endpoints, lr.WorstP99, lr.Worst, lr.SendLagP99
	res.BatteryHourP50, res.BatteryHourP99 = res.Endpoints["battery_last_hour_1m"].P50, res.Endpoints["battery_last_hour_1m"].P99
	res.MeetsTarget = passes(lr, o.TargetP99)

	if o.SearchSteps > 0 {
		say("searching the highest rate with every p99 < %g ms: at most %d runs of %d s", o.TargetP99, o.SearchSteps, o.StepSeconds)
		step := func(ctx context.Context, rate int) (RateStep, error) {
			lr, err := load(ctx, rate, time.Duration(o.StepSeconds)*time.Second)
			if err != nil {
				return RateStep{}, err
			}
			s := RateStep{Rate: rate, P99: lr.WorstP99, Worst: lr.Worst, Errors: lr.Errors, OK: passes(lr, o.TargetP99)}
			say("%d requests/s: worst p99 %.1f ms (%s), %d errors", rate, s.P99, s.Worst, s.Errors)
			return s, nil
		}
		first := RateStep{Rate: o.Rate, P99: lr.WorstP99, Worst: lr.Worst, Errors: lr.Errors, OK: res.MeetsTarget}
		res.MaxRate, res.Search, err = searchMaxRate(ctx, searchOptions{Steps: o.SearchSteps, Ceiling: o.SearchCeiling, Resolution: max(o.Rate/20, 50)}, first, step)
		if err != nil {
			return res, err
		}
	}
	res.LoadSeconds = round2(time.Since(t0).Seconds())
	res.Seconds = round2(time.Since(begin).Seconds())
	return res, nil
}

// passes says whether a run met the target: no errors and every
// endpoint's p99 under it.
func passes(lr LoadResult, targetP99 float64) bool {
	return lr.Errors == 0 && lr.Requests > 0 && lr.WorstP99 < targetP99
}

// runLoadProcess runs `gridlake bench serve-load` against o.Target and
// reads its JSON line; the token goes by environment, never as a flag.
func runLoadProcess(ctx context.Context, bin, token string, o LoadOptions, progress io.Writer) (LoadResult, error) {
	var res LoadResult
	cmd := exec.CommandContext(ctx, bin, "bench", "serve-load", "--target", o.Target, "--rate", strconv.Itoa(o.Rate),
		"--duration", o.Duration.String(), "--conns", strconv.Itoa(o.Conns), "--batteries", strconv.Itoa(o.Batteries),
		"--seed", strconv.FormatUint(o.Seed, 10))
	cmd.Env = append(os.Environ(), "GRIDLAKE_TOKEN="+token)
	cmd.Stderr = progress
	out, err := cmd.Output()
	if err != nil {
		return res, fmt.Errorf("load process at %d requests/s: %w", o.Rate, err)
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return res, fmt.Errorf("read the load process's line %q: %w", out, err)
	}
	return res, nil
}

func get(cl *http.Client, url string) bool {
	resp, err := cl.Get(url)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
