package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/gridlake/gridlake/objstore"
)

// sweepDepth is how many of a job's newest runs the sweeper looks at for
// dead holders; runs it has seen end are not read again.
const sweepDepth = 100

// abandonment says why a run recorded as running will never end by itself,
// or "" while it still may: a newer run took its slot over, or its lease
// ran out (its holder was killed or froze). c and etag are the slot's claim
// as read.
func (s *Scheduler) abandonment(ctx context.Context, r *Run, now time.Time) (why string, c claim, etag string, err error) {
	c, etag, err = s.locks.readClaim(ctx, r.Job, r.Slot)
	if err != nil {
		return "", c, "", err
	}
	switch {
	case c.Token != r.Number:
		return fmt.Sprintf("abandoned by %s: run %d on %s took slot %s over", r.Holder, c.Token, c.Holder, r.Slot), c, etag, nil
	case now.Before(c.Expires):
		return "", c, etag, nil // alive, or just finished and about to record it
	case c.State == stateRunning:
		return fmt.Sprintf("abandoned: holder %s stopped renewing its lease (expired %s)", r.Holder, c.Expires.UTC().Format(time.RFC3339)), c, etag, nil
	default:
		return fmt.Sprintf("abandoned: holder %s stopped before recording how the run ended (slot %s)", r.Holder, c.State), c, etag, nil
	}
}

// sweepAbandoned marks the runs of job whose holders died: the run record
// and, where nobody will take the slot over (manual triggers, backfills,
// scheduled slots past the takeover window), the slot, so that neither
// says running forever. window names the slots the sweeper takes over.
func (s *Scheduler) sweepAbandoned(ctx context.Context, job string, now time.Time, window map[string]bool) error {
	newest, err := s.locks.newestToken(ctx, job)
	if err != nil {
		return err
	}
	s.mu.Lock()
	lo := max(newest-sweepDepth+1, s.swept[job]+1, 1)
	s.mu.Unlock()
	floor := newest // every run at or below it has ended
	for n := newest; n >= lo; n-- {
		r, etag, err := s.readRun(ctx, job, n)
		if objstore.IsNotFound(err) {
			floor = n - 1 // not recorded yet, or never: look again
			continue
		}
		if err != nil {
			return err
		}
		if r.Status != StatusRunning {
			continue
		}
		why, c, cetag, err := s.abandonment(ctx, &r, now)
		if err != nil {
			s.o.Log.Warn("sweep abandoned runs: read the slot of a running run", "job", job, "run", n, "err", err)
			floor = n - 1 // look again next time; older runs still get swept
			continue
		}
		if why == "" || (c.Token == r.Number && c.State == stateRunning && window[r.Slot]) {
			floor = n - 1 // alive, or the takeover will supersede it
			continue
		}
		if c.Token == r.Number && c.State == stateRunning {
			c.State = stateAbandoned
			if _, err := s.o.Store.PutIfMatch(ctx, slotKey(job, r.Slot), mustJSON(c), cetag); err != nil {
				if objstore.IsConditionNotMet(err) {
					floor = n - 1 // renewed or taken over meanwhile
					continue
				}
				return fmt.Errorf("mark %s slot %s abandoned: %w", job, r.Slot, err)
			}
		}
		if err := s.markAbandoned(ctx, &r, etag, why, now); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.swept[job] = max(s.swept[job], floor)
	s.mu.Unlock()
	return nil
}

// markAbandoned records a running run as abandoned, unless its holder
// recorded something meanwhile (its own word wins).
func (s *Scheduler) markAbandoned(ctx context.Context, r *Run, etag, why string, now time.Time) error {
	r.Status, r.Error, r.Ended = StatusAbandoned, why, now
	_, err := s.o.Store.PutIfMatch(ctx, runKey(r.Job, r.Number), mustJSON(r), etag)
	if err != nil && !objstore.IsConditionNotMet(err) {
		return fmt.Errorf("mark %s run %d abandoned: %w", r.Job, r.Number, err)
	}
	if err == nil {
		s.o.Log.Warn("run abandoned", "job", r.Job, "run", r.Number, "slot", r.Slot, "why", why)
		s.o.Metrics.Counter("gridlake_job_runs_total", "job runs by how they ended", "job", r.Job, "status", StatusAbandoned).Add(1)
	}
	return nil
}

// abandonPrevious marks the run a takeover replaced, at once.
func (s *Scheduler) abandonPrevious(ctx context.Context, lease *Lease) {
	if lease.Previous == 0 {
		return
	}
	r, etag, err := s.readRun(ctx, lease.Job(), lease.Previous)
	if err != nil || r.Status != StatusRunning {
		return // never recorded, or it recorded its own end
	}
	why := fmt.Sprintf("abandoned by %s: run %d on %s took slot %s over", r.Holder, lease.Token(), s.o.Holder, r.Slot)
	if err := s.markAbandoned(ctx, &r, etag, why, s.o.Now()); err != nil {
		s.o.Log.Warn("mark the replaced run abandoned", "job", r.Job, "run", r.Number, "err", err)
	}
}
