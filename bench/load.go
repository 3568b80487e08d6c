package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gridlake/gridlake/internal/wait"
)

// LoadOptions configure one open-loop run of the dashboard mix against a
// serving process (`gridlake bench serve-load`).
type LoadOptions struct {
	Target    string        // base URL, e.g. http://127.0.0.1:8080; several, comma-separated, take turns
	Token     string        // Bearer token (never a flag: GRIDLAKE_TOKEN)
	Rate      int           // requests per second
	Duration  time.Duration // of the run
	Conns     int           // keep-alive connections; each carries one request at a time
	Batteries int           // battery ids drawn from B-00000..
	Seed      uint64
}

// Bounds of one run, so a typo cannot ask for a billion requests.
const (
	maxLoadRate     = 100_000
	maxLoadDuration = 10 * time.Minute
	maxLoadConns    = 1024
	maxLoadTargets  = 64
)

// targets are the base URLs of o.Target.
func (o LoadOptions) targets() []string {
	if strings.Count(o.Target, ",") >= maxLoadTargets {
		return nil
	}
	return strings.Split(o.Target, ",")
}

func (o LoadOptions) validate() error {
	ts := o.targets()
	if len(ts) == 0 {
		return fmt.Errorf("target: send at most %d base URLs", maxLoadTargets)
	}
	for _, t := range ts {
		if !strings.HasPrefix(t, "http://") && !strings.HasPrefix(t, "https://") {
			return fmt.Errorf("target %q: send an http:// or https:// base URL (several: comma-separated)", t)
		}
	}
	switch {
	case o.Rate < 1 || o.Rate > maxLoadRate:
		return fmt.Errorf("rate %d: send 1 to %d requests per second", o.Rate, maxLoadRate)
	case o.Duration < 100*time.Millisecond || o.Duration > maxLoadDuration:
		return fmt.Errorf("duration %s: send 100ms to %s", o.Duration, maxLoadDuration)
	case o.Conns < 1 || o.Conns > maxLoadConns:
		return fmt.Errorf("conns %d: send 1 to %d", o.Conns, maxLoadConns)
	case o.Batteries < 1:
		return fmt.Errorf("batteries %d: send at least 1", o.Batteries)
	}
	return nil
}

// LoadResult is the JSON line of one load run.
type LoadResult struct {
	Bench       string                     `json:"bench"`
	TargetRPS   int                        `json:"target_requests_per_s"`
	AchievedRPS float64                    `json:"achieved_requests_per_s"`
	Seconds     float64                    `json:"seconds"`
	Conns       int                        `json:"conns"`
	Requests    int                        `json:"requests"`
	Errors      int                        `json:"errors"`
	FirstError  string                     `json:"first_error,omitempty"`
	WorstP99    float64                    `json:"worst_p99_ms"`
	Worst       string                     `json:"worst_endpoint"`
	SendLagP99  float64                    `json:"send_lag_p99_ms"` // how late the client itself sent: queueing behind busy connections
	Endpoints   map[string]EndpointFigures `json:"endpoints"`
}

// EndpointFigures are the latency percentiles of one endpoint, measured
// from each request's scheduled send time.
type EndpointFigures struct {
	Share    float64 `json:"share"`
	Requests int     `json:"requests"`
	P50      float64 `json:"p50_ms"`
	P99      float64 `json:"p99_ms"`
	Max      float64 `json:"max_ms"`
}

// Load sends the dashboard mix to o.Target at a fixed rate over o.Conns
// keep-alive connections and reports per-endpoint latency. Several targets
// take the requests in turn, as behind a round-robin balancer.
func Load(ctx context.Context, o LoadOptions) (LoadResult, error) {
	if err := o.validate(); err != nil {
		return LoadResult{}, err
	}
	mix := dashboardMix(o.Batteries)
	r := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	clients := make([]*http.Client, o.Conns)
	for i := range clients {
		// One transport per worker, one connection each (per target):
		// the load really travels over Conns connections.
		tr := &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1, IdleConnTimeout: time.Minute}
		defer tr.CloseIdleConnections()
		clients[i] = &http.Client{Transport: withToken(o.Token, tr), Timeout: 30 * time.Second}
	}
	targets := o.targets()
	do := func(ctx context.Context, worker int, url string) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := clients[worker].Do(req)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return err
	}
	next := func(n int) (int, string) {
		i := pick(mix, r)
		return i, targets[n%len(targets)] + mix[i].Path(r)
	}
	lr, err := openLoop(ctx, loopOptions{Rate: o.Rate, Duration: o.Duration, Conns: o.Conns, Kinds: len(mix)}, next, do)
	if err != nil {
		return LoadResult{}, err
	}
	res := LoadResult{Bench: "serve-load", TargetRPS: o.Rate, Conns: o.Conns, Requests: lr.requests, Errors: lr.errors,
		FirstError: lr.firstError, Seconds: round2(lr.elapsed.Seconds()), Endpoints: map[string]EndpointFigures{}}
	res.AchievedRPS = round2(float64(lr.requests) / lr.elapsed.Seconds())
	res.SendLagP99 = percentile(lr.lag, 0.99)
	for i, e := range mix {
		f := figures(lr.latency[i])
		f.Share = e.Share
		res.Endpoints[e.Name] = f
		if f.P99 >= res.WorstP99 {
			res.WorstP99, res.Worst = f.P99, e.Name
		}
	}
	return res, nil
}

// figures are the percentiles of latencies (sorted in place).
func figures(ms []float64) EndpointFigures {
	sort.Float64s(ms)
	f := EndpointFigures{Requests: len(ms), P50: percentile(ms, 0.5), P99: percentile(ms, 0.99)}
	if len(ms) > 0 {
		f.Max = ms[len(ms)-1]
	}
	return f
}

// loopOptions shape an open-loop run.
type loopOptions struct {
	Rate     int
	Duration time.Duration
	Conns    int
	Kinds    int // request kinds; latencies are kept per kind
}

// loopResult is what an open-loop run saw; latencies in ms.
type loopResult struct {
	requests, errors int
	firstError       string
	elapsed          time.Duration
	latency          [][]float64 // per kind, successful requests only
	lag              []float64   // scheduled send to actual send, sorted
}

// scheduled is one request: its kind, its URL and when it is due.
type scheduled struct {
	kind int
	url  string
	at   time.Time
}

// openLoop sends Rate×Duration requests, the i-th due at start + i/Rate,
// whether or not earlier ones have come back (open loop), through Conns
// workers. A request's latency runs from when it was due, not from when a
// worker got round to it: a server that stalls makes every request queued
// behind the stall slow too, as its users would see (no coordinated
// omission). next gives the i-th request's kind and URL; do sends it on a
// worker's connection.
func openLoop(ctx context.Context, o loopOptions, next func(i int) (int, string),
	do func(ctx context.Context, worker int, url string) error) (loopResult, error) {
	total := int(int64(o.Rate) * int64(o.Duration) / int64(time.Second))
	if total < 1 || o.Conns < 1 || o.Kinds < 1 {
		return loopResult{}, errors.New("open loop: nothing to send")
	}
	interval := time.Second / time.Duration(o.Rate)
	// A bounded queue: when every worker is behind, the scheduler waits,
	// but each request still counts from its own due time.
	queue := make(chan scheduled, min(total, 1<<16))
	type workerResult struct {
		latency    [][]float64
		lag        []float64
		errors     int
		firstError string
	}
	results := make([]workerResult, o.Conns)
	var wg sync.WaitGroup
	for w := 0; w < o.Conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wr := &results[w]
			wr.latency = make([][]float64, o.Kinds)
			wr.lag = make([]float64, 0, total/o.Conns+1)
			for s := range queue {
				wr.lag = append(wr.lag, ms(time.Since(s.at)))
				err := do(ctx, w, s.url)
				if err != nil {
					wr.errors++
					if wr.firstError == "" {
						wr.firstError = err.Error()
					}
					continue
				}
				wr.latency[s.kind] = append(wr.latency[s.kind], ms(time.Since(s.at)))
			}
		}()
	}
	start := time.Now()
	var err error
	for i := 0; i < total; i++ {
		at := start.Add(time.Duration(i) * interval)
		if err = wait.Sleep(ctx, time.Until(at)); err != nil {
			break
		}
		kind, url := next(i)
		queue <- scheduled{kind: kind, url: url, at: at}
	}
	close(queue)
	wg.Wait()
	if err != nil {
		return loopResult{}, err
	}
	res := loopResult{requests: total, elapsed: time.Since(start), latency: make([][]float64, o.Kinds)}
	for _, wr := range results {
		res.errors += wr.errors
		if res.firstError == "" {
			res.firstError = wr.firstError
		}
		res.lag = append(res.lag, wr.lag...)
		for k, xs := range wr.latency {
			res.latency[k] = append(res.latency[k], xs...)
		}
	}
	sort.Float64s(res.lag)
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
