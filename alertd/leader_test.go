package alertd

import (
	"context"
	"testing"
	"time"

	"github.com/gridlake/gridlake/internal/testenv"
)

// TestAlertLeadership_OneLeaderAndHandoverOnLeave: over the embedded
// broker, of three processes in the election exactly one leads at a time;
// when the leader stops (leaving the group), another leads within
// seconds, and the old leader's context ended.
func TestAlertLeadership_OneLeaderAndHandoverOnLeave(t *testing.T) {
	broker := testenv.Kafka(t, 3)
	type member struct {
		l    *Leadership
		stop context.CancelFunc
		done chan error
	}
	var ms []*member
	for range 3 {
		ctx, cancel := context.WithCancel(context.Background())
		m := &member{l: NewLeadership([]string{broker}, nil, nil), stop: cancel, done: make(chan error, 1)}
		go func() { m.done <- m.l.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-m.done })
		ms = append(ms, m)
	}
	leaders := func() []int {
		var out []int
		for i, m := range ms {
			if _, ok := m.l.Leading(); ok {
				out = append(out, i)
			}
		}
		return out
	}
	// settled waits until exactly one leads, twice in a row a second
	// apart (the members join one after the other).
	settled := func(what string) int {
		t.Helper()
		last := -1
		deadline := time.Now().Add(60 * time.Second)
		for {
			l := leaders()
			if len(l) > 1 {
				t.Fatalf("%s: %v lead at once", what, l)
			}
			if len(l) == 1 && l[0] == last {
				return last
			}
			last = -1
			if len(l) == 1 {
				last = l[0]
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no single leader (%v)", what, l)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	first := settled("three members")
	lead, _ := ms[first].l.Leading()
	ms[first].stop()
	if err := <-ms[first].done; err != nil {
		t.Fatal(err)
	}
	ms[first].done <- nil // for the cleanup
	if lead.Err() == nil {
		t.Error("the stopped leader's context did not end")
	}
	start := time.Now()
	next := settled("after the leader left")
	if next == first {
		t.Fatalf("the stopped member %d still leads", first)
	}
	// Leaving the group hands over without waiting for the session
	// timeout (10 s).
	if took := time.Since(start); took > 8*time.Second {
		t.Errorf("the handover took %s", took)
	}
}
