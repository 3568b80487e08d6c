package bench

import "context"

// RateStep is one short run of the search for the highest rate that keeps
// every endpoint's p99 under the target.
type RateStep struct {
	Rate   int     `json:"rate"`
	P99    float64 `json:"worst_p99_ms"`
	Worst  string  `json:"worst_endpoint"`
	Errors int     `json:"errors"`
	OK     bool    `json:"ok"`
}

// searchOptions bound the search: at most Steps runs, rates up to Ceiling,
// and it stops once the passing and failing rates are within Resolution.
type searchOptions struct {
	Steps      int
	Ceiling    int
	Resolution int
}

// searchMaxRate finds the highest rate at which measure passes, starting
// from a run already made (first): above a pass it multiplies the rate by
// 1.5 until a run fails (or the ceiling passes), then bisects between the
// highest pass and the lowest failure. It returns the highest passing rate
// seen (0 if none) and every step it ran.
func searchMaxRate(ctx context.Context, o searchOptions, first RateStep, measure func(ctx context.Context, rate int) (RateStep, error)) (int, []RateStep, error) {
	lo, hi := 0, 0 // highest pass, lowest failure (0: none yet)
	// Every rate tried lies between lo and hi, so a step moves one of them.
	note := func(s RateStep) {
		if s.OK {
			lo = s.Rate
		} else {
			hi = s.Rate
		}
	}
	note(first)
	var steps []RateStep
	for len(steps) < o.Steps {
		var rate int
		switch {
		case hi == 0 && lo >= o.Ceiling:
			return lo, steps, nil
		case hi == 0:
			rate = min(o.Ceiling, max(lo*3/2, lo+1))
		case hi-lo <= o.Resolution:
			return lo, steps, nil
		default:
			rate = lo + (hi-lo)/2
		}
		s, err := measure(ctx, rate)
		if err != nil {
			return lo, steps, err
		}
		steps = append(steps, s)
		note(s)
	}
	return lo, steps, nil
}
