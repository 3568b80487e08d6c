package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/gridlake/gridlake/internal/testenv"
	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/objstore"
)

// A scheduler replica in its own process: the test binary re-executed with
// GRIDLAKE_TEST_REPLICA set, so a test can SIGSTOP, SIGCONT and SIGKILL it
// like any real replica.
func TestMain(m *testing.M) {
	if os.Getenv("GRIDLAKE_TEST_REPLICA") != "" {
		if err := runReplica(); err != nil {
			fmt.Fprintln(os.Stderr, "replica:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// replicaEnv configures a replica process.
type replicaEnv struct {
	store objstore.Options
	lease time.Duration
	work  time.Duration // how long a probe run works before it commits
	jobs  string        // "many": probe every 1s and probe-cron every 2s; "slow": probe every 15s; "manual": probe triggered once at start
}

// probeJobs are the test jobs: each run works a while, then commits a
// lake manifest naming itself. Like a careless job, it ignores
// cancellation, so only the fence can stop its late commit.
func probeJobs(store objstore.Bucket, work time.Duration, which string) []*Job {
	probe := func(ctx context.Context, _ Input) (Output, error) {
		time.Sleep(work)
		ctx = context.WithoutCancel(ctx) // keeps the fence, drops the cancel
		prev, err := lake.Latest(ctx, store)
		if err != nil {
			return Output{}, err
		}
		if prev == nil {
			prev = &lake.Manifest{Cut: lake.Cut{}}
		}
		next := prev.Next("probe", time.Now())
		next.CommittedAt = time.Now()
		if err := lake.Commit(ctx, store, next); err != nil {
			return Output{}, err
		}
		return Output{Manifest: next, Rows: 1}, nil
	}
	switch which {
	case "slow":
		return []*Job{{Name: "probe", Schedule: MustSchedule(15*time.Second, ""), Run: probe}}
	case "manual":
		return []*Job{{Name: "probe", Run: probe}}
	}
	return []*Job{
		{Name: "probe", Schedule: MustSchedule(time.Second, ""), Run: probe},
		{Name: "probe-cron", Schedule: MustSchedule(0, "*/2 * * * * *"), Run: probe},
	}
}

func runReplica() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	lease, _ := time.ParseDuration(os.Getenv("GRIDLAKE_TEST_LEASE"))
	work, _ := time.ParseDuration(os.Getenv("GRIDLAKE_TEST_WORK"))
	store, err := objstore.Open(ctx, objstore.Options{Endpoint: os.Getenv("GRIDLAKE_TEST_S3"),
		AccessKey: testenv.AccessKey, SecretKey: testenv.SecretKey, Bucket: os.Getenv("GRIDLAKE_TEST_BUCKET")})
	if err != nil {
		return err
	}
	s, err := New(Options{Store: store, Holder: os.Getenv("GRIDLAKE_TEST_REPLICA"), Lease: lease,
		Retries: 8, Backoff: 20 * time.Millisecond}, probeJobs(store, work, os.Getenv("GRIDLAKE_TEST_JOBS"))...)
	if err != nil {
		return err
	}
	if err := s.Start(ctx); err != nil {
		return err
	}
	if os.Getenv("GRIDLAKE_TEST_JOBS") == "manual" {
		if _, err := s.TriggerAsync(ctx, "probe", "manual", Input{}); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return s.Stop()
}

// replica is a running replica process.
type replica struct {
	name string
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan error
}

func startReplicas(t *testing.T, env replicaEnv, n int) []*replica {
	t.Helper()
	var rs []*replica
	for i := 0; i < n; i++ {
		r := &replica{name: fmt.Sprintf("replica-%d", i), out: &bytes.Buffer{}, done: make(chan error, 1)}
		r.cmd = exec.Command(os.Args[0], "-test.run=^$")
		r.cmd.Env = append(os.Environ(), "GRIDLAKE_TEST_REPLICA="+r.name, "GRIDLAKE_TEST_S3="+env.store.Endpoint,
			"GRIDLAKE_TEST_BUCKET="+env.store.Bucket, "GRIDLAKE_TEST_LEASE="+env.lease.String(),
			"GRIDLAKE_TEST_WORK="+env.work.String(), "GRIDLAKE_TEST_JOBS="+env.jobs)
		r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
		if err := r.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { r.done <- r.cmd.Wait() }()
		rs = append(rs, r)
		t.Cleanup(func() {
			_ = r.cmd.Process.Signal(syscall.SIGCONT)
			_ = r.cmd.Process.Kill()
			if t.Failed() {
				t.Logf("%s output:\n%s", r.name, r.out.String())
			}
		})
	}
	return rs
}

// stop ends a replica gracefully and waits for it.
func (r *replica) stop(t *testing.T) {
	t.Helper()
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not stop", r.name)
	}
}

// commits maps job -> token -> the manifest versions committed by that run.
func commits(t *testing.T, ctx context.Context, store *objstore.Store) map[string]map[int64][]int64 {
	t.Helper()
	latest, err := lake.Latest(ctx, store)
	if err != nil || latest == nil {
		t.Fatalf("no manifests: %v", err)
	}
	out := map[string]map[int64][]int64{}
	for v := int64(1); v <= latest.Version; v++ {
		m, err := lake.Read(ctx, store, v)
		if err != nil {
			t.Fatalf("manifest %d: %v", v, err)
		}
		if m.Run.Job == "" || m.Run.Token == 0 {
			t.Fatalf("manifest %d has no fencing token: %+v", v, m.Run)
		}
		if out[m.Run.Job] == nil {
			out[m.Run.Job] = map[int64][]int64{}
		}
		out[m.Run.Job][m.Run.Token] = append(out[m.Run.Job][m.Run.Token], v)
	}
	return out
}

// TestScheduler_ThreeReplicasRunEachSlotOnce: three scheduler processes
// share one real MinIO; over many slots of an interval job and a cron job,
// every slot ran exactly once (one run record, one commit), none was
// skipped, and job numbers rise with the slots.
func TestScheduler_ThreeReplicasRunEachSlotOnce(t *testing.T) {
	ctx := context.Background()
	opts := testenv.MinIO(t)
	store, err := objstore.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	rs := startReplicas(t, replicaEnv{store: opts, lease: 5 * time.Second, work: 50 * time.Millisecond, jobs: "many"}, 3)
	time.Sleep(12 * time.Second)
	for _, r := range rs {
		r.stop(t)
	}

	reader, err := New(Options{Store: store}, probeJobs(store, 0, "many")...)
	if err != nil {
		t.Fatal(err)
	}
	made := commits(t, ctx, store)
	for _, j := range reader.Jobs() {
		runs, err := reader.History(ctx, j.Name, 0)
		if err != nil {
			t.Fatal(err)
		}
		bySlot := map[string]Run{}
		holders := map[string]int{}
		for _, r := range runs {
			if r.Status != StatusOK {
				t.Fatalf("%s run %d (slot %s) ended %s: %s", j.Name, r.Number, r.Slot, r.Status, r.Error)
			}
			if other, dup := bySlot[r.Slot]; dup {
				t.Fatalf("%s slot %s ran twice: runs %d on %s and %d on %s", j.Name, r.Slot, other.Number, other.Holder, r.Number, r.Holder)
			}
			bySlot[r.Slot] = r
			holders[r.Holder]++
			if got := made[j.Name][r.Number]; len(got) != 1 || got[0] != r.Version {
				t.Fatalf("%s run %d recorded version %d but committed versions %v", j.Name, r.Number, r.Version, got)
			}
		}
		if len(made[j.Name]) != len(runs) {
			t.Fatalf("%s: %d runs committed, %d run records", j.Name, len(made[j.Name]), len(runs))
		}
		// Slots are contiguous and job numbers rise with them.
		first, _ := time.Parse("20060102T150405.000Z", runs[len(runs)-1].Slot)
		last, _ := time.Parse("20060102T150405.000Z", runs[0].Slot)
		prevNumber := int64(0)
		n := 0
		for slot := first; !slot.After(last); slot = j.Schedule.Next(slot) {
			r, ok := bySlot[slotName(slot, false)]
			if !ok {
				t.Fatalf("%s slot %s never ran (runs %s..%s)", j.Name, slotName(slot, false), runs[len(runs)-1].Slot, runs[0].Slot)
			}
			if r.Number <= prevNumber {
				t.Fatalf("%s slot %s has job number %d after %d", j.Name, r.Slot, r.Number, prevNumber)
			}
			prevNumber = r.Number
			n++
		}
		min := 8
		if j.Schedule.Every == 0 {
			min = 4
		}
		if n < min {
			t.Fatalf("%s: only %d slots ran in 12s", j.Name, n)
		}
		t.Logf("%s: %d slots, each once; runs by replica %v", j.Name, n, holders)
	}
}

// TestScheduler_StalledAndKilledHolders: the replica running a slot is
// frozen (SIGSTOP) mid-run; once its lease expires another replica takes the
// slot over with a newer job number and commits. The frozen one, resumed,
// tries to commit anyway and is refused by the fence. Then a holder is
// killed outright (SIGKILL) mid-run, and another replica finishes its slot.
func TestScheduler_StalledAndKilledHolders(t *testing.T) {
	ctx := context.Background()
	opts := testenv.MinIO(t)
	store, err := objstore.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	rs := startReplicas(t, replicaEnv{store: opts, lease: 2 * time.Second, work: 4 * time.Second, jobs: "slow"}, 3)
	byName := map[string]*replica{}
	for _, r := range rs {
		byName[r.name] = r
	}
	reader, err := New(Options{Store: store}, probeJobs(store, 0, "slow")...)
	if err != nil {
		t.Fatal(err)
	}
	readClaim := func(slot string) (claim, bool) {
		var c claim
		data, _, err := store.Get(ctx, jobPrefix("probe")+"slots/"+slot+".json")
		if errors.Is(err, objstore.ErrNotFound) {
			return c, false
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &c); err != nil {
			t.Fatal(err)
		}
		return c, true
	}
	waitFor := func(what string, d time.Duration, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(d)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	run := func(number int64) (Run, bool) {
		runs, err := reader.History(ctx, "probe", 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range runs {
			if r.Number == number {
				return r, true
			}
		}
		return Run{}, false
	}

	// The next slot, with a second to spare for the replicas to start.
	sched := MustSchedule(15*time.Second, "")
	slot := slotName(sched.Next(time.Now().Add(time.Second)), false)
	var first claim
	waitFor("a replica to claim slot "+slot, 20*time.Second, func() bool {
		c, ok := readClaim(slot)
		first = c
		return ok && c.Token > 0
	})
	stalled := byName[first.Holder]
	if err := stalled.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var taker claim
	waitFor("a takeover of slot "+slot, 10*time.Second, func() bool {
		taker, _ = readClaim(slot)
		return taker.Token != first.Token
	})
	if taker.Holder == first.Holder || taker.Token <= first.Token || taker.Takeovers != 1 {
		t.Fatalf("takeover %+v of %+v", taker, first)
	}
	if err := stalled.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitFor("both runs of slot "+slot+" to end", 20*time.Second, func() bool {
		a, okA := run(first.Token)
		b, okB := run(taker.Token)
		return okA && okB && a.Status != StatusRunning && b.Status != StatusRunning
	})
	stale, _ := run(first.Token)
	finisher, _ := run(taker.Token)
	if finisher.Status != StatusOK || finisher.Trigger != "takeover" || finisher.Slot != slot {
		t.Fatalf("the taker's run: %+v", finisher)
	}
	if stale.Status != StatusFenced {
		t.Fatalf("the stalled holder's run ended %s, want %s: %+v", stale.Status, StatusFenced, stale)
	}
	made := commits(t, ctx, store)
	if len(made["probe"][first.Token]) != 0 {
		t.Fatalf("the stalled run %d committed versions %v", first.Token, made["probe"][first.Token])
	}
	if v := made["probe"][taker.Token]; len(v) != 1 || v[0] != finisher.Version {
		t.Fatalf("the taker's run %d committed %v, recorded %d", taker.Token, v, finisher.Version)
	}
	if c, _ := readClaim(slot); c.State != stateDone || c.Token != taker.Token {
		t.Fatalf("slot %s ends as %+v", slot, c)
	}
	t.Logf("slot %s: run %d on %s stalled and was fenced (%s); run %d on %s finished it",
		slot, first.Token, first.Holder, stale.Error, taker.Token, taker.Holder)

	// Killed outright: the next slot's holder dies mid-run.
	next := slotName(sched.Next(time.Now()), false)
	var victim claim
	waitFor("a replica to claim slot "+next, 20*time.Second, func() bool {
		c, ok := readClaim(next)
		victim = c
		return ok && c.Token > 0
	})
	killed := byName[victim.Holder]
	if err := killed.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	var done claim
	waitFor("another replica to finish slot "+next, 20*time.Second, func() bool {
		done, _ = readClaim(next)
		return done.State == stateDone
	})
	if done.Holder == victim.Holder || done.Token <= victim.Token {
		t.Fatalf("slot %s finished as %+v after %+v was killed", next, done, victim)
	}
	if r, ok := run(done.Token); !ok || r.Status != StatusOK || len(commits(t, ctx, store)["probe"][done.Token]) != 1 {
		t.Fatalf("the finishing run: %+v", r)
	}
	// The killed run's own record says it was abandoned, not running
	// (unless it died before writing one).
	r, _, err := reader.readRun(ctx, "probe", victim.Token)
	if (err != nil && !errors.Is(err, objstore.ErrNotFound)) || (err == nil && r.Status != StatusAbandoned) {
		t.Fatalf("the killed run's record: %+v %v", r, err)
	}
	t.Logf("slot %s: run %d on %s was killed (record: %q %v); run %d on %s finished it", next, victim.Token, victim.Holder, r.Status, err, done.Token, done.Holder)
}
