package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/objstore"
)

// Run statuses.
const (
	StatusRunning = "running"
	StatusOK      = "ok"
	StatusFailed  = "failed"
	// StatusFenced: the run lost its lease (it stalled, a newer run took
	// over) and its commit was refused.
	StatusFenced = "fenced"
	// StatusAbandoned: the run's holder died (or stalled past its lease)
	// before recording how it ended; a sweeper marked it.
	StatusAbandoned = "abandoned"
)

// Trigger is what started a run; it is stored in the history as is.
type Trigger string

// The triggers of a run.
const (
	TriggerSchedule Trigger = "schedule" // its schedule's slot came due
	TriggerTakeover Trigger = "takeover" // a replica finished a slot whose holder died or stalled
	TriggerManual   Trigger = "manual"   // asked for over HTTP or the command line
	TriggerBackfill Trigger = "backfill" // a backfill of a range of days
)

// Run is one run of a job, as kept in the history: _jobs/<job>/runs/.
type Run struct {
	Job     string  `json:"job"`
	Number  int64   `json:"number"` // the job number, also its fencing token
	Slot    string  `json:"slot"`
	Trigger Trigger `json:"trigger"`
	Holder  string  `json:"holder"`
	// By is who asked for the run: "scheduler" for its schedule, else the
	// principal of the trigger ("token:ci", "user:alice", "cli:bob").
	By       string    `json:"by,omitempty"`
	Started  time.Time `json:"started"`
	Ended    time.Time `json:"ended,omitzero"`
	Status   string    `json:"status"`
	Attempts int       `json:"attempts"`
	Error    string    `json:"error,omitempty"`
	Note     string    `json:"note,omitempty"`
	// What the run committed: the manifest version, its cut and the rows
	// and bytes it wrote.
	Version int64    `json:"version,omitempty"`
	Cut     lake.Cut `json:"cut,omitempty"`
	Rows    int64    `json:"rows,omitempty"`
	Bytes   int64    `json:"bytes,omitempty"`
	From    string   `json:"from,omitempty"`
	To      string   `json:"to,omitempty"`
}

// Seconds is how long the run took (so far).
func (r *Run) Seconds(now time.Time) float64 {
	end := r.Ended
	if end.IsZero() {
		end = now
	}
	return end.Sub(r.Started).Seconds()
}

func runKey(job string, number int64) string {
	return fmt.Sprintf("%sruns/%012d.json", jobPrefix(job), number)
}

// readRun reads one run record and its ETag.
func (s *Scheduler) readRun(ctx context.Context, job string, number int64) (Run, string, error) {
	var r Run
	data, info, err := s.o.Store.Get(ctx, runKey(job, number))
	if err != nil {
		return r, "", fmt.Errorf("read %s run %d: %w", job, number, err)
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return r, "", fmt.Errorf("%s run %d record is corrupt: %w", job, number, err)
	}
	return r, info.ETag, nil
}

func (s *Scheduler) record(ctx context.Context, r *Run) error {
	if _, err := s.o.Store.Put(ctx, runKey(r.Job, r.Number), mustJSON(r)); err != nil {
		return fmt.Errorf("record %s run %d: %w", r.Job, r.Number, err)
	}
	return nil
}

// History returns a job's newest runs, newest first (limit <= 0: all). It
// walks down from the newest job number instead of listing, so it costs the
// same however long the history grows.
func (s *Scheduler) History(ctx context.Context, job string, limit int) ([]Run, error) {
	if _, ok := s.byName[job]; !ok {
		return nil, s.unknown(job)
	}
	newest, err := s.locks.newestToken(ctx, job)
	if err != nil {
		return nil, err
	}
	var runs []Run
	now := s.o.Now()
	for n := newest; n > 0 && (limit <= 0 || len(runs) < limit); n-- {
		r, _, err := s.readRun(ctx, job, n)
		if objstore.IsNotFound(err) {
			continue // a holder that died before recording its run
		}
		if err != nil {
			return nil, err
		}
		// A dead holder's run reads as abandoned at once, also where no
		// scheduler is running to sweep it.
		if r.Status == StatusRunning {
			if why, _, _, err := s.abandonment(ctx, &r, now); err == nil && why != "" {
				r.Status, r.Error = StatusAbandoned, why
			}
		}
		runs = append(runs, r)
	}
	return runs, nil
}

// Status is a job's schedule and its latest runs.
type Status struct {
	Name     string    `json:"name"`
	Help     string    `json:"help"`
	Schedule string    `json:"schedule"`
	Next     time.Time `json:"next,omitzero"`
	Last     *Run      `json:"last,omitempty"`
	LastOK   *Run      `json:"last_ok,omitempty"`
	// Failing is true when the newest finished run failed.
	Failing bool `json:"failing"`
}

// Status returns every job's status, in registry order.
func (s *Scheduler) Status(ctx context.Context) ([]Status, error) {
	out := make([]Status, 0, len(s.jobs))
	now := s.o.Now()
	for _, j := range s.jobs {
		st := Status{Name: j.Name, Help: j.Help, Schedule: j.Schedule.String(), Next: j.Schedule.Next(now)}
		runs, err := s.History(ctx, j.Name, 20)
		if err != nil {
			return nil, err
		}
		for i := range runs {
			r := &runs[i]
			if st.Last == nil {
				st.Last = r
			}
			if r.Status == StatusOK {
				st.LastOK = r
				break
			}
		}
		for _, r := range runs {
			if r.Status != StatusRunning {
				st.Failing = r.Status != StatusOK
				break
			}
		}
		out = append(out, st)
	}
	return out, nil
}
