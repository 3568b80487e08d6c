package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/go-co-op/gocron/v2"

	"github.com/gridlake/gridlake/batch"
	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/metrics"
	"github.com/gridlake/gridlake/objstore"

	"github.com/gridlake/gridlake/internal/wait"
)

// Job is one entry of the registry.
type Job struct {
	Name     string
	Help     string
	Schedule Schedule
	Run      Func
}

// Func does a job's work. Commits must use ctx: it carries the run's fence
// (lake.WithFence), so a run that lost its lease cannot commit.
type Func func(ctx context.Context, in Input) (Output, error)

// BySchedule is Run.By of a run its schedule started (or a takeover of one).
const BySchedule = "scheduler"

// Input parameterises a run: a backfill's range of local days, and where
// long work reports progress.
type Input struct {
	From, To string
	// By is who asked for a manual run (Run.By).
	By       string
	Progress batch.Progress
}

// Output is what a run did; Manifest is the newest version it committed
// (nil when it committed nothing).
type Output struct {
	Manifest *lake.Manifest
	Rows     int64
	Bytes    int64
	Note     string
}

// Options configure a scheduler replica.
type Options struct {
	// Store holds claims, job numbers and the run history. The scheduler
	// never lists: runs are found by their numbers.
	Store objstore.Bucket
	// Holder names this replica in claims and history (default host:pid).
	Holder string
	// Lease is how long a claim lives without renewal; a run renews it
	// every third of it.
	Lease   time.Duration
	Retries int
	Backoff time.Duration
	Timeout time.Duration
	// MaxPage is the largest ?limit= of GET /v1/jobs/{name}/runs (config
	// http.max_page; 0: 10000): each run listed is one store read.
	MaxPage int
	// BackfillMaxDays bounds the local days of one backfill
	// (jobs.backfill_max_days, default DefaultBackfillMaxDays).
	BackfillMaxDays int
	Now             func() time.Time
	Log             *slog.Logger
	Metrics         *metrics.Registry
}

// Scheduler runs the registry's jobs on their schedules, once per slot
// across every replica sharing the store.
type Scheduler struct {
	o      Options
	jobs   []*Job
	byName map[string]*Job
	locks  *locks
	cron   gocron.Scheduler

	// serial runs one lake-writing job at a time in a process: runs of
	// different jobs would only race for the next manifest version.
	serial sync.Mutex
	// claimed hands the lease gocron's Lock took to the job function that
	// gocron calls next (each job runs in singleton mode).
	mu      sync.Mutex
	claimed map[string]*Lease
	// swept is, per job, the run number at and below which the sweeper
	// saw every run end.
	swept map[string]int64
	wg    sync.WaitGroup
}

// New returns a scheduler of jobs; Start starts its clock.
func New(o Options, jobs ...*Job) (*Scheduler, error) {
	if o.Store == nil {
		return nil, errors.New("jobs: no store")
	}
	if o.Holder == "" {
		host, _ := os.Hostname()
		o.Holder = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	if o.Lease <= 0 {
		o.Lease = 30 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = time.Hour
	}
	if o.MaxPage <= 0 {
		o.MaxPage = 10_000
	}
	if o.BackfillMaxDays <= 0 {
		o.BackfillMaxDays = DefaultBackfillMaxDays
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = metrics.NewRegistry()
	}
	s := &Scheduler{o: o, jobs: jobs, byName: map[string]*Job{}, claimed: map[string]*Lease{}, swept: map[string]int64{},
		locks: &locks{store: o.Store, holder: o.Holder, ttl: o.Lease, now: o.Now}}
	for _, j := range jobs {
		if _, dup := s.byName[j.Name]; dup {
			return nil, fmt.Errorf("jobs: %q registered twice", j.Name)
		}
		s.byName[j.Name] = j
	}
	return s, nil
}

// Jobs lists the registry in order.
func (s *Scheduler) Jobs() []*Job { return s.jobs }

// Holder names this replica.
func (s *Scheduler) Holder() string { return s.o.Holder }

func (s *Scheduler) unknown(name string) error {
	names := make([]string, len(s.jobs))
	for i, j := range s.jobs {
		names[i] = j.Name
	}
	return fmt.Errorf("no job %q (jobs: %v)", name, names)
}

// Start schedules every job with a schedule on gocron, with this
// replica's slot claims as gocron's distributed locker, and a sweeper that
// finishes the slots of replicas that died mid-run.
func (s *Scheduler) Start(ctx context.Context) error {
	cs, err := gocron.NewScheduler(gocron.WithStopTimeout(5 * time.Second))
	if err != nil {
		return fmt.Errorf("start gocron: %w", err)
	}
	s.cron = cs
	now := s.o.Now()
	for _, j := range s.jobs {
		if j.Schedule.Manual() {
			continue
		}
		def, opts := j.Schedule.definition(now)
		opts = append(opts, gocron.WithName(j.Name), gocron.WithContext(ctx),
			gocron.WithSingletonMode(gocron.LimitModeReschedule),
			gocron.WithDistributedJobLocker(locker{s}))
		if _, err := cs.NewJob(def, gocron.NewTask(s.scheduled, j.Name), opts...); err != nil {
			cs.Shutdown()
			return fmt.Errorf("schedule job %s (%s): %w", j.Name, j.Schedule, err)
		}
	}
	sweep := max(s.o.Lease/2, time.Second)
	if _, err := cs.NewJob(gocron.DurationJob(sweep), gocron.NewTask(s.sweep), gocron.WithName("sweep"),
		gocron.WithContext(ctx), gocron.WithSingletonMode(gocron.LimitModeReschedule)); err != nil {
		cs.Shutdown()
		return fmt.Errorf("schedule sweeper: %w", err)
	}
	cs.Start()
	s.o.Log.Info("job scheduler started", "holder", s.o.Holder, "jobs", len(s.jobs))
	return nil
}

// Stop stops scheduling and waits for running jobs.
func (s *Scheduler) Stop() error {
	var err error
	if s.cron != nil {
		err = s.cron.Shutdown()
	}
	s.wg.Wait()
	return err
}

// locker is gocron's distributed locker: Lock claims the slot that the
// firing belongs to, so of N replicas firing for one slot exactly one runs.
type locker struct{ s *Scheduler }

func (l locker) Lock(ctx context.Context, name string) (gocron.Lock, error) {
	s := l.s
	j := s.byName[name]
	if j == nil {
		return nil, s.unknown(name)
	}
	lease, err := s.locks.claim(ctx, name, slotName(j.Schedule.Slot(s.o.Now()), false), false)
	if err != nil {
		if !errors.Is(err, ErrSlotDone) && !errors.Is(err, ErrSlotHeld) {
			s.o.Log.Error("claim job slot", "job", name, "err", err)
		}
		return nil, err
	}
	s.mu.Lock()
	s.claimed[name] = lease
	s.mu.Unlock()
	return lease, nil
}

// scheduled is the gocron task of every job: it runs the slot Lock took.
func (s *Scheduler) scheduled(ctx context.Context, name string) {
	s.mu.Lock()
	lease := s.claimed[name]
	delete(s.claimed, name)
	s.mu.Unlock()
	if lease == nil {
		return
	}
	trigger := TriggerSchedule
	if lease.Takeover {
		trigger = TriggerTakeover
	}
	s.execute(ctx, s.byName[name], lease, trigger, Input{By: BySchedule})
}

// sweep finishes abandoned slots: a claim still running whose lease ran out
// means its holder died or stalled; this replica takes the slot over with
// a newer job number and runs it. Then it marks the runs of dead holders
// abandoned, manual triggers and backfills included, which nobody takes
// over.
func (s *Scheduler) sweep(ctx context.Context) {
	now := s.o.Now()
	for _, j := range s.jobs {
		window := map[string]bool{} // the slots a takeover finishes
		if !j.Schedule.Manual() {
			last := j.Schedule.Prev(now)
			for _, slot := range []time.Time{last, j.Schedule.Prev(last.Add(-time.Nanosecond))} {
				window[slotName(slot, false)] = true
				s.takeOver(ctx, j, slotName(slot, false))
			}
		}
		if err := s.sweepAbandoned(ctx, j.Name, now, window); err != nil && ctx.Err() == nil {
			s.o.Log.Warn("sweep abandoned runs", "job", j.Name, "err", err)
		}
	}
}

// takeOver runs a scheduled slot whose holder stopped renewing its lease.
func (s *Scheduler) takeOver(ctx context.Context, j *Job, slot string) {
	lease, err := s.locks.claim(ctx, j.Name, slot, true)
	if err != nil {
		if !errors.Is(err, ErrSlotDone) && !errors.Is(err, ErrSlotHeld) && ctx.Err() == nil {
			s.o.Log.Warn("sweep job slot", "job", j.Name, "err", err)
		}
		return
	}
	s.o.Log.Warn("taking over a slot whose holder stopped renewing its lease", "job", j.Name, "slot", lease.Slot(), "run", lease.Token())
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.execute(ctx, j, lease, TriggerTakeover, Input{By: BySchedule})
	}()
}

// Trigger runs a job now, outside its schedule, in its own slot, and
// returns the finished run. The run is fenced like a scheduled one.
func (s *Scheduler) Trigger(ctx context.Context, name string, trigger Trigger, in Input) (*Run, error) {
	lease, err := s.claimManual(ctx, name, in)
	if err != nil {
		return nil, err
	}
	return s.execute(ctx, s.byName[name], lease, trigger, in), nil
}

// TriggerAsync starts a job now and returns its job number at once; the
// run goes on in the background (its record says how it went).
func (s *Scheduler) TriggerAsync(ctx context.Context, name string, trigger Trigger, in Input) (int64, error) {
	lease, err := s.claimManual(ctx, name, in)
	if err != nil {
		return 0, err
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.execute(context.WithoutCancel(ctx), s.byName[name], lease, trigger, in)
	}()
	return lease.Token(), nil
}

// claimManual claims a trigger's own slot, once its input is known good:
// a run that cannot work must not take a slot and fail its retries first.
func (s *Scheduler) claimManual(ctx context.Context, name string, in Input) (*Lease, error) {
	if s.byName[name] == nil {
		return nil, s.unknown(name)
	}
	if err := s.checkInput(name, in); err != nil {
		return nil, err
	}
	return s.locks.claim(ctx, name, slotName(s.o.Now(), true), false)
}

// execute runs a claimed slot: it records the run, keeps the lease alive,
// retries failures with backoff, and records and marks how it ended.
func (s *Scheduler) execute(ctx context.Context, j *Job, lease *Lease, trigger Trigger, in Input) *Run {
	log := s.o.Log.With("job", j.Name, "run", lease.Token(), "slot", lease.Slot())
	s.abandonPrevious(ctx, lease)
	run := &Run{Job: j.Name, Number: lease.Token(), Slot: lease.Slot(), Trigger: trigger, Holder: s.o.Holder,
		By: in.By, Started: s.o.Now(), Status: StatusRunning, From: in.From, To: in.To}
	if err := s.record(ctx, run); err != nil {
		log.Error("job history", "err", err)
	}

	lctx, lost := context.WithCancelCause(ctx)
	defer lost(nil)
	rctx, cancel := context.WithTimeoutCause(lctx, s.o.Timeout, fmt.Errorf("run exceeded jobs.timeout %s", s.o.Timeout))
	defer cancel()
	renewed := s.keepAlive(rctx, lease, log, lost)
	rctx = lake.WithFence(rctx, lease)

	s.serial.Lock()
	var out Output
	var err error
	for attempt := 0; ; attempt++ {
		run.Attempts = attempt + 1
		out, err = j.Run(rctx, in)
		// A partition behind the cut needs an operator: retrying cannot help.
		var behind *lake.BehindCutError
		if err == nil || attempt >= s.o.Retries || rctx.Err() != nil || errors.Is(err, lake.ErrFenced) || errors.As(err, &behind) {
			break
		}
		pause := s.o.Backoff << attempt
		log.Warn("job attempt failed; retrying", "attempt", attempt+1, "in", pause, "err", err)
		if wait.Sleep(rctx, pause) != nil {
			break
		}
	}
	s.serial.Unlock()
	cancel()
	<-renewed

	run.Ended = s.o.Now()
	if out.Manifest != nil {
		run.Version, run.Cut = out.Manifest.Version, out.Manifest.Cut
	}
	run.Rows, run.Bytes, run.Note = out.Rows, out.Bytes, out.Note
	state := stateDone
	switch {
	case err == nil:
		run.Status = StatusOK
	case errors.Is(err, lake.ErrFenced) || errors.Is(context.Cause(rctx), ErrLeaseLost):
		run.Status, run.Error = StatusFenced, errors.Join(err, context.Cause(rctx)).Error()
	default:
		run.Status, run.Error, state = StatusFailed, err.Error(), stateFailed
		if c := context.Cause(rctx); c != nil && !errors.Is(c, context.Canceled) {
			run.Error = c.Error()
		}
	}
	fctx := context.WithoutCancel(ctx)
	if run.Status != StatusFenced {
		if ferr := lease.finish(fctx, state); ferr != nil {
			log.Warn("mark slot finished", "err", ferr)
		}
	}
	if err := s.record(fctx, run); err != nil {
		log.Error("job history", "err", err)
	}
	s.o.Metrics.Counter("gridlake_job_runs_total", "job runs by how they ended", "job", j.Name, "status", run.Status).Add(1)
	if run.Status == StatusOK {
		log.Info("job finished", "version", run.Version, "rows", run.Rows, "seconds", run.Seconds(run.Ended), "note", run.Note)
	} else {
		log.Error("job failed", "status", run.Status, "attempts", run.Attempts, "err", run.Error)
	}
	return run
}

// keepAlive renews the lease every third of its life until ctx ends; when
// the lease is lost the run is cancelled with ErrLeaseLost as the cause.
func (s *Scheduler) keepAlive(ctx context.Context, lease *Lease, log *slog.Logger, cancel context.CancelCauseFunc) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(s.o.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			err := lease.renew(ctx)
			if errors.Is(err, ErrLeaseLost) {
				log.Error("lease lost; cancelling the run", "err", err)
				cancel(err)
				return
			}
			if err != nil && ctx.Err() == nil {
				log.Warn("renew lease", "err", err)
			}
		}
	}()
	return done
}
