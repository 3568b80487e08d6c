package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"sync"
	"time"

	"github.com/gridlake/gridlake/batch"
	"github.com/gridlake/gridlake/internal/wait"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/serving"
	"github.com/gridlake/gridlake/speed"
)

// ServeOptions configure the serving benchmark.
type ServeOptions struct {
	Fleet
	Rate     int // requests per second, open loop
	Seconds  int // measuring time
	Progress io.Writer
	// ProfileDir, when set, receives a CPU profile of the measured part.
	ProfileDir string
}

// ServeResult is the JSON line of `gridlake bench serve`.
type ServeResult struct {
	Bench          string                     `json:"bench"`
	Batteries      int                        `json:"batteries"`
	BatchReadings  int64                      `json:"batch_readings"`
	SpeedEvents    int64                      `json:"speed_events"`
	TargetRPS      int                        `json:"target_requests_per_s"`
	AchievedRPS    float64                    `json:"achieved_requests_per_s"`
	Requests       int                        `json:"requests"`
	Errors         int                        `json:"errors"`
	BatteryHourP50 float64                    `json:"battery_last_hour_p50_ms"`
	BatteryHourP99 float64                    `json:"battery_last_hour_p99_ms"`
	Endpoints      map[string]EndpointFigures `json:"endpoints"`
}

// EndpointFigures are the latency percentiles of one endpoint.
type EndpointFigures struct {
	Share    float64 `json:"share"`
	Requests int     `json:"requests"`
	P50      float64 `json:"p50_ms"`
	P99      float64 `json:"p99_ms"`
	Max      float64 `json:"max_ms"`
}

// Serve loads the reference fleet's data as the serving layer sees it in
// steady state (the previous UTC hour compacted and recomputed in MinIO, the
// last FillSeconds in Kafka above the cut, held by an in-process speed
// layer) and measures the /v1 API at a fixed open-loop request rate: the
// latency of each request is measured from its scheduled send time, so a
// slow server cannot hide queueing (no coordinated omission).
func Serve(ctx context.Context, o ServeOptions) (ServeResult, error) {
	res := ServeResult{Bench: "serve", Batteries: o.Batteries, TargetRPS: o.Rate}
	say := func(format string, args ...any) { fmt.Fprintf(o.Progress, "bench serve: "+format+"\n", args...) }
	dir, err := os.MkdirTemp("", "gridlake-bench-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	store, stop, err := startMinIO(ctx, dir, "serve")
	if err != nil {
		return res, err
	}
	defer stop()
	b, brokers, err := startBroker(ctx, o.Partitions)
	if err != nil {
		return res, err
	}
	defer b.Close()

	// The batch side: the previous full UTC hour, generated as raw files,
	// recomputed and committed.
	hour := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	say("generating %s of %d batteries as raw Parquet in MinIO and recomputing its views", hour.Format("2006-01-02T15"), o.Batteries)
	files, err := batch.GenerateHour(ctx, batch.GenerateOptions{Store: store, Hour: hour, Batteries: o.Batteries, Partitions: o.Partitions, Dir: dir})
	if err != nil {
		return res, err
	}
	for _, f := range files {
		res.BatchReadings += f.Rows
	}
	rc, err := batch.OpenRecomputer(ctx, batch.RecomputeOptions{Store: store, Dir: filepath.Join(dir, "work")})
	if err != nil {
		return res, err
	}
	defer rc.Close()
	m := &lake.Manifest{Version: 1, Files: files, Cut: lake.Cut{}, CommittedAt: time.Now().UTC(), CutTime: time.Now().UTC()}
	if _, err := rc.Update(ctx, m, true, nil); err != nil {
		return res, err
	}
	if err := lake.Commit(ctx, store, m); err != nil {
		return res, err
	}

	// The speed side: the last FillSeconds of the fleet in Kafka.
	w := kafkaio.NewWriter(brokers)
	defer w.Close()
	sent, _, err := fill(ctx, w, o.Fleet, o.Progress)
	if err != nil {
		return res, err
	}
	res.SpeedEvents = sent
	sp, err := speed.New(speed.Options{Brokers: brokers, Limits: schemas.DefaultLimits(), Store: store, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		return res, err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go sp.Run(sctx)
	say("waiting for the speed layer to apply %d events and manifest 1", sent)
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
	serving.NewAPI(serving.NewMerger(store, rc.Reader(), sp, time.UTC, nil), nil).Register(mux)
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
	base := "http://" + ln.Addr().String()

	type endpoint struct {
		name  string
		share float64
		path  func(r *rand.Rand) string
	}
	batteryID := func(r *rand.Rand) string { return fmt.Sprintf("B-%05d", r.IntN(o.Batteries)) }
	endpoints := []endpoint{
		{"battery_last_hour_1m", 0.74, func(r *rand.Rand) string { return "/v1/batteries/" + batteryID(r) + "/stats?res=1m" }},
		{"battery_latest", 0.249, func(r *rand.Rand) string { return "/v1/batteries/" + batteryID(r) }},
		// The dashboard fleet page of five viewers (one request each per 5 s).
		{"fleet_now", 0.0005, func(*rand.Rand) string { return "/v1/fleet/now" }},
		{"out_of_range_page", 0.0005, func(*rand.Rand) string { return "/v1/batteries?soc_below=20&limit=50" }},
		{"fleet_last_hour_1m", 0.005, func(*rand.Rand) string { return "/v1/fleet/stats?res=1m" }},
		{"hotel_today", 0.005, func(*rand.Rand) string { return "/v1/hotel/days/today?limit=20" }},
	}
	cl := &http.Client{Transport: withToken(token, &http.Transport{MaxIdleConnsPerHost: 512, MaxConnsPerHost: 512}), Timeout: 10 * time.Second}
	// Warm up: touch every row group once, as a server in steady state has.
	say("warming up")
	warm := rand.New(rand.NewPCG(2, 2))
	for i := 0; i < 2000; i++ {
		get(cl, base+endpoints[0].path(warm))
	}
	say("measuring %d requests/s for %d s", o.Rate, o.Seconds)
	if o.ProfileDir != "" {
		f, err := os.Create(filepath.Join(o.ProfileDir, "serve-cpu.pprof"))
		if err != nil {
			return res, err
		}
		pprof.StartCPUProfile(f)
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	var mu sync.Mutex
	lat := map[string][]float64{}
	var wg sync.WaitGroup
	r := rand.New(rand.NewPCG(1, 1))
	interval := time.Second / time.Duration(o.Rate)
	start := time.Now()
	total := o.Rate * o.Seconds
	for i := 0; i < total; i++ {
		at := start.Add(time.Duration(i) * interval)
		if err := wait.Sleep(ctx, time.Until(at)); err != nil {
			wg.Wait()
			return res, err
		}
		x, ep := r.Float64(), endpoints[len(endpoints)-1]
		for _, e := range endpoints {
			if x < e.share {
				ep = e
				break
			}
			x -= e.share
		}
		url := base + ep.path(r)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok := get(cl, url)
			ms := float64(time.Since(at).Microseconds()) / 1000
			mu.Lock()
			defer mu.Unlock()
			if !ok {
				res.Errors++
				return
			}
			lat[ep.name] = append(lat[ep.name], ms)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	res.Requests = total
	res.AchievedRPS = float64(total) / elapsed
	res.Endpoints = map[string]EndpointFigures{}
	for _, e := range endpoints {
		xs := lat[e.name]
		sort.Float64s(xs)
		f := EndpointFigures{Share: e.share, Requests: len(xs), P50: percentile(xs, 0.5), P99: percentile(xs, 0.99)}
		if len(xs) > 0 {
			f.Max = xs[len(xs)-1]
		}
		res.Endpoints[e.name] = f
	}
	res.BatteryHourP50, res.BatteryHourP99 = res.Endpoints["battery_last_hour_1m"].P50, res.Endpoints["battery_last_hour_1m"].P99
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
