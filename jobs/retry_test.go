package jobs

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gridlake/gridlake/internal/testenv"
	"github.com/gridlake/gridlake/metrics"
)

// TestScheduler_RetriesAndFailures: a run that fails twice and then works
// is retried with backoff and ends ok after three attempts; a run that
// always fails ends failed with its error, marks the job failing in the
// status, and counts in the metrics.
func TestScheduler_RetriesAndFailures(t *testing.T) {
	ctx := context.Background()
	store := testenv.Store(t)
	calls := 0
	flaky := func(context.Context, Input) (Output, error) {
		calls++
		if calls < 3 {
			return Output{}, errors.New("broker not reachable")
		}
		return Output{Rows: 7, Note: "done"}, nil
	}
	broken := func(context.Context, Input) (Output, error) { return Output{}, errors.New("disk full") }
	reg := metrics.NewRegistry()
	s, err := New(Options{Store: store, Holder: "test", Retries: 2, Backoff: 50 * time.Millisecond, Metrics: reg},
		&Job{Name: "flaky", Run: flaky}, &Job{Name: "broken", Run: broken})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	r, err := s.Trigger(ctx, "flaky", "manual", Input{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != StatusOK || r.Attempts != 3 || r.Rows != 7 || calls != 3 {
		t.Fatalf("flaky run: %+v after %d calls", r, calls)
	}
	if waited := time.Since(t0); waited < 150*time.Millisecond { // 50 ms, then 100 ms
		t.Fatalf("retries did not back off: %s", waited)
	}
	r, err = s.Trigger(ctx, "broken", "manual", Input{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != StatusFailed || r.Attempts != 3 || r.Error != "disk full" {
		t.Fatalf("broken run: %+v", r)
	}
	st, err := s.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range st {
		if j.Failing != (j.Name == "broken") || j.Last == nil {
			t.Fatalf("status of %s: %+v", j.Name, j)
		}
	}
	var buf bytes.Buffer
	reg.Write(&buf)
	for _, want := range []string{`gridlake_job_runs_total{job="flaky",status="ok"} 1`, `gridlake_job_runs_total{job="broken",status="failed"} 1`} {
		if !strings.Contains(buf.String(), want) {
			t.Fatalf("metrics lack %s:\n%s", want, buf.String())
		}
	}
}
