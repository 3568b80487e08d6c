// Package jobs is gridlake's scheduler of batch work for data engineers:
// a registry of jobs with interval or cron schedules on gocron/v2, one run
// per schedule slot across any number of replicas (slot claims with leases
// and fencing tokens in the object store), retries with backoff, a run
// history in the lake, manual runs and backfills.
package jobs

import (
	"fmt"
	"strings"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/robfig/cron/v3"
)

// Schedule is when a job runs: every interval (aligned to multiples of it,
// so replicas agree on the slots), on a cron expression, or only when
// triggered (the zero Schedule).
type Schedule struct {
	Every time.Duration
	Cron  string
	spec  cron.Schedule
	secs  bool // the expression has a seconds field
}

var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule checks a schedule: every wins when both are set.
func ParseSchedule(every time.Duration, expr string) (Schedule, error) {
	s := Schedule{Every: every}
	switch {
	case every < 0:
		return s, fmt.Errorf("interval %s must not be negative", every)
	case every > 0:
		if every < time.Second {
			return s, fmt.Errorf("interval %s is below the 1s minimum", every)
		}
		return s, nil
	case expr == "":
		return s, nil
	}
	spec, err := cronParser.Parse(expr)
	if err != nil {
		return s, fmt.Errorf("cron %q: %w (for example '*/5 * * * *' or 'CRON_TZ=Asia/Seoul 0 1 * * *')", expr, err)
	}
	fields := strings.Fields(expr)
	if len(fields) > 0 && (strings.HasPrefix(fields[0], "CRON_TZ=") || strings.HasPrefix(fields[0], "TZ=")) {
		fields = fields[1:]
	}
	s.Cron, s.spec, s.secs = expr, spec, len(fields) == 6
	return s, nil
}

// Manual reports whether the job only runs when triggered.
func (s Schedule) Manual() bool { return s.Every == 0 && s.spec == nil }

func (s Schedule) String() string {
	switch {
	case s.Every > 0:
		return "every " + s.Every.String()
	case s.spec != nil:
		return "cron " + s.Cron
	}
	return "manual"
}

// Next is the first activation after t.
func (s Schedule) Next(t time.Time) time.Time {
	switch {
	case s.Every > 0:
		return t.Truncate(s.Every).Add(s.Every)
	case s.spec != nil:
		return s.spec.Next(t)
	}
	return time.Time{}
}

// Prev is the last activation at or before t.
func (s Schedule) Prev(t time.Time) time.Time {
	switch {
	case s.Every > 0:
		return t.Truncate(s.Every)
	case s.spec == nil:
		return time.Time{}
	}
	// robfig/cron only steps forward: start a little back and walk up,
	// looking further back for sparse schedules.
	for _, back := range []time.Duration{time.Hour, 25 * time.Hour, 32 * 24 * time.Hour, 367 * 24 * time.Hour} {
		a := s.spec.Next(t.Add(-back))
		if a.IsZero() || a.After(t) {
			continue
		}
		for {
			n := s.spec.Next(a)
			if n.After(t) {
				return a
			}
			a = n
		}
	}
	return time.Time{}
}

// Slot is the activation nearest to t: the slot a firing at t belongs to.
// Rounding to the nearest rather than the previous one keeps replicas
// whose clocks differ by less than half a period on the same slot.
func (s Schedule) Slot(t time.Time) time.Time {
	p, n := s.Prev(t), s.Next(t)
	if p.IsZero() || (!n.IsZero() && n.Sub(t) < t.Sub(p)) {
		return n
	}
	return p
}

// definition is the schedule as a gocron job definition and its first run.
func (s Schedule) definition(now time.Time) (gocron.JobDefinition, []gocron.JobOption) {
	if s.Every > 0 {
		return gocron.DurationJob(s.Every), []gocron.JobOption{gocron.WithStartAt(gocron.WithStartDateTime(s.Next(now)))}
	}
	return gocron.CronJob(s.Cron, s.secs), nil
}
