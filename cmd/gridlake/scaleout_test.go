package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/auth"
	"github.com/gridlake/gridlake/internal/chaos"
	"github.com/gridlake/gridlake/internal/reference"
	"github.com/gridlake/gridlake/internal/testenv"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/objstore"
	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/serving"
	"github.com/gridlake/gridlake/simulate"
)

// TestScaleOut_TwoServeOverThreeSpeedProcesses runs the speed layer as
// three `gridlake speed` processes and serving as two `gridlake serve
// --serve-speed remote` processes over one broker and real MinIO, with a
// batch commit between two simulated segments: every battery, fleet and
// room answer of either serve equals the reference. Then one speed
// process is SIGKILLed and another started; while the group rebalances,
// every answer is exact or a 503 with Retry-After, and once the new owners
// settled every answer is exact again.
func TestScaleOut_TwoServeOverThreeSpeedProcesses(t *testing.T) {
	const partitions = 6
	t.Setenv("GRIDLAKE_S3_SECRET_KEY", testenv.SecretKey)
	bin := buildBinary(t)
	broker := testenv.Kafka(t, partitions)
	s3 := testenv.MinIO(t)
	root := t.TempDir()
	users, tokens := testUsersFile(t)
	t.Setenv("GRIDLAKE_AUTH_USERS_FILE", users)
	common := []string{"--kafka-brokers", broker, "--s3-endpoint", s3.Endpoint, "--s3-access-key", testenv.AccessKey,
		"--s3-bucket", s3.Bucket, "--site-timezone", "Asia/Seoul", "--log-level", "warn"}
	addr := func() string { return fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)) }
	newSpeedProc := func(i int) *chaos.Proc {
		a := addr()
		p := &chaos.Proc{Name: fmt.Sprintf("speed-%d", i), Path: bin, Log: filepath.Join(root, fmt.Sprintf("speed-%d.log", i)),
			Args: append([]string{"speed", "--http-addr", a, "--data-dir", filepath.Join(root, fmt.Sprintf("speed-%d", i)),
				"--speed-announce-every", "300ms", "--speed-member-ttl", "2s"}, common...),
			Ready: chaos.HTTPReady("http://" + a + "/healthz")}
		t.Cleanup(p.Close)
		return p
	}
	speedProc := func(i int) *chaos.Proc {
		p := newSpeedProc(i)
		if err := p.Start(60 * time.Second); err != nil {
			t.Fatal(err)
		}
		return p
	}

	w := kafkaio.NewWriter([]string{broker})
	defer w.Close()
	seoul := mustLoc(t, "Asia/Seoul")
	today := time.Now().In(seoul)
	simStart := time.Date(today.Year(), today.Month(), today.Day()-2, 0, 0, 0, 0, seoul).Add(-time.Hour).UTC()
	// 300 batteries make a moved partition's replay last long enough that
	// the pollers ask while it runs (with the owner-set checks off, they
	// see wrong answers).
	sim := simulate.New(simulate.Options{Batteries: 300, Rooms: 8, Rate: 0.2, Seed: 18, Start: simStart,
		Faults: simulate.Faults{Duplicate: 0.03, Reorder: 10 * time.Second, Late: 0.01, LateDelay: 20 * time.Minute}})
	ctx := context.Background()
	// The first segment ends mid-hour: the batch commit's cut splits that
	// hour's readings of every battery between batch and the speed
	// processes, and the fleet merge reads its batteries back from them.
	if err := sim.Run(ctx, w, simulate.RunOptions{Duration: 90 * time.Minute, Fast: true}); err != nil {
		t.Fatal(err)
	}
	speeds := []*chaos.Proc{speedProc(0), speedProc(1), speedProc(2)}
	store, err := objstore.Open(ctx, objstore.Options{Endpoint: s3.Endpoint, AccessKey: testenv.AccessKey, SecretKey: testenv.SecretKey, Bucket: s3.Bucket})
	if err != nil {
		t.Fatal(err)
	}
	settled := func(want int) (lake.Member, bool) {
		ms, err := lake.Members(ctx, store, lake.SpeedGroup)
		if err != nil {
			return lake.Member{}, false
		}
		live, owned := 0, 0
		var first lake.Member
		for _, m := range ms {
			if !m.Live(time.Now()) {
				continue
			}
			if live == 0 {
				first = m
			}
			if m.Generation != first.Generation {
				return first, false
			}
			live++
			for _, p := range m.Partitions {
				if !p.Ready {
					return first, false
				}
				owned++
			}
		}
		return first, live == want && owned == 2*partitions
	}
	var gen1 lake.Member
	testenv.WaitUntil(t, 90*time.Second, "three speed processes to own every partition in one generation", func() bool {
		var ok bool
		gen1, ok = settled(3)
		return ok
	}, logFiles(root))

	// A batch commit, then more data above its cut.
	batchRun := func() *lake.Manifest {
		batch := exec.Command(bin, append([]string{"batch", "run", "--data-dir", filepath.Join(root, "batch")}, common...)...)
		if out, err := batch.CombinedOutput(); err != nil {
			t.Fatalf("gridlake batch run: %v\n%s", err, out)
		}
		man, err := lake.Latest(ctx, store)
		if err != nil || man == nil {
			t.Fatalf("no manifest after gridlake batch run: %v", err)
		}
		return man
	}
	// Batch cuts the battery partitions at a generation boundary the speed
	// processes published; they rotate every 30 s. Without one past the
	// start, batch would take no battery reading and every battery answer
	// would come from the speed side alone.
	testenv.WaitUntil(t, 90*time.Second, "every battery partition to publish a generation boundary past its start", func() bool {
		for p := range partitions {
			b, err := lake.ReadBoundaries(ctx, store, lake.SpeedGroup, schemas.TopicBattery, p)
			if err != nil || len(b.Offsets) == 0 || b.Offsets[len(b.Offsets)-1] == 0 {
				return false
			}
		}
		return true
	}, logFiles(root))
	man := batchRun()
	for p := range partitions {
		if man.Cut.Offset(schemas.TopicBattery, p) == 0 {
			t.Fatalf("batch version %d took no reading of battery partition %d (cut %v)", man.Version, p, man.Cut)
		}
	}
	if err := sim.Run(ctx, w, simulate.RunOptions{Duration: 90 * time.Minute, Fast: true}); err != nil {
		t.Fatal(err)
	}

	admin := tokens[auth.Admin]
	var serves []string
	for i := range 2 {
		a := addr()
		p := &chaos.Proc{Name: fmt.Sprintf("serve-%d", i), Path: bin, Log: filepath.Join(root, fmt.Sprintf("serve-%d.log", i)),
			Args: append([]string{"serve", "--http-addr", a, "--data-dir", filepath.Join(root, fmt.Sprintf("serve-%d", i)),
				"--serve-speed", "remote", "--serve-pg-addr", "", "--serve-flight-addr", "", "--jobs-enabled=false"}, common...),
			Env:   []string{"GRIDLAKE_SERVE_SPEED_TOKEN=" + tokens[auth.Engineer]},
			Ready: chaos.HTTPReady("http://" + a + "/healthz")}
		t.Cleanup(p.Close)
		if err := p.Start(60 * time.Second); err != nil {
			t.Fatal(err)
		}
		serves = append(serves, a)
	}

	all := testenv.ReadAll(t, broker, schemas.TopicBattery, schemas.TopicRoom)
	ref := reference.Build(schemas.DefaultLimits(), all)
	from, to := simStart.Add(-time.Hour), simStart.Add(24*time.Hour)
	caughtUp := func(man *lake.Manifest) {
		for _, a := range serves {
			testenv.WaitUntil(t, 90*time.Second, fmt.Sprintf("serve %s to answer at batch version %d with no speed lag", a, man.Version), func() bool {
				var st struct{ Freshness serving.Freshness }
				return getOK(admin, a, "/v1/status", &st) && st.Freshness.BatchVersion >= man.Version && st.Freshness.SpeedLag == 0
			}, logFiles(root))
		}
	}
	caughtUp(man)
	latestWant := func() map[string]agg.Reading {
		out := map[string]agg.Reading{}
		for id := range ref.Readings {
			out[id], _ = ref.Latest(id)
		}
		return out
	}
	compareAll := func(phase string) {
		for _, a := range serves {
			cmp := &comparison{t: t, serve: a, token: admin}
			// Twice: the second listing comes from the serve's replicas of
			// the owners' newest readings, asked for what changed since.
			cmp.latestAll(latestWant())
			cmp.latestAll(latestWant())
			for id := range ref.Readings {
				for _, res := range []agg.Res{agg.Minutely, agg.Hourly} {
					cmp.battery(id, res, ref.Windows(id, res), from, to)
				}
				want, _ := ref.Latest(id)
				cmp.latest(id, want)
			}
			cmp.fleet(ref.FleetWindows(agg.Hourly), from, to)
			// The fleet's minutes: each is held by three owners, whose
			// counts add up, and those around a cut or with late readings
			// by the batch side too, whose batteries the merge reads back
			// from the owners (the source interface's batteries, from
			// their fleet index) to count each battery once.
			cmp.fleetAt(agg.Minutely, ref.FleetWindows(agg.Minutely), from, to)
			for id := range ref.Rooms {
				days := ref.Days(id, seoul)
				want := map[string]agg.RoomDay{}
				for _, d := range days {
					want[d.String()] = ref.RoomDay(id, d, seoul, time.Now().UnixMilli())
				}
				cmp.room(id, days[0], days[len(days)-1], want)
			}
			cmp.report(func(f string, args ...any) { t.Logf(phase+", serve "+a+": "+f, args...) })
		}
	}
	// The speed side answers may trail by a poll of lag; the first full
	// comparison waits for every process to have caught up.
	compareAll("three speed processes")

	// More readings arrive above the cut: each serve keeps the owners'
	// newest readings and asks only for those that changed since its
	// cursor; its listing must come to equal the reference (a change the
	// cursor missed would stay missing until the next batch version).
	if err := sim.Run(ctx, w, simulate.RunOptions{Duration: 10 * time.Minute, Fast: true}); err != nil {
		t.Fatal(err)
	}
	all = testenv.ReadAll(t, broker, schemas.TopicBattery, schemas.TopicRoom)
	ref = reference.Build(schemas.DefaultLimits(), all)
	for _, a := range serves {
		var last string
		testenv.WaitUntil(t, 90*time.Second, "serve "+a+"'s listing of the newest readings to take the new readings", func() bool {
			last = latestListProblem(admin, a, latestWant())
			return last == ""
		}, lastProblem{&last})
	}
	compareAll("after more readings")

	// SIGKILL one speed process and start another; ask both serves
	// throughout the rebalance.
	ids := make([]string, 0, len(ref.Readings))
	for id := range ref.Readings {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	rooms := make([]string, 0, len(ref.Rooms))
	for id := range ref.Rooms {
		rooms = append(rooms, id)
	}
	sort.Strings(rooms)
	var mu sync.Mutex
	var exact, unavailable int
	var wrong []string
	// ask records whether an answer was exact (check finds nothing
	// wrong), a 503 with Retry-After, or anything else.
	ask := func(a, path string, check func(body []byte) string) {
		problem, is503 := "", false
		resp, err := tokenClient(admin, 10*time.Second).Get("http://" + a + path)
		if err != nil {
			problem = err.Error()
		} else {
			var body json.RawMessage
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "":
				is503 = true
			case resp.StatusCode != http.StatusOK:
				problem = fmt.Sprintf("HTTP %d %s", resp.StatusCode, body)
			default:
				problem = check(body)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		switch {
		case problem != "":
			wrong = append(wrong, fmt.Sprintf("GET %s from %s: %s", path, a, problem))
		case is503:
			unavailable++
		default:
			exact++
		}
	}
	fleetWant := ref.FleetWindows(agg.Hourly)
	askRound := func(round int) {
		a := serves[round%2]
		id := ids[round%len(ids)]
		want := ref.Windows(id, agg.Minutely)
		ask(a, fmt.Sprintf("/v1/batteries/%s/stats?res=1m&from=%d&to=%d", id, from.UnixMilli(), to.UnixMilli()), func(body []byte) string {
			var got struct{ Windows []serving.WindowOut }
			if json.Unmarshal(body, &got) != nil || len(got.Windows) != len(want) {
				return fmt.Sprintf("%d windows, want %d", len(got.Windows), len(want))
			}
			for _, w := range got.Windows {
				if !sameWindow(w, want[w.StartMS]) {
					return fmt.Sprintf("window %d: got n=%d, want n=%d", w.StartMS, w.N, want[w.StartMS].N)
				}
			}
			return ""
		})
		ask(a, fmt.Sprintf("/v1/fleet/stats?res=1h&from=%d&to=%d", from.UnixMilli(), to.UnixMilli()), func(body []byte) string {
			var got struct {
				Windows []struct {
					StartMS             int64 `json:"start_ms"`
					Readings, Batteries int64
				}
			}
			if json.Unmarshal(body, &got) != nil || len(got.Windows) != len(fleetWant) {
				return fmt.Sprintf("%d fleet hours, want %d", len(got.Windows), len(fleetWant))
			}
			for _, w := range got.Windows {
				if r := fleetWant[w.StartMS]; w.Readings != r.Readings || w.Batteries != r.Batteries {
					return fmt.Sprintf("fleet hour %d: %d readings of %d batteries, want %d of %d", w.StartMS, w.Readings, w.Batteries, r.Readings, r.Batteries)
				}
			}
			return ""
		})
		room := rooms[round%len(rooms)]
		days := ref.Days(room, seoul)
		ask(a, fmt.Sprintf("/v1/rooms/%s/days?from=%s&to=%s", room, days[0], days[len(days)-1]), func(body []byte) string {
			var got struct{ Days []serving.RoomDay }
			if json.Unmarshal(body, &got) != nil || len(got.Days) != len(days) {
				return fmt.Sprintf("%d days, want %d", len(got.Days), len(days))
			}
			for _, d := range got.Days {
				day, _ := agg.ParseDay(d.Day)
				if w := ref.RoomDay(room, day, seoul, time.Now().UnixMilli()); !reference.SameRoomDay(d.RoomDay, w) {
					return fmt.Sprintf("day %s: got %s, want %s", d.Day, jsonString(d.RoomDay), jsonString(w))
				}
			}
			return ""
		})
	}
	// Four pollers ask both serves from before the kill until the new
	// owners settled, and at least past the group's session timeout.
	stop := make(chan struct{})
	var pollers sync.WaitGroup
	for i := range 4 {
		pollers.Add(1)
		go func() {
			defer pollers.Done()
			for round := i; ; round += 4 {
				select {
				case <-stop:
					return
				default:
				}
				askRound(round)
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	killedAt := time.Now()
	if killed, err := speeds[0].Kill(); err != nil || !killed {
		t.Fatalf("SIGKILL speed-0: %v (running: %v)", err, killed)
	}
	next := newSpeedProc(3)
	if err := next.Start(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	testenv.WaitUntil(t, 3*time.Minute, "the speed processes to settle on new owners", func() bool {
		m, ok := settled(3)
		mu.Lock()
		bad := len(wrong) > 0
		mu.Unlock()
		return bad || (ok && m.Generation != gen1.Generation && time.Since(killedAt) > 15*time.Second)
	}, logFiles(root))
	close(stop)
	pollers.Wait()
	if len(wrong) > 0 {
		t.Fatalf("during the rebalance (%d exact, %d 503), %d wrong answers:\n%s", exact, unavailable, len(wrong), strings.Join(wrong[:min(len(wrong), 10)], "\n"))
	}
	if unavailable == 0 {
		t.Error("no answer was a 503 while the killed process still counted as an owner: the rebalance went unobserved")
	}
	t.Logf("during the rebalance: %d exact answers, %d 503 with Retry-After, none wrong", exact, unavailable)
	compareAll("after the rebalance")

	// Another batch commit, its cut on a boundary the new owners publish:
	// the speed processes apply it each on its own poll, and the serves
	// answer at it exactly.
	next2 := batchRun()
	caughtUp(next2)
	compareAll(fmt.Sprintf("after batch version %d (was %d)", next2.Version, man.Version))
}

// lastProblem shows the last problem a wait saw when it times out.
type lastProblem struct{ s *string }

func (p lastProblem) String() string { return "last seen: " + *p.s }
