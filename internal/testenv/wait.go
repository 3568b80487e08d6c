package testenv

import (
	"fmt"
	"testing"
	"time"

	"github.com/gridlake/gridlake/schemas"
)

// WaitUntil polls ok until it holds, failing the test after d with what it
// waited for and, when logs is not nil, the logs of the processes involved.
func WaitUntil(t testing.TB, d time.Duration, what string, ok func() bool, logs fmt.Stringer) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			if logs != nil {
				t.Fatalf("timed out waiting for %s\n%s", what, logs.String())
			}
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Position is where a consumer stands in one topic partition: the next
// offset it will apply.
type Position struct {
	Topic     string
	Partition int
	Next      int64
}

// WaitCaughtUp waits, up to a minute, until the positions held reports
// cover the battery and room topics' partitions (partitions each) and have
// reached every record the broker at addr held when it was called: the
// speed layer (or several together) applied everything produced so far.
// Callers pass their layers' Status().Partitions as positions.
func WaitCaughtUp(t testing.TB, addr string, partitions int, held func() []Position) {
	t.Helper()
	ends := map[Position]int64{} // by topic and partition; Next is zero
	for _, m := range ReadAll(t, addr, schemas.TopicBattery, schemas.TopicRoom) {
		k := Position{Topic: m.Topic, Partition: m.Partition}
		ends[k] = max(ends[k], m.Offset+1)
	}
	for deadline := time.Now().Add(60 * time.Second); ; {
		at := map[Position]int64{}
		for _, p := range held() {
			at[Position{Topic: p.Topic, Partition: p.Partition}] = p.Next
		}
		done := len(at) == 2*partitions
		for k, end := range ends {
			done = done && at[k] >= end
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("speed layers did not catch up: hold %v, ends %v", at, ends)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
