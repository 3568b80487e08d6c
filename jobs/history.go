package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/gridlake/gridlake/lake"
)

// Run statuses.
const (
	StatusRunning = "running"
	StatusOK      = "ok"
	StatusFailed  = "failed"
	// StatusFenced: the run lost its lease (it stalled, a newer run took
	// over) and its commit was refused.
	StatusFenced = "fenced"
)

// Run is one run of a job, as kept in the history: _jobs/<job>/runs/.
type Run struct {
	Job      string    `json:"job"`
	Number   int64     `json:"number"` // the job number, also its fencing token
	Slot     string    `json:"slot"`
	Trigger  string    `json:"trigger"` // schedule, takeover, manual, backfill
	Holder   string    `json:"holder"`
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

func (s *Scheduler) record(ctx context.Context, r *Run) error {
	if _, err := s.o.Store.Put(ctx, runKey(r.Job, r.Number), mustJSON(r)); err != nil {
		return fmt.Errorf("record %s run %d: %w", r.Job, r.Number, err)
	}
	return nil
}

// History returns a job's newest runs, newest first (limit <= 0: all).
func (s *Scheduler) History(ctx context.Context, job string, limit int) ([]Run, error) {
	if _, ok := s.byName[job]; !ok {
		return nil, s.unknown(job)
	}
	objs, err := s.o.Store.List(ctx, jobPrefix(job)+"runs/")
	if err != nil {
		return nil, fmt.Errorf("list %s runs: %w", job, err)
	}
	sort.Slice(objs, func(i, j int) bool { return objs[i].Key > objs[j].Key })
	if limit > 0 && len(objs) > limit {
		objs = objs[:limit]
	}
	runs := make([]Run, 0, len(objs))
	for _, o := range objs {
		if !strings.HasSuffix(o.Key, ".json") {
			continue
		}
		data, _, err := s.o.Store.Get(ctx, o.Key)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", o.Key, err)
		}
		var r Run
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, fmt.Errorf("run record %s is corrupt: %w", o.Key, err)
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
