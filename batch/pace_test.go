package batch

import (
	"context"
	"testing"
	"time"
)

// TestPacer_HoldsTheAverageRate: at 2,000 records/s, 1,000 records in
// chunks take about half a second; no rate never waits; a cancelled
// context stops the wait.
func TestPacer_HoldsTheAverageRate(t *testing.T) {
	ctx := context.Background()
	p := newPacer(2000, time.Now())
	t0 := time.Now()
	for i := 0; i < 10; i++ {
		if err := p.wait(ctx, 100); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(t0); d < 450*time.Millisecond || d > 2*time.Second {
		t.Fatalf("1,000 records at 2,000/s took %s", d)
	}
	var none *pacer = newPacer(0, time.Now())
	t0 = time.Now()
	if err := none.wait(ctx, 1_000_000); err != nil || time.Since(t0) > 10*time.Millisecond {
		t.Fatalf("an uncapped pacer waited %s (%v)", time.Since(t0), err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := newPacer(1, time.Now()).wait(cctx, 100); err == nil {
		t.Fatal("a cancelled wait returned no error")
	}
}
