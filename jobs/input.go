package jobs

import (
	"errors"
	"fmt"
	"time"

	"github.com/gridlake/gridlake/agg"
)

// DefaultBackfillMaxDays is the default of jobs.backfill_max_days.
const DefaultBackfillMaxDays = 366

// InputError is a run's input that is wrong before anything runs: nothing
// was claimed, and the caller gets it as a usage error (HTTP 400).
type InputError struct{ msg string }

func (e *InputError) Error() string { return e.msg }

// IsInputError reports whether err is an InputError.
func IsInputError(err error) bool {
	var ie *InputError
	return errors.As(err, &ie)
}

func inputErrorf(format string, args ...any) error {
	return &InputError{msg: fmt.Sprintf(format, args...)}
}

// CheckBackfill validates a backfill's range of local days: dates as
// YYYY-MM-DD in years 1..9999, from no later than to, and at most maxDays
// days (jobs.backfill_max_days).
func CheckBackfill(from, to string, maxDays int) (agg.Day, agg.Day, error) {
	parse := func(flag, s string) (agg.Day, error) {
		d, err := agg.ParseDay(s)
		if err != nil || d.Year < 1 || d.Year > 9999 {
			return agg.Day{}, inputErrorf("backfill %s %q: want a local day YYYY-MM-DD in years 1..9999", flag, s)
		}
		return d, nil
	}
	f, err := parse("from", from)
	if err != nil {
		return f, f, err
	}
	t, err := parse("to", to)
	if err != nil {
		return f, t, err
	}
	// Days between two dates of years 1..9999 fit any int: no overflow.
	days := int(date(t).Sub(date(f))/(24*time.Hour)) + 1
	switch {
	case days < 1:
		return f, t, inputErrorf("backfill from %s is after to %s", from, to)
	case days > maxDays:
		return f, t, inputErrorf("backfill of %d days (%s..%s) is more than jobs.backfill_max_days (%d): split it into several", days, from, to, maxDays)
	}
	return f, t, nil
}

func date(d agg.Day) time.Time { return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC) }

// checkInput refuses a run's bad input before its slot is claimed.
func (s *Scheduler) checkInput(name string, in Input) error {
	if name != JobBackfill {
		return nil
	}
	_, _, err := CheckBackfill(in.From, in.To, s.o.BackfillMaxDays)
	return err
}
