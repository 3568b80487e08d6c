package alertd

import (
	"context"
	"testing"
	"time"

	"github.com/gridlake/gridlake/alerts"
)

type fakeProbe struct {
	records int64
	lag     int64
	down    bool
	since   time.Time
}

func (f *fakeProbe) SpeedLag() int64                           { return f.lag }
func (f *fakeProbe) DeadLetters() uint64                       { return 0 }
func (f *fakeProbe) Records() (int64, bool)                    { return f.records, true }
func (f *fakeProbe) Store() (bool, time.Time, string)          { return f.down, f.since, "refused" }
func (f *fakeProbe) Jobs(context.Context) ([]FailedJob, error) { return nil, nil }

// TestPipeline_IngestStaleAndStoreOnTheWallClock: fleet_silent fires once
// no record arrived for its For, with the last arrival as its start;
// resolves when records come; a restarted evaluator takes over a firing
// alert with the same identity instead of starting another; the store
// alert starts when the store stopped answering.
func TestPipeline_IngestStaleAndStoreOnTheWallClock(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	rules := alerts.Defaults() // fleet_silent after 1m, store_unreachable after 1m, speed_lag above 100000
	probe := &fakeProbe{records: 10}
	var written []alerts.Transition
	book := NewBook(100, nil)
	newPipeline := func() *Pipeline {
		return &Pipeline{Rules: func() []alerts.Rule { return rules }, Probe: probe, Book: book, Now: func() time.Time { return now },
			Write: func(_ context.Context, ts ...alerts.Transition) error {
				written = append(written, ts...)
				for _, t := range ts {
					book.Apply(t)
				}
				return nil
			}}
	}
	p := newPipeline()
	step := func(d time.Duration) {
		t.Helper()
		now = now.Add(d)
		if err := p.Evaluate(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	step(0)
	last := now
	step(30 * time.Second)
	if len(written) != 0 {
		t.Fatalf("fired before For: %v", written)
	}
	step(31 * time.Second)
	if len(written) != 1 || written[0].Rule != "fleet_silent" || written[0].State != alerts.Firing || written[0].Start != last.UnixMilli() || written[0].Subject != SubjectFleet {
		t.Fatalf("after 61 s of silence: %+v", written)
	}
	if stale, at, _, ok := p.Stale(); !ok || !stale || !at.Equal(last) {
		t.Errorf("Stale: %v %v %v", stale, at, ok)
	}
	// A restart: the new evaluator takes the firing alert over.
	p = newPipeline()
	step(5 * time.Second)
	step(5 * time.Second)
	if len(written) != 1 {
		t.Fatalf("a restarted evaluator wrote %+v", written[1:])
	}
	probe.records = 20 // records again
	step(time.Second)
	if len(written) != 2 || written[1].State != alerts.Resolved || written[1].ID() != written[0].ID() {
		t.Fatalf("after records came: %+v", written)
	}
	// The store stopped answering 90 s ago.
	probe.down, probe.since = true, now.Add(-90*time.Second)
	step(time.Second)
	if len(written) != 3 || written[2].Rule != "store_unreachable" || written[2].Start != probe.since.UnixMilli() {
		t.Fatalf("store down: %+v", written[2:])
	}
}

// lead is who leads, with a context per term.
type lead struct {
	who  string
	term context.Context
	end  context.CancelFunc
}

func (l *lead) set(who string) {
	if l.end != nil {
		l.end()
	}
	l.who = who
	l.term, l.end = context.WithCancel(context.Background())
}

// fakeLeader leads while l names it.
type fakeLeader struct {
	name string
	l    *lead
}

func (f fakeLeader) Leading() (context.Context, bool) { return f.l.term, f.l.who == f.name }

// TestPipeline_HandoverBetweenReplicasKeepsTheIdentity: two replicas see
// the fleet go silent, each from its own start; only the leader writes,
// so one identity fires. When the other takes over it goes on under that
// identity and resolves it once records come. A condition the old leader
// saw begin but never fired is fired by the new one with the start it
// observed; and a copy of an alert under a second identity (two writers
// that once overlapped) is resolved by the next leader.
func TestPipeline_HandoverBetweenReplicasKeepsTheIdentity(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	rules := alerts.Defaults() // fleet_silent after 1m, store_unreachable after 1m
	probe := &fakeProbe{records: 10}
	book := NewBook(100, nil)
	var written []alerts.Transition
	leads := &lead{}
	leads.set("a")
	newPipeline := func(name string) *Pipeline {
		return &Pipeline{Rules: func() []alerts.Rule { return rules }, Probe: probe, Book: book, Now: func() time.Time { return now },
			Leader: fakeLeader{name, leads},
			Write: func(_ context.Context, ts ...alerts.Transition) error {
				if leads.who != name {
					t.Errorf("%s wrote %v while %s leads", name, ts, leads.who)
				}
				written = append(written, ts...)
				for _, t := range ts {
					book.Apply(t)
				}
				return nil
			}}
	}
	a, b := newPipeline("a"), newPipeline("b")
	step := func(d time.Duration, ps ...*Pipeline) {
		t.Helper()
		now = now.Add(d)
		for _, p := range ps {
			if err := p.Evaluate(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	step(0, a)
	silentFrom := now
	step(10*time.Second, a, b) // b starts 10 s later: its own start differs
	step(55*time.Second, a, b)
	if len(written) != 1 || written[0].Rule != "fleet_silent" || written[0].Start != silentFrom.UnixMilli() {
		t.Fatalf("after 65 s of silence: %+v", written)
	}
	step(10*time.Second, a, b)
	if len(written) != 1 {
		t.Fatalf("the follower or the leader wrote again: %+v", written[1:])
	}
	if stale, at, _, _ := b.Stale(); !stale || !at.Equal(silentFrom) {
		t.Errorf("the follower's Stale: %v since %v, want since %v (the book's)", stale, at, silentFrom)
	}
	// The store stops answering; a dies before its For is up.
	probe.down, probe.since = true, now
	storeFrom := now
	step(30*time.Second, a, b)
	leads.set("b")
	step(5*time.Second, b)
	step(5*time.Second, a, b)
	if len(written) != 1 {
		t.Fatalf("the new leader wrote %+v", written[1:])
	}
	step(21*time.Second, a, b)
	if len(written) != 2 || written[1].Rule != "store_unreachable" || written[1].Start != storeFrom.UnixMilli() || written[1].State != alerts.Firing {
		t.Fatalf("store down for 61 s: %+v", written[1:])
	}
	probe.records, probe.down = 20, false // records again, the store back
	step(time.Second, a, b)
	step(time.Second, a, b)
	if len(written) != 4 {
		t.Fatalf("after the records and the store came back: %+v", written[2:])
	}
	for _, w := range written[2:] {
		if w.State != alerts.Resolved || (w.ID() != written[0].ID() && w.ID() != written[1].ID()) {
			t.Errorf("resolution %+v: not of a fired identity", w)
		}
	}

	// Two identities of one condition in the book: the next leader keeps
	// the oldest and resolves the other.
	book.Apply(alerts.Transition{Rule: "fleet_silent", Kind: alerts.KindPipeline, Subject: SubjectFleet, Start: now.UnixMilli() - 90_000, State: alerts.Firing, At: now.UnixMilli() - 30_000})
	book.Apply(alerts.Transition{Rule: "fleet_silent", Kind: alerts.KindPipeline, Subject: SubjectFleet, Start: now.UnixMilli() - 80_000, State: alerts.Firing, At: now.UnixMilli() - 20_000})
	written = nil
	leads.set("a")
	step(time.Second, a, b)
	if len(written) != 1 || written[0].State != alerts.Resolved || written[0].Start != now.UnixMilli()-81_000 {
		t.Fatalf("the copy under a second identity: %+v", written)
	}
	if got := book.Firing(Filter{Rule: "fleet_silent"}); len(got) != 1 || got[0].Start != now.UnixMilli()-91_000 {
		t.Errorf("firing after the takeover: %+v", got)
	}

	// b takes over and resolves it as records come; the fleet goes
	// silent again and a takes over before b fired: a fires the new
	// silence from when it saw it begin, not under the identity it led
	// with before (resolved since).
	leads.set("b")
	probe.records = 30
	step(time.Second, a, b)
	again := now
	step(30*time.Second, a, b)
	leads.set("a")
	step(31*time.Second, a, b)
	if len(written) != 3 || written[1].State != alerts.Resolved || written[1].Start != again.UnixMilli()-92_000 ||
		written[2].State != alerts.Firing || written[2].Start != again.UnixMilli() {
		t.Fatalf("the silence again: %+v", written[1:])
	}

	// The lead goes to b and back to a between two of a's evaluations;
	// meanwhile b fired the speed lag: a reads the book again and goes on
	// under b's identity.
	written = nil
	probe.lag = 200_000 // speed_lag_high: above 100000, at once
	leads.set("b")
	step(time.Second, b)
	leads.set("a")
	step(time.Second, a)
	probe.lag = 0
	step(time.Second, a)
	if len(written) != 2 || written[0].Rule != "speed_lag_high" || written[1].ID() != written[0].ID() || written[1].State != alerts.Resolved {
		t.Fatalf("the speed lag across a quick handover: %+v", written)
	}
}
