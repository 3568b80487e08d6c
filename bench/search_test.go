package bench

import (
	"context"
	"testing"
)

// The search brackets the highest passing rate and answers a rate that
// passed, within the resolution and the step budget.
func TestSearchMaxRate(t *testing.T) {
	for _, tc := range []struct {
		name      string
		limit     int // rates up to this pass
		first     int
		ceiling   int
		wantLo    int // the answer lies in [wantLo, limit]
		maxSteps  int
		wantSteps int // -1: any up to maxSteps
	}{
		{"above the first rate", 3700, 2000, 20000, 3700 - 100, 8, -1},
		{"below the first rate", 1300, 2000, 20000, 1300 - 100, 8, -1},
		{"nothing passes", 0, 2000, 20000, 0, 8, -1},
		{"everything passes up to the ceiling", 1 << 30, 2000, 5000, 5000, 8, 3}, // 3000, 4500, 5000
		{"the step budget holds", 3700, 2000, 20000, 2000, 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ran := 0
			measure := func(_ context.Context, rate int) (RateStep, error) {
				ran++
				return RateStep{Rate: rate, OK: rate <= tc.limit}, nil
			}
			first := RateStep{Rate: tc.first, OK: tc.first <= tc.limit}
			got, steps, err := searchMaxRate(context.Background(), searchOptions{Steps: tc.maxSteps, Ceiling: tc.ceiling, Resolution: 100}, first, measure)
			if err != nil {
				t.Fatal(err)
			}
			if got > tc.limit || got > tc.ceiling || got < tc.wantLo {
				t.Errorf("max rate %d, want within [%d, %d]; steps %+v", got, tc.wantLo, tc.limit, steps)
			}
			if got > 0 && got != tc.first {
				found := false
				for _, s := range steps {
					found = found || (s.Rate == got && s.OK)
				}
				if !found {
					t.Errorf("max rate %d was never a passing step: %+v", got, steps)
				}
			}
			if ran != len(steps) || ran > tc.maxSteps || (tc.wantSteps >= 0 && ran != tc.wantSteps) {
				t.Errorf("ran %d steps (returned %d), budget %d, want %d", ran, len(steps), tc.maxSteps, tc.wantSteps)
			}
		})
	}
}
