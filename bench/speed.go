// Package bench measures gridlake's layers end to end, the way
// `gridlake bench` reports them: one JSON line of figures, each named with
// its unit. Benchmarks drive real components (the embedded broker over TCP,
// the speed layer as its own process) so the figures are what a user sees.
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/gridlake/gridlake/internal/freeport"
	"github.com/gridlake/gridlake/internal/wait"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/objstore/s3server"
	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/simulate"
	"github.com/gridlake/gridlake/speed"
)

// SpeedOptions configure the speed benchmark.
type SpeedOptions struct {
	Fleet
	Binary         string // the gridlake binary, run as the speed process
	LatencySeconds int    // seconds of paced traffic for the latency run
	// ProfileDir, when set, receives pprof profiles of the speed process:
	// cpu.pprof of the throughput run and heap.pprof at the end.
	ProfileDir string
	// WithBatch runs batch jobs beside the latency run, as separate
	// processes with the default batch limits: compaction of everything
	// in Kafka, then a backfill of today's views, over and over. It shows
	// whether batch work delays the real-time path.
	WithBatch bool
	// Alerts evaluates the default alert rules in the speed process (its
	// alerts.enabled), so their cost shows against a run without.
	Alerts   bool
	Progress io.Writer
}

// SpeedResult is the JSON line of `gridlake bench speed`.
type SpeedResult struct {
	Bench      string  `json:"bench"`
	Alerts     bool    `json:"alerts"`
	Batteries  int     `json:"batteries"`
	Events     int64   `json:"events"`
	EventsPerS float64 `json:"events_per_s"`
	WindowS    float64 `json:"throughput_window_s"` // how long the events/s were measured over
	// The peer: a bare kafka-go consumer reading the same records in its
	// own process, and the speed process's share of its rate.
	BareEventsPerS float64 `json:"bare_consumer_events_per_s"`
	BareWindowS    float64 `json:"bare_consumer_window_s"`
	SpeedOverBare  float64 `json:"speed_over_bare_ratio"`
	FillEventsPerS float64 `json:"fill_events_per_s"`
	LatencyRate    float64 `json:"latency_run_events_per_s"`
	P50Ms          float64 `json:"p50_ms"`
	P99Ms          float64 `json:"p99_ms"`
	MaxMs          float64 `json:"max_ms"`
	Samples        int     `json:"latency_samples"`
	RSSMB          float64 `json:"rss_mb"`
	// With --with-batch: the batch job runs that overlapped the latency
	// run and the rows they compacted.
	BatchRuns int   `json:"batch_runs,omitempty"`
	BatchRows int64 `json:"batch_rows,omitempty"`
	// The latency samples sent while batch jobs ran, and their p99.
	BatchSamples int     `json:"batch_latency_samples,omitempty"`
	BatchP99Ms   float64 `json:"batch_p99_ms,omitempty"`
}

// Speed fills the embedded broker with a stream shaped like the reference
// fleet, measures how fast a speed process consumes it, then sends the fleet
// at its real rate and measures event-to-visible latency, and reports the
// speed process's peak RSS.
func Speed(ctx context.Context, o SpeedOptions) (SpeedResult, error) {
	res := SpeedResult{Bench: "speed", Alerts: o.Alerts, Batteries: o.Batteries}
	say := func(format string, args ...any) { fmt.Fprintf(o.Progress, "bench speed: "+format+"\n", args...) }
	b, brokers, err := startBroker(ctx, o.Partitions)
	if err != nil {
		return res, err
	}
	defer b.Close()
	dir, err := os.MkdirTemp("", "gridlake-bench-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	s3 := s3server.New(dir, "bench", "bench-secret", slog.New(slog.DiscardHandler))
	if err := s3.Start("127.0.0.1:0"); err != nil {
		return res, err
	}
	defer s3.Close()

	// Fill.
	w := kafkaio.NewWriter(brokers)
	w.BatchSize = 5000
	defer w.Close()
	res.Events, res.FillEventsPerS, err = fill(ctx, w, o.Fleet, o.Progress)
	if err != nil {
		return res, err
	}

	// The peer: a bare consumer reads the same backlog first.
	say("a bare kafka-go consumer reads the %d records", res.Events)
	peer, err := runKafkaRead(ctx, o.Binary, b.Addr(), o.Partitions, o.Progress)
	if err != nil {
		return res, err
	}
	if peer.Records != res.Events {
		return res, fmt.Errorf("the bare consumer read %d records, want %d", peer.Records, res.Events)
	}
	res.BareEventsPerS, res.BareWindowS = peer.RecordsPerS, peer.Seconds
	say("bare consumer: %.0f records/s over %.1fs", peer.RecordsPerS, peer.Seconds)

	// Throughput: a speed process consumes the backlog.
	port, err := freeport.Get()
	if err != nil {
		return res, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	procDir := filepath.Join(dir, "speed")
	token, err := demoToken(procDir)
	if err != nil {
		return res, err
	}
	cmd := exec.CommandContext(ctx, o.Binary, "speed", "--kafka-brokers", b.Addr(), "--s3-endpoint", s3.Addr(),
		"--s3-access-key", "bench", "--http-addr", addr, "--data-dir", procDir, "--log-level", "warn",
		"--alerts-enabled="+strconv.FormatBool(o.Alerts))
	cmd.Env = append(os.Environ(), benchSecretEnv)
	cmd.Stderr = o.Progress
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("start speed process: %w", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	cl := &http.Client{Timeout: 5 * time.Second, Transport: withToken(token, nil)}
	profCl := &http.Client{Transport: withToken(token, nil)} // a CPU profile takes longer than cl's timeout
	profDone := make(chan struct{})
	if o.ProfileDir != "" {
		go func() {
			defer close(profDone)
			saveProfile(profCl, addr, "profile?seconds=8", filepath.Join(o.ProfileDir, "cpu.pprof"))
		}()
	} else {
		close(profDone)
	}
	var startN int64
	var start time.Time
	for {
		st, err := status(cl, addr)
		if err == nil && len(st.Partitions) == 2*o.Partitions {
			n := applied(st)
			if start.IsZero() {
				start, startN = time.Now(), n
			}
			if n >= res.Events {
				el := time.Since(start).Seconds()
				res.EventsPerS, res.WindowS = float64(n-startN)/el, round2(el)
				res.SpeedOverBare = round2(res.EventsPerS / res.BareEventsPerS)
				say("consumed %d events in %.1fs: %.0f events/s", n-startN, el, res.EventsPerS)
				if el < 30 {
					say("the window is under 30 s: raise --fill-seconds for a sustained figure")
				}
				break
			}
		}
		if err := wait.Sleep(ctx, 20*time.Millisecond); err != nil {
			return res, err
		}
	}

	// Latency: the fleet at its real rate, sampled readings polled until
	// the speed process shows them.
	say("sending %d batteries at 1 reading/s for %ds, measuring event-to-visible latency", o.Batteries, o.LatencySeconds)
	sink := &sampler{w: w, r: rand.New(rand.NewPCG(2, 2)), samples: make(chan sample, 1024)}
	live := simulate.New(simulate.Options{Batteries: o.Batteries, Rooms: o.Rooms, Rate: 1, Seed: 2, Start: time.Now()})
	var lat, during []float64 // all samples; those sent while batch jobs ran
	var slow []string         // samples over 500 ms: when they were sent, how long they took
	var batchStart atomic.Int64
	var mu sync.Mutex
	t1 := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range sink.samples {
				d, ok := waitVisible(ctx, cl, addr, s)
				if ok {
					mu.Lock()
					lat = append(lat, d)
					if bs := batchStart.Load(); bs != 0 && s.sent.UnixNano() >= bs {
						during = append(during, d)
					}
					if d > 500 {
						slow = append(slow, fmt.Sprintf("+%.1fs:%.0fms", s.sent.Sub(t1).Seconds(), d))
					}
					mu.Unlock()
				}
			}
		}()
	}
	batchDone := make(chan struct{})
	bctx, stopBatch := context.WithCancel(ctx)
	if o.WithBatch {
		go func() {
			defer close(batchDone)
			// Batch runs in steady state: once every battery partition has
			// rotated a generation, so cuts fall on published boundaries (a
			// cut before that makes the speed layer rebuild, see README).
			for bctx.Err() == nil && !rotated(cl, addr) {
				wait.Sleep(bctx, 200*time.Millisecond)
			}
			if wait.Sleep(bctx, 3*time.Second) != nil { // a publish interval
				return
			}
			batchStart.Store(time.Now().UnixNano())
			say("batch jobs start at +%.1fs", time.Since(t1).Seconds())
			res.BatchRuns, res.BatchRows = batchLoop(bctx, o.Binary, b.Addr(), s3.Addr(), filepath.Join(dir, "batch"), say)
		}()
	} else {
		close(batchDone)
	}
	err = live.Run(ctx, sink, simulate.RunOptions{Duration: time.Duration(o.LatencySeconds) * time.Second})
	stopBatch()
	<-batchDone
	close(sink.samples)
	wg.Wait()
	if err != nil {
		return res, err
	}
	res.LatencyRate = float64(live.Stats().Sent) / time.Since(t1).Seconds()
	if len(slow) > 0 {
		say("%d samples over 500 ms (sent at +s into the run): %s", len(slow), strings.Join(slow, " "))
	}
	if len(during) > 0 {
		sort.Float64s(during)
		res.BatchSamples, res.BatchP99Ms = len(during), percentile(during, 0.99)
	}
	sort.Float64s(lat)
	res.Samples = len(lat)
	if len(lat) > 0 {
		res.P50Ms = percentile(lat, 0.5)
		res.P99Ms = percentile(lat, 0.99)
		res.MaxMs = lat[len(lat)-1]
	}
	res.RSSMB, err = peakRSS(cmd.Process.Pid)
	<-profDone
	if o.ProfileDir != "" {
		saveProfile(profCl, addr, "heap", filepath.Join(o.ProfileDir, "heap.pprof"))
		say("profiles in %s (go tool pprof %s)", o.ProfileDir, filepath.Join(o.ProfileDir, "cpu.pprof"))
	}
	return res, err
}

// saveProfile fetches /debug/pprof/<what> from the speed process into path;
// profiling is best effort and never fails the benchmark.
func saveProfile(cl *http.Client, addr, what, path string) {
	for i := 0; i < 50; i++ {
		resp, err := cl.Get("http://" + addr + "/debug/pprof/" + what)
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		defer resp.Body.Close()
		if f, err := os.Create(path); err == nil {
			_, _ = io.Copy(f, resp.Body)
			f.Close()
		}
		return
	}
}

func status(cl *http.Client, addr string) (speed.Status, error) {
	var st speed.Status
	resp, err := cl.Get("http://" + addr + "/speed/v1/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

func applied(st speed.Status) int64 {
	var n int64
	for _, p := range st.Partitions {
		n += p.Next
	}
	return n
}

// sample is one reading whose visibility is timed from its send.
type sample struct {
	id   string
	ts   int64
	sent time.Time
}

// sampler is a simulator sink that writes to Kafka and picks a few battery
// readings of each batch to time.
type sampler struct {
	w       *kafka.Writer
	r       *rand.Rand
	samples chan sample
}

func (s *sampler) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	sent := time.Now()
	var picks []sample
	for i := 0; i < 10 && len(msgs) > 0; i++ {
		m := msgs[s.r.IntN(len(msgs))]
		ev, rej := schemas.Validate(schemas.DefaultLimits(), m.Topic, m.Key, m.Value, m.Time)
		if rej.OK() && ev.Kind == schemas.KindBattery {
			picks = append(picks, sample{id: ev.Battery.BatteryID, ts: ev.Battery.TS, sent: sent})
		}
	}
	if err := s.w.WriteMessages(ctx, msgs...); err != nil {
		return err
	}
	for _, p := range picks {
		select {
		case s.samples <- p:
		default: // the pollers are behind; skip rather than queue
		}
	}
	return nil
}

// waitVisible polls the speed process until the sampled reading is its
// battery's latest, and returns the milliseconds since it was sent.
func waitVisible(ctx context.Context, cl *http.Client, addr string, s sample) (float64, bool) {
	url := "http://" + addr + "/speed/v1/batteries/" + s.id + "/latest"
	deadline := s.sent.Add(30 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		resp, err := cl.Get(url)
		if err == nil {
			var body struct {
				Latest struct {
					TS int64 `json:"ts_ms"`
				} `json:"latest"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if body.Latest.TS >= s.ts {
				return float64(time.Since(s.sent).Microseconds()) / 1000, true
			}
		}
		wait.Sleep(ctx, 5*time.Millisecond)
	}
	return 0, false
}

// peakRSS reads a process's peak resident set (VmHWM) in MB.
func peakRSS(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read peak RSS: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// benchSecretEnv hands the bench's object store secret to its gridlake
// subprocesses: secrets are never flags.
const benchSecretEnv = "GRIDLAKE_S3_SECRET_KEY=bench-secret"

// batchLoop runs batch jobs as separate gridlake processes until ctx ends:
// compaction of everything in Kafka, then a backfill of today's views. It
// returns the runs completed and the rows compacted.
func batchLoop(ctx context.Context, bin, broker, s3, dir string, say func(string, ...any)) (int, int64) {
	common := []string{"--kafka-brokers", broker, "--s3-endpoint", s3, "--s3-access-key", "bench",
		"--data-dir", dir, "--log-level", "warn"}
	rowsRe := regexp.MustCompile(`\((\d+) rows\)`)
	runs, rows := 0, int64(0)
	start := time.Now()
	for ctx.Err() == nil {
		today := time.Now().UTC().Format("2006-01-02")
		for _, args := range [][]string{{"jobs", "run", "compact"}, {"jobs", "backfill", "--from", today, "--to", today, "--site-timezone", "UTC"}} {
			cmd := exec.CommandContext(ctx, bin, append(args, common...)...)
			cmd.Env = append(os.Environ(), benchSecretEnv)
			out, err := cmd.CombinedOutput()
			if ctx.Err() != nil {
				return runs, rows
			}
			if err != nil {
				say("batch %s failed: %v\n%s", args[1], err, out)
				continue
			}
			runs++
			if m := rowsRe.FindSubmatch(out); m != nil && args[1] == "run" {
				n, _ := strconv.ParseInt(string(m[1]), 10, 64)
				rows += n
			}
			say("batch at +%.1fs: %s", time.Since(start).Seconds(), strings.TrimSpace(lastLine(string(out))))
		}
	}
	return runs, rows
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// rotated reports whether every battery partition of the speed process has
// closed a generation, so its boundaries give batch a cut to align to.
func rotated(cl *http.Client, addr string) bool {
	st, err := status(cl, addr)
	if err != nil || len(st.Partitions) == 0 {
		return false
	}
	for _, p := range st.Partitions {
		if p.Topic == schemas.TopicBattery && len(p.Generations) < 2 {
			return false
		}
	}
	return true
}
