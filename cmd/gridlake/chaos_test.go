package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/auth"
	"github.com/gridlake/gridlake/internal/chaos"
	"github.com/gridlake/gridlake/internal/minioproc"
	"github.com/gridlake/gridlake/internal/reference"
	"github.com/gridlake/gridlake/internal/testenv"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/objstore"
	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/serving"
	"github.com/gridlake/gridlake/simulate"
)

// TestChaos_KillAndStopEveryProcessWhileIngesting runs real MinIO, `gridlake
// broker`, `gridlake serve`, two `gridlake jobs scheduler` replicas and
// `gridlake simulate` as separate processes. While the simulator streams,
// it kills and restarts, then stops and continues, MinIO and each gridlake
// process in turn, polling the API all the while: every request must be
// answered in time (200, or 503 with a message), except while serve itself
// is down. Afterwards every battery window, latest reading, fleet window
// and room day the API answers must equal the reference computed from the
// simulator's own NDJSON record: no valid event missing or counted twice.
func TestChaos_KillAndStopEveryProcessWhileIngesting(t *testing.T) {
	// Secrets reach subprocesses by environment, never by flags.
	t.Setenv("GRIDLAKE_S3_SECRET_KEY", testenv.SecretKey)
	began := time.Now()
	minioBin, err := minioproc.Binary()
	if err != nil {
		t.Fatal(err)
	}
	bin := buildBinary(t)
	root := t.TempDir()
	addr := func() string { return fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)) }
	s3Addr, brokerPort, serveAddr := addr(), testenv.FreePort(t), addr()
	brokerAddr := fmt.Sprintf("127.0.0.1:%d", brokerPort)
	const bucket, partitions = "chaos", 3
	common := []string{"--kafka-brokers", brokerAddr, "--kafka-partitions", fmt.Sprint(partitions),
		"--s3-endpoint", s3Addr, "--s3-access-key", testenv.AccessKey,
		"--s3-bucket", bucket, "--site-timezone", "Asia/Seoul", "--log-level", "warn"}
	args := func(first []string, rest ...string) []string {
		return append(append(first, common...), rest...)
	}

	// Every process reads one users file (inherited environment); the
	// test asks as its admin.
	users, tokens := testUsersFile(t)
	t.Setenv("GRIDLAKE_AUTH_USERS_FILE", users)
	token := tokens[auth.Admin]

	// The processes, each restartable on the same ports and data.
	if err := os.MkdirAll(filepath.Join(root, "minio"), 0o755); err != nil {
		t.Fatal(err)
	}
	minio := chaos.MinIO(minioBin, filepath.Join(root, "minio", "data"), s3Addr, addr())
	broker := &chaos.Proc{Name: "broker", Path: bin, Log: filepath.Join(root, "broker.log"),
		Args: []string{"broker", "--kafka-embedded-port", fmt.Sprint(brokerPort), "--kafka-partitions", fmt.Sprint(partitions),
			"--data-dir", filepath.Join(root, "broker"), "--log-level", "warn"},
		Ready: func(ctx context.Context) error {
			for _, topic := range []string{schemas.TopicBattery, schemas.TopicRoom} {
				if n, err := kafkaio.Partitions(ctx, []string{brokerAddr}, topic); err != nil || n != partitions {
					return fmt.Errorf("topic %s: %d partitions, %v", topic, n, err)
				}
			}
			return nil
		}}
	serve := &chaos.Proc{Name: "serve", Path: bin, Log: filepath.Join(root, "serve.log"),
		// s3.timeout bounds how long an answer waits on a frozen store
		// before serving falls back; below the pollers' 5 s client timeout.
		Args: args([]string{"serve"}, "--http-addr", serveAddr, "--serve-pg-addr", "", "--serve-flight-addr", "", "--jobs-enabled=false", "--s3-timeout", "2s",
			"--data-dir", filepath.Join(root, "serve")),
		Ready: chaos.HTTPReady("http://"+serveAddr+"/v1/status", "Authorization", "Bearer "+token)}
	var scheds [2]*chaos.Proc
	var schedAddrs [2]string
	for i := range scheds {
		schedAddrs[i] = addr()
		// Short schedules so every job runs several times during the
		// faults; a lease shorter than the scheduler's SIGSTOP, so the
		// other replica takes its slot over while it is frozen; replaced
		// objects outlive the longest run (grace > timeout).
		scheds[i] = &chaos.Proc{Name: fmt.Sprintf("scheduler-%d", i), Path: bin, Log: filepath.Join(root, fmt.Sprintf("scheduler-%d.log", i)),
			Args: args([]string{"jobs", "scheduler"}, "--http-addr", schedAddrs[i], "--data-dir", filepath.Join(root, fmt.Sprintf("jobs-%d", i)),
				"--jobs-compact-every", "3s", "--jobs-recompute-every", "7s", "--jobs-close-every", "11s", "--jobs-merge-every", "13s",
				"--jobs-collect-every", "17s", "--jobs-retain-every", "29s", "--jobs-lease", "3s", "--jobs-backoff", "500ms",
				"--jobs-timeout", "25s", "--batch-grace", "30s", "--batch-merge-after", "1h"),
			Ready: chaos.HTTPReady("http://" + schedAddrs[i] + "/healthz")}
	}
	long := []*chaos.Proc{minio, broker, serve, scheds[0], scheds[1]}
	for _, p := range long {
		t.Cleanup(p.Close)
		if err := p.Start(60 * time.Second); err != nil {
			t.Fatal(err)
		}
	}

	// The simulated stream: 30 batteries (a reading every 10 s) and 10
	// rooms, from 22:00 in Seoul three days ago, so it crosses a local
	// midnight and every day it touches is closed by the batch layer; sent
	// in 10-minute segments, one `gridlake simulate` process each.
	seoul := mustLoc(t, "Asia/Seoul")
	today := time.Now().In(seoul)
	simStart := time.Date(today.Year(), today.Month(), today.Day()-2, 0, 0, 0, 0, seoul).Add(-2 * time.Hour).UTC()
	ing := &ingest{t: t, bin: bin, dir: filepath.Join(root, "sim"), start: simStart, segment: 10 * time.Minute, broker: brokerAddr, partitions: partitions,
		common: []string{"--kafka-brokers", brokerAddr, "--kafka-partitions", fmt.Sprint(partitions), "--log-level", "warn"}}
	if err := os.MkdirAll(ing.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ingCtx, stopIngest := context.WithCancel(context.Background())
	ingDone := make(chan struct{})
	go func() { defer close(ingDone); ing.run(ingCtx) }()
	t.Cleanup(func() { stopIngest(); <-ingDone })

	// What the API is asked: the fleet, a battery, a room, the status.
	from, to := simStart.Add(-time.Hour), simStart.Add(24*time.Hour)
	day0 := agg.DayOf(simStart.UnixMilli(), seoul)
	pl := &poller{base: "http://" + serveAddr, token: token, counts: map[string]*phaseCounts{}, urls: []string{
		"/v1/status",
		fmt.Sprintf("/v1/fleet/stats?res=1h&from=%d&to=%d", from.UnixMilli(), to.UnixMilli()),
		fmt.Sprintf("/v1/batteries/B-00007/stats?res=1m&from=%d&to=%d", simStart.UnixMilli(), simStart.Add(3*time.Hour).UnixMilli()),
		"/v1/batteries/B-00003",
		fmt.Sprintf("/v1/rooms/R-0103/days?from=%s&to=%s", day0, day0.Next()),
	}}
	logf := func(format string, args ...any) {
		t.Logf("%6.1fs  %s", time.Since(began).Seconds(), fmt.Sprintf(format, args...))
	}
	// Ingest and the first batch commits before the first fault.
	testenv.WaitUntil(t, 90*time.Second, "a first batch commit, two simulated segments and the polled battery and room", func() bool {
		var st struct{ Freshness serving.Freshness }
		var raw json.RawMessage
		return ing.completed() >= 2 && getOK(token, serveAddr, "/v1/status", &st) && st.Freshness.BatchVersion > 0 &&
			getOK(token, serveAddr, pl.urls[3], &raw) && getOK(token, serveAddr, pl.urls[4], &raw)
	}, logTail(serve.Log))
	logf("warm-up done: %d segments sent, serving batch version > 0", ing.completed())
	// The API is polled from now to the end of the faults.
	pl.setPhase("before faults")
	pollCtx, stopPoll := context.WithCancel(context.Background())
	pollDone := make(chan struct{})
	go func() { defer close(pollDone); pl.run(pollCtx) }()
	t.Cleanup(func() { stopPoll(); <-pollDone })
	time.Sleep(2 * time.Second)

	alive := func(after string) {
		for _, p := range long {
			if !p.Running() {
				t.Errorf("after %s: %s exited by itself (%v); log tail:\n%s", after, p.Name, p.Err(), logTail(p.Log))
				if err := p.Start(60 * time.Second); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	steady := func(after string) {
		pl.setPhase("after " + after)
		time.Sleep(3 * time.Second)
		alive(after)
	}
	restart := func(p *chaos.Proc) {
		t.Helper()
		t0 := time.Now()
		if err := p.Start(90 * time.Second); err != nil {
			t.Fatal(err)
		}
		logf("  %s restarted (pid %d), ready in %.1fs", p.Name, p.Pid(), time.Since(t0).Seconds())
	}
	killFor := func(name string, p *chaos.Proc, down time.Duration) {
		t.Helper()
		pl.setPhase(name)
		was, err := p.Kill()
		if err != nil || !was {
			t.Fatalf("%s: SIGKILL %s: running %v, %v", name, p.Name, was, err)
		}
		logf("fault %s: SIGKILL %s, down for %s", name, p.Name, down)
		time.Sleep(down)
		restart(p)
	}
	stopFor := func(name string, p *chaos.Proc, d time.Duration) {
		t.Helper()
		pl.setPhase(name)
		if err := p.Stop(); err != nil {
			t.Fatal(err)
		}
		logf("fault %s: SIGSTOP %s (pid %d) for %s", name, p.Name, p.Pid(), d)
		time.Sleep(d)
		if err := p.Cont(); err != nil {
			t.Fatal(err)
		}
		logf("  %s continued", p.Name)
	}

	// 1, 2: the object store, each time just after serve's speed layer
	// applied a new batch version and before the serving side loaded it;
	// down and frozen longer than any store call should take.
	pl.setPhase("minio-kill")
	logf("  serve's speed layer applied batch version %d", waitNewVersion(t, token, serveAddr, 30*time.Second))
	killFor("minio-kill", minio, 6*time.Second)
	steady("minio-kill")
	pl.setPhase("minio-stop")
	logf("  serve's speed layer applied batch version %d", waitNewVersion(t, token, serveAddr, 30*time.Second))
	stopFor("minio-stop", minio, 8*time.Second)
	steady("minio-stop")
	// 3, 4: the broker.
	killFor("broker-kill", broker, 3*time.Second)
	steady("broker-kill")
	stopFor("broker-stop", broker, 3*time.Second)
	steady("broker-stop")
	// 5, 6: serve. Its answers are excused only while it is down.
	pl.serveDown(true)
	killFor("serve-kill", serve, time.Second)
	pl.serveDown(false)
	steady("serve-kill")
	pl.serveDown(true)
	stopFor("serve-stop", serve, 3*time.Second)
	pl.serveDown(false)
	steady("serve-stop")
	// 7: a scheduler killed in the middle of a run it holds.
	pl.setPhase("scheduler-kill")
	job := waitRunning(token, schedAddrs[0], 20*time.Second)
	was, err := scheds[0].Kill()
	if err != nil || !was {
		t.Fatalf("SIGKILL scheduler-0: running %v, %v", was, err)
	}
	logf("fault scheduler-kill: SIGKILL scheduler-0 while it ran %s", job)
	time.Sleep(time.Second)
	restart(scheds[0])
	steady("scheduler-kill")
	// 8: a scheduler frozen for longer than its lease.
	stopFor("scheduler-stop", scheds[1], 5*time.Second)
	steady("scheduler-stop")
	// 9, 10: the simulator, killed mid-segment (the segment is sent again,
	// the same stream from the same seed), then frozen.
	pl.setPhase("simulate-kill")
	logf("fault simulate-kill: %s", ing.killMidSegment(30*time.Second))
	steady("simulate-kill")
	pl.setPhase("simulate-stop")
	logf("fault simulate-stop: %s", ing.stopMidSegment(2*time.Second, 30*time.Second))
	steady("simulate-stop")

	// Drain: the simulator finishes its segment, the schedulers stop, and
	// the batch layer catches up with one compaction and one recompute.
	pl.setPhase("drain")
	stopIngest()
	<-ingDone
	stopPoll()
	<-pollDone
	logf("ingest stopped: %d segments (%s simulated), %d attempts", ing.completed(), time.Duration(ing.completed())*ing.segment, ing.attempts)
	pl.report(t)
	for _, s := range scheds {
		if err := s.Terminate(30 * time.Second); err != nil {
			t.Errorf("stop %s: %v\n%s", s.Name, err, logTail(s.Log))
		}
	}
	for _, j := range []string{"compact", "recompute"} {
		p := &chaos.Proc{Name: "jobs run " + j, Path: bin, Log: filepath.Join(root, "jobs-run.log"),
			Args: args([]string{"jobs", "run", j}, "--data-dir", filepath.Join(root, "jobs-cli"))}
		if err := p.Start(0); err != nil {
			t.Fatal(err)
		}
		if err := p.Wait(120 * time.Second); err != nil {
			t.Fatalf("gridlake jobs run %s: %v\n%s", j, err, logTail(p.Log))
		}
	}
	store, err := objstore.Open(context.Background(), objstore.Options{Endpoint: s3Addr, AccessKey: testenv.AccessKey, SecretKey: testenv.SecretKey, Bucket: bucket})
	if err != nil {
		t.Fatal(err)
	}
	man, err := lake.Latest(context.Background(), store)
	if err != nil || man == nil {
		t.Fatalf("latest manifest: %v", err)
	}
	var fr serving.Freshness
	testenv.WaitUntil(t, 90*time.Second, fmt.Sprintf("serve to load version %d with no speed lag", man.Version), func() bool {
		var st struct{ Freshness serving.Freshness }
		if !getOK(token, serveAddr, "/v1/status", &st) {
			return false
		}
		fr = st.Freshness
		return fr.BatchVersion == man.Version && fr.SpeedLag == 0
	}, logTail(serve.Log))
	logf("caught up: batch version %d (closed through %s), speed lag 0", fr.BatchVersion, fr.ClosedThrough)

	// The reference, from the simulator's record of every completed
	// segment; Kafka must hold exactly the recorded messages (copies from
	// interrupted attempts included), or a lost record is the broker's.
	recorded := ing.recorded(t)
	ref := reference.Build(schemas.DefaultLimits(), recorded)
	inKafka := testenv.ReadAll(t, brokerAddr, schemas.TopicBattery, schemas.TopicRoom)
	if missing, extra := diffMessages(recorded, inKafka); missing+extra > 0 {
		t.Errorf("Kafka and the simulator's record differ: %d recorded messages missing from Kafka, %d in Kafka not recorded", missing, extra)
	}
	if len(inKafka) <= len(recorded) {
		t.Errorf("Kafka holds %d messages, the record %d: the interrupted segments' copies are missing, so de-duplication across a simulator restart went untested", len(inKafka), len(recorded))
	}
	readings := 0
	for _, rs := range ref.Readings {
		readings += len(rs)
	}
	logf("reference: %d messages recorded (%d in Kafka), %d valid readings of %d batteries, %d rooms, %d invalid, %d duplicates",
		len(recorded), len(inKafka), readings, len(ref.Readings), len(ref.Rooms), ref.Invalid, ref.Dups)

	cmp := &comparison{t: t, serve: serveAddr, token: token}
	for id := range ref.Readings {
		for _, res := range []agg.Res{agg.Minutely, agg.Hourly} {
			cmp.battery(id, res, ref.Windows(id, res), from, to)
		}
		want, _ := ref.Latest(id)
		cmp.latest(id, want)
	}
	cmp.fleet(ref.FleetWindows(agg.Hourly), from, to)
	now := time.Now().UnixMilli()
	for id := range ref.Rooms {
		days := ref.Days(id, seoul)
		want := map[string]agg.RoomDay{}
		for _, d := range days {
			want[d.String()] = ref.RoomDay(id, d, seoul, now)
		}
		cmp.room(id, days[0], days[len(days)-1], want)
	}
	cmp.report(logf)
	logf("chaos test took %s", time.Since(began).Round(time.Second))
}

// ingest sends the simulated stream in segments of simulated time, each by
// one `gridlake simulate --simulate-fast` process with its own seed and
// record file. A segment whose process fails or is killed is sent again
// whole with the same arguments: the same messages, so Kafka holds copies
// of the interrupted attempt that the pipeline must count once. Only the
// record of a segment's completed attempt enters the reference.
type ingest struct {
	t       *testing.T
	bin     string
	dir     string
	common  []string
	start   time.Time
	segment time.Duration
	// broker and partitions, to see a segment's messages arrive.
	broker     string
	partitions int

	mu       sync.Mutex
	cur      *chaos.Proc
	records  []string
	attempts int
}

func (in *ingest) run(ctx context.Context) {
	for k := 0; ctx.Err() == nil; k++ {
		for a := 0; ; a++ {
			rec := filepath.Join(in.dir, fmt.Sprintf("seg-%03d-a%d.ndjson", k, a))
			p := &chaos.Proc{Name: fmt.Sprintf("simulate segment %d attempt %d", k, a), Path: in.bin,
				Log: filepath.Join(in.dir, fmt.Sprintf("seg-%03d-a%d.log", k, a)),
				Args: append([]string{"simulate", "--simulate-batteries", "30", "--simulate-rooms", "10", "--simulate-rate", "0.1",
					"--simulate-seed", fmt.Sprint(1000 + k), "--simulate-start", in.start.Add(time.Duration(k) * in.segment).Format(time.RFC3339),
					"--simulate-duration", in.segment.String(), "--simulate-fast",
					"--simulate-duplicate", "0.03", "--simulate-reorder", "20s", "--simulate-loss", "0.01",
					"--simulate-late", "0.01", "--simulate-late-delay", "30m", "--simulate-malformed", "0.01",
					"--simulate-record", rec}, in.common...)}
			if err := p.Start(0); err != nil {
				in.t.Error(err)
				return
			}
			in.mu.Lock()
			in.cur = p
			in.attempts++
			in.mu.Unlock()
			err := p.Wait(5 * time.Minute)
			if err == nil {
				in.mu.Lock()
				in.records = append(in.records, rec)
				in.mu.Unlock()
				break
			}
			if a >= 30 {
				in.t.Errorf("segment %d failed %d times, last: %v\n%s", k, a+1, err, logTail(p.Log))
				return
			}
			time.Sleep(500 * time.Millisecond)
		}
		select {
		case <-ctx.Done():
		case <-time.After(1500 * time.Millisecond):
		}
	}
}

func (in *ingest) completed() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.records)
}

// midSegment waits for a segment process that has started sending (it
// printed its banner) and is still running, then calls fault on it; it
// tries segment after segment until fault hit a running process.
func (in *ingest) midSegment(within time.Duration, fault func(p *chaos.Proc) (bool, string)) string {
	deadline := time.Now().Add(within)
	var last *chaos.Proc
	for time.Now().Before(deadline) {
		in.mu.Lock()
		p := in.cur
		in.mu.Unlock()
		if p == nil || p == last || !p.Running() {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		if b, _ := os.ReadFile(p.Log); !strings.Contains(string(b), "simulate: ") {
			time.Sleep(2 * time.Millisecond)
			continue
		}
		last = p
		// Mid-stream: some of this attempt's messages are in Kafka.
		was := in.kafkaEnd()
		for in.kafkaEnd() == was && p.Running() {
			time.Sleep(time.Millisecond)
		}
		if ok, what := fault(p); ok {
			return what
		}
	}
	in.t.Fatalf("no simulate process caught mid-segment within %s", within)
	return ""
}

// kafkaEnd is the sum of the high watermarks of the device topics.
func (in *ingest) kafkaEnd() int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var sum int64
	for _, topic := range []string{schemas.TopicBattery, schemas.TopicRoom} {
		for p := 0; p < in.partitions; p++ {
			conn, err := kafkaio.DialLeader(ctx, []string{in.broker}, topic, p)
			if err != nil {
				return -1
			}
			end, err := conn.ReadLastOffset()
			conn.Close()
			if err != nil {
				return -1
			}
			sum += end
		}
	}
	return sum
}

func (in *ingest) killMidSegment(within time.Duration) string {
	return in.midSegment(within, func(p *chaos.Proc) (bool, string) {
		was, err := p.Kill()
		if err != nil || !was {
			return false, ""
		}
		// The retry of the same segment must complete.
		n := in.completed()
		for deadline := time.Now().Add(60 * time.Second); in.completed() == n; {
			if time.Now().After(deadline) {
				in.t.Fatalf("the killed segment was not sent again within 60s")
			}
			time.Sleep(50 * time.Millisecond)
		}
		return true, fmt.Sprintf("SIGKILL %s mid-stream; the segment was sent again whole and completed", p.Name)
	})
}

func (in *ingest) stopMidSegment(d, within time.Duration) string {
	return in.midSegment(within, func(p *chaos.Proc) (bool, string) {
		if err := p.Stop(); err != nil {
			return false, ""
		}
		time.Sleep(d)
		if err := p.Cont(); err != nil {
			in.t.Fatal(err)
		}
		if err := p.Wait(60 * time.Second); err != nil {
			return true, fmt.Sprintf("SIGSTOP %s for %s; after SIGCONT it failed (%v) and the segment is sent again", p.Name, d, err)
		}
		return true, fmt.Sprintf("SIGSTOP %s for %s; after SIGCONT it completed its segment", p.Name, d)
	})
}

// recorded reads the records of every completed segment, in order, as
// Kafka messages in send order (partition 0, offset = position): copies of
// one identity carry the same value, so which copy is kept does not
// matter, and the reference de-duplicates them like the pipeline.
func (in *ingest) recorded(t *testing.T) []kafka.Message {
	in.mu.Lock()
	files := append([]string(nil), in.records...)
	in.mu.Unlock()
	var out []kafka.Message
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := simulate.ReadRecording(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, r := range recs {
			out = append(out, kafka.Message{Topic: r.Topic, Key: []byte(r.Key), Value: []byte(r.Value),
				Time: time.UnixMilli(r.RecordMS), Offset: int64(len(out))})
		}
	}
	return out
}

// diffMessages compares the distinct (topic, key, value, record time) of
// the record with Kafka's.
func diffMessages(recorded, inKafka []kafka.Message) (missing, extra int) {
	key := func(m kafka.Message) string {
		return fmt.Sprintf("%s\x00%s\x00%s\x00%d", m.Topic, m.Key, m.Value, m.Time.UnixMilli())
	}
	want, got := map[string]bool{}, map[string]bool{}
	for _, m := range recorded {
		want[key(m)] = true
	}
	for _, m := range inKafka {
		got[key(m)] = true
	}
	for k := range want {
		if !got[k] {
			missing++
		}
	}
	for k := range got {
		if !want[k] {
			extra++
		}
	}
	return missing, extra
}

// poller asks the API the same questions every 200 ms, each in its own
// goroutine with a 5 s timeout, and classifies the answers by phase.
type poller struct {
	base  string
	token string
	urls  []string

	mu     sync.Mutex
	phase  string
	order  []string
	down   bool  // serve is down or frozen on purpose
	epoch  int64 // rises whenever serve goes down
	counts map[string]*phaseCounts
}

type phaseCounts struct {
	ok, unavailable, excused, failed int
	slowest                          time.Duration
	status                           string   // the first /v1/status body of the phase
	message                          string   // the first 503 message
	failures                         []string // the first few failures
}

func (p *poller) setPhase(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.phase = name
	if p.counts[name] == nil {
		p.counts[name] = &phaseCounts{}
		p.order = append(p.order, name)
	}
}

func (p *poller) serveDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		p.epoch++
	}
}

func (p *poller) run(ctx context.Context) {
	client := tokenClient(p.token, 5*time.Second)
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for _, u := range p.urls {
			wg.Add(1)
			go func() { defer wg.Done(); p.ask(client, u) }()
		}
	}
}

func (p *poller) ask(client *http.Client, path string) {
	p.mu.Lock()
	phase, down0, epoch0 := p.phase, p.down, p.epoch
	p.mu.Unlock()
	t0 := time.Now()
	resp, err := client.Get(p.base + path)
	var body []byte
	code := 0
	if err == nil {
		body, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		code = resp.StatusCode
	}
	took := time.Since(t0)
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.counts[phase]
	excused := down0 || p.down || p.epoch != epoch0
	var msg struct{ Error string }
	switch {
	case err == nil && code == http.StatusOK:
		c.ok++
		c.slowest = max(c.slowest, took)
		if path == "/v1/status" && c.status == "" {
			c.status = strings.TrimSpace(string(body))
		}
	case err == nil && code == http.StatusServiceUnavailable && json.Unmarshal(body, &msg) == nil && msg.Error != "":
		c.unavailable++
		c.slowest = max(c.slowest, took)
		if c.message == "" {
			c.message = msg.Error
		}
	case excused:
		c.excused++
	default:
		c.failed++
		what := fmt.Sprintf("HTTP %d %.200s", code, strings.TrimSpace(string(body)))
		if err != nil {
			what = err.Error()
		}
		if len(c.failures) < 4 {
			c.failures = append(c.failures, fmt.Sprintf("[%s] GET %s after %.1fs: %s", phase, path, took.Seconds(), what))
		}
	}
}

// report logs the answers per phase and fails the test for every request
// that was neither answered in time nor excused.
func (p *poller) report(t *testing.T) {
	p.mu.Lock()
	defer p.mu.Unlock()
	failed := 0
	var failures []string
	for _, name := range p.order {
		c := p.counts[name]
		failed += c.failed
		failures = append(failures, c.failures...)
		line := fmt.Sprintf("API during %-22s %4d ok, %3d 503, %3d excused (serve down), %3d failed, slowest answer %.2fs",
			name, c.ok, c.unavailable, c.excused, c.failed, c.slowest.Seconds())
		if c.message != "" {
			line += fmt.Sprintf("; 503 said %q", c.message)
		}
		t.Log(line)
		if c.status != "" {
			t.Logf("    /v1/status: %.300s", c.status)
		}
	}
	if failed > 0 {
		t.Errorf("%d API requests failed while serve was up (the first few of each phase):\n%s", failed, strings.Join(failures, "\n"))
	}
}

// comparison checks the API's answers against the reference and counts
// what differs, to tell missing events from double-counted ones.
type comparison struct {
	t     *testing.T
	serve string
	token string

	windows, latests, fleetHours, roomDays, closedDays int
	problems                                           []string
	gotN, wantN                                        int64 // readings in the 1m windows
}

func (c *comparison) problem(format string, args ...any) {
	if len(c.problems) < 30 {
		c.problems = append(c.problems, fmt.Sprintf(format, args...))
	} else if len(c.problems) == 30 {
		c.problems = append(c.problems, "...")
	}
}

func (c *comparison) get(path string, v any) bool {
	c.t.Helper()
	if !getOK(c.token, c.serve, path, v) {
		c.problem("GET %s did not answer 200", path)
		return false
	}
	return true
}

func (c *comparison) battery(id string, res agg.Res, want map[int64]reference.Stats, from, to time.Time) {
	var got struct{ Windows []serving.WindowOut }
	if !c.get(fmt.Sprintf("/v1/batteries/%s/stats?res=%s&from=%d&to=%d", id, res, from.UnixMilli(), to.UnixMilli()), &got) {
		return
	}
	seen := map[int64]bool{}
	for _, w := range got.Windows {
		seen[w.StartMS] = true
		ws, ok := want[w.StartMS]
		if res == agg.Minutely {
			c.gotN += w.N
		}
		switch {
		case !ok:
			c.problem("battery %s %s window %s: n=%d, the reference has no such window", id, res, w.Start, w.N)
		case !sameWindow(w, ws):
			c.problem("battery %s %s window %s: got n=%d %+v, want n=%d %+v", id, res, w.Start, w.N, w, ws.N, ws)
		}
		c.windows++
	}
	for start, ws := range want {
		if res == agg.Minutely {
			c.wantN += ws.N
		}
		if !seen[start] {
			c.problem("battery %s %s window %s missing (reference n=%d)", id, res, time.UnixMilli(start).UTC(), ws.N)
		}
	}
}

func sameWindow(g serving.WindowOut, w reference.Stats) bool {
	m := func(g serving.MetricStats, w reference.Metric) bool {
		return g.Min == w.Min && g.Max == w.Max && reference.Close(g.Mean, w.Mean) && math.Abs(g.Std-w.Std) <= 1e-6*math.Max(1, w.Std)
	}
	return g.N == w.N && g.Last == w.Last && m(g.Voltage, w.Voltage) && m(g.Current, w.Current) &&
		m(g.Temperature, w.Temperature) && m(g.SOC, w.SOC)
}

func (c *comparison) latest(id string, want agg.Reading) {
	var got struct{ Latest agg.Reading }
	if c.get("/v1/batteries/"+id, &got) {
		c.latests++
		if got.Latest != want {
			c.problem("battery %s latest: got %+v, want %+v", id, got.Latest, want)
		}
	}
}

// latestAll compares the listing of every battery's newest reading (the
// merged list fleet/now and the out-of-range page read) with want.
func (c *comparison) latestAll(want map[string]agg.Reading) {
	if p := latestListProblem(c.token, c.serve, want); p != "" {
		c.problem("%s", p)
	}
	c.latests += len(want)
}

// latestListProblem is what differs between the listing of every
// battery's newest reading at serve and want; "" when nothing does.
func latestListProblem(token, serve string, want map[string]agg.Reading) string {
	var got struct {
		Batteries []serving.Latest
		Total     int
	}
	if !getOK(token, serve, "/v1/batteries?limit=10000", &got) {
		return "GET /v1/batteries did not answer 200"
	}
	if got.Total != len(want) || len(got.Batteries) != len(want) {
		return fmt.Sprintf("the listing holds %d of %d batteries, want %d", len(got.Batteries), got.Total, len(want))
	}
	for _, l := range got.Batteries {
		if w, ok := want[l.BatteryID]; !ok || l.Reading != w {
			return fmt.Sprintf("listed battery %s latest: got %+v, want %+v", l.BatteryID, l.Reading, w)
		}
	}
	return ""
}

func (c *comparison) fleet(want map[int64]reference.Fleet, from, to time.Time) {
	c.fleetAt(agg.Hourly, want, from, to)
}

// fleetAt compares the fleet's windows of res with the reference.
func (c *comparison) fleetAt(res agg.Res, want map[int64]reference.Fleet, from, to time.Time) {
	var got struct {
		Windows []struct {
			StartMS             int64 `json:"start_ms"`
			Readings, Batteries int64
		}
	}
	if !c.get(fmt.Sprintf("/v1/fleet/stats?res=%s&from=%d&to=%d", res, from.UnixMilli(), to.UnixMilli()), &got) {
		return
	}
	if len(got.Windows) != len(want) {
		c.problem("fleet: %d windows of %s, want %d", len(got.Windows), res, len(want))
	}
	for _, w := range got.Windows {
		c.fleetHours++
		if r := want[w.StartMS]; w.Readings != r.Readings || w.Batteries != r.Batteries {
			c.problem("fleet %s window %s: %d readings of %d batteries, want %d of %d", res, time.UnixMilli(w.StartMS).UTC(), w.Readings, w.Batteries, r.Readings, r.Batteries)
		}
	}
}

func (c *comparison) room(id string, first, last agg.Day, want map[string]agg.RoomDay) {
	var got struct{ Days []serving.RoomDay }
	if !c.get(fmt.Sprintf("/v1/rooms/%s/days?from=%s&to=%s", id, first, last), &got) {
		return
	}
	if len(got.Days) != len(want) {
		c.problem("room %s: %d days answered, want %d", id, len(got.Days), len(want))
	}
	for _, d := range got.Days {
		c.roomDays++
		if d.Closed {
			c.closedDays++
		}
		if w, ok := want[d.Day]; !ok || !reference.SameRoomDay(d.RoomDay, w) {
			c.problem("room %s %s (closed %v, revision %d): got %s, want %s", id, d.Day, d.Closed, d.Revision, jsonString(d.RoomDay), jsonString(w))
		}
	}
}

func (c *comparison) report(logf func(string, ...any)) {
	logf("compared %d battery windows (1m and 1h), %d latest readings, %d fleet hours, %d room days (%d closed by batch); readings in 1m windows: API %d, reference %d",
		c.windows, c.latests, c.fleetHours, c.roomDays, c.closedDays, c.gotN, c.wantN)
	if c.windows == 0 || c.roomDays == 0 {
		c.t.Error("nothing was compared")
	}
	if len(c.problems) > 0 {
		c.t.Errorf("the API's answers differ from the reference over the simulator's record:\n%s", strings.Join(c.problems, "\n"))
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// waitNewVersion polls the speed layer of serve at addr until it applies a
// newer batch manifest, and returns that version.
func waitNewVersion(t *testing.T, token, addr string, within time.Duration) int64 {
	t.Helper()
	var st struct {
		ManifestVersion int64 `json:"manifest_version"`
	}
	if !getOK(token, addr, "/speed/v1/status", &st) {
		t.Fatal("GET /speed/v1/status failed")
	}
	was := st.ManifestVersion
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if getOK(token, addr, "/speed/v1/status", &st) && st.ManifestVersion > was {
			return st.ManifestVersion
		}
	}
	t.Fatalf("serve applied no batch version after %d within %s", was, within)
	return 0
}

// waitRunning waits until the scheduler at addr holds a running run and
// names it; after within it gives up and names nothing.
func waitRunning(token, addr string, within time.Duration) string {
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var st struct {
			Holder string
			Jobs   []struct {
				Name string
				Last *struct {
					Number         int64
					Status, Holder string
				}
			}
		}
		if !getOK(token, addr, "/v1/jobs", &st) {
			continue
		}
		for _, j := range st.Jobs {
			if j.Last != nil && j.Last.Status == "running" && j.Last.Holder == st.Holder {
				return fmt.Sprintf("%s run %d", j.Name, j.Last.Number)
			}
		}
	}
	return "no run it held (none seen within " + within.String() + ")"
}

// getOK GETs path from addr with token and a short timeout and decodes a
// 200 answer.
func getOK(token, addr, path string, v any) bool {
	client := tokenClient(token, 10*time.Second)
	resp, err := client.Get("http://" + addr + path)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(v) == nil
}

// logTail is the end of a process's log file, for failure messages.
type logTail string

func (l logTail) String() string {
	b, err := os.ReadFile(string(l))
	if err != nil {
		return err.Error()
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
