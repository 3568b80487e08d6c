package jobs

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gridlake/gridlake/internal/testenv"
	"github.com/gridlake/gridlake/objstore"
)

// TestScheduler_KilledManualRunIsAbandoned: a replica process triggers a
// manual run and is killed (SIGKILL) mid-run. Manual slots are never taken
// over, so before the fix the run said "running" for good. Once its lease
// has expired, history and status show it abandoned at once, and a
// sweeping replica marks both the run record and the slot abandoned; the
// run is not started again.
func TestScheduler_KilledManualRunIsAbandoned(t *testing.T) {
	ctx := context.Background()
	opts := testenv.MinIO(t)
	store, err := objstore.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	const lease = 2 * time.Second
	rs := startReplicas(t, replicaEnv{store: opts, lease: lease, work: time.Minute, jobs: "manual"}, 1)
	reader, err := New(Options{Store: store, Lease: lease}, probeJobs(store, 0, "manual")...)
	if err != nil {
		t.Fatal(err)
	}
	var victim Run
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		runs, err := reader.History(ctx, "probe", 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) == 1 && runs[0].Status == StatusRunning {
			victim = runs[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replica never started its manual run: %+v", runs)
		}
	}
	if victim.Trigger != "manual" || !strings.HasPrefix(victim.Slot, "manual-") {
		t.Fatalf("run %+v is not a manual trigger", victim)
	}
	if err := rs[0].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-rs[0].done
	c, _, err := reader.locks.readClaim(ctx, "probe", victim.Slot)
	if err != nil || c.Token != victim.Number || c.State != stateRunning {
		t.Fatalf("claim of the killed run: %+v %v", c, err)
	}
	time.Sleep(time.Until(c.Expires) + 100*time.Millisecond)

	// Without any sweeper yet, readers see it abandoned.
	runs, err := reader.History(ctx, "probe", 1)
	if err != nil || len(runs) != 1 || runs[0].Status != StatusAbandoned {
		t.Fatalf("history after the lease expired: %+v %v", runs, err)
	}
	st, err := reader.Status(ctx)
	if err != nil || st[0].Last == nil || st[0].Last.Status != StatusAbandoned || !st[0].Failing {
		t.Fatalf("status after the lease expired: %+v %v", st, err)
	}

	// A replica's sweeper makes it so in the lake.
	sweeper, err := New(Options{Store: store, Lease: lease, Holder: "sweeper"}, probeJobs(store, 0, "manual")...)
	if err != nil {
		t.Fatal(err)
	}
	if err := sweeper.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer sweeper.Stop()
	var stored Run
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if stored, _, err = reader.readRun(ctx, "probe", victim.Number); err != nil {
			t.Fatal(err)
		}
		if stored.Status != StatusRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the sweeper never marked the killed run")
		}
	}
	if stored.Status != StatusAbandoned || stored.Ended.Before(c.Expires) || !strings.Contains(stored.Error, victim.Holder) {
		t.Fatalf("the killed run's record: %+v (lease expired %s)", stored, c.Expires)
	}
	if c, _, err := reader.locks.readClaim(ctx, "probe", victim.Slot); err != nil || c.State != stateAbandoned || c.Token != victim.Number {
		t.Fatalf("slot of the killed run: %+v %v", c, err)
	}
	if n, err := reader.locks.newestToken(ctx, "probe"); err != nil || n != victim.Number {
		t.Fatalf("newest run %d (%v): a manual run must not be run again", n, err)
	}
}
