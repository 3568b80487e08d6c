package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/gridlake/gridlake/batch"
	"github.com/gridlake/gridlake/config"
	"github.com/gridlake/gridlake/internal/httpx"
	"github.com/gridlake/gridlake/internal/priority"
	"github.com/gridlake/gridlake/jobs"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/metrics"
	"github.com/gridlake/gridlake/objstore"
)

const jobsSynopsis = `Schedules, runs and inspects the batch jobs. Actions:

  scheduler        run a scheduler replica (run several: each slot of each
                   job runs once across all of them), with /v1/jobs,
                   /metrics and /healthz on --http-addr
  list             the jobs and their schedules
  status           each job's last run, last success and next slot
  history NAME     a job's runs, newest first (--limit)
  run NAME         run a job now and wait for it (progress on stderr)
  backfill --from DAY --to DAY
                   recompute the views of the local days DAY..DAY with the
                   current settings, e.g. after changing site.timezone

Jobs: compact, recompute, close (daily: local midnight + events.close_grace),
merge, retain, collect, backfill (manual). Schedules come from the jobs.*
settings (--jobs-compact-every 5m, --jobs-close-cron '...'). Runs claim their
slot in the lake (_jobs/) with a lease and a rising job number that fences
manifest commits, and keep their history there.

Exit status: 0 when the run or query succeeded, 1 when it failed (the
error says why), 2 for a usage error.

Example: gridlake jobs backfill --from 2026-11-01 --to 2026-11-07`

func runJobs(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		return actionHelp(e, args, fmt.Sprintf("Usage: gridlake jobs <scheduler|list|status|history|run|backfill> [flags]\n\n%s\n", jobsSynopsis))
	}
	action, rest := args[0], args[1:]
	var name string
	if action == "history" || action == "run" {
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			return fmt.Errorf("%w: gridlake jobs %s NAME (see gridlake jobs list)", errUsage, action)
		}
		name, rest = rest[0], rest[1:]
	}
	fs, loader := flags(e, "jobs "+action, jobsSynopsis)
	limit := fs.Int("limit", 20, "history: runs to show")
	asJSON := fs.Bool("json", false, "list, status, history: print JSON")
	from := fs.String("from", "", "backfill: first local day, YYYY-MM-DD")
	to := fs.String("to", "", "backfill: last local day, YYYY-MM-DD")
	cfg, err := load(fs, loader, e, rest)
	if err != nil {
		return err
	}
	if action == "backfill" {
		// Refuse a bad range before anything is opened or claimed.
		if *from == "" || *to == "" {
			return fmt.Errorf("%w: gridlake jobs backfill --from YYYY-MM-DD --to YYYY-MM-DD (local days of site.timezone)", errUsage)
		}
		if _, _, err := jobs.CheckBackfill(*from, *to, cfg.Jobs.BackfillMaxDays); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
	}
	log := newLogger(e.stderr, cfg.Log)
	var acc *access
	if action == "scheduler" {
		// Refuse a non-loopback --http-addr without users before anything
		// is opened.
		if acc, err = openAccess(&cfg, map[string]string{"http.addr": cfg.HTTP.Addr}); err != nil {
			return err
		}
	}
	if action == "scheduler" || action == "run" && name == jobs.JobCompact {
		if err := connectKafka(ctx, &cfg, cfg.BrokerAddrs()); err != nil {
			return err
		}
	}
	store, err := openBatchLake(ctx, &cfg)
	if err != nil {
		return err
	}
	reg := metrics.NewRegistry()
	sch, closeJobs, err := newScheduler(ctx, &cfg, cfg.BrokerAddrs(), store, reg, log)
	if err != nil {
		return err
	}
	defer closeJobs()

	switch action {
	case "list":
		if *asJSON {
			return printJSON(e.stdout, jobList(sch))
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "JOB\tSCHEDULE\tWHAT IT DOES")
		for _, j := range sch.Jobs() {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", j.Name, j.Schedule, j.Help)
		}
		return tw.Flush()
	case "status":
		st, err := sch.Status(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(e.stdout, st)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "JOB\tSCHEDULE\tNEXT\tLAST RUN\tSTATUS\tLAST OK")
		failing := false
		for _, s := range st {
			last, status, ok := "-", "-", "-"
			if s.Last != nil {
				last, status = fmt.Sprintf("#%d %s", s.Last.Number, s.Last.Started.Local().Format("01-02 15:04:05")), s.Last.Status
			}
			if s.LastOK != nil {
				ok = s.LastOK.Ended.Local().Format("01-02 15:04:05")
			}
			next := "-"
			if !s.Next.IsZero() {
				next = s.Next.Local().Format("01-02 15:04:05")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.Schedule, next, last, status, ok)
			failing = failing || s.Failing
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if failing {
			return errors.New("a job's newest run failed (gridlake jobs history NAME shows why)")
		}
		return nil
	case "history":
		runs, err := sch.History(ctx, name, *limit)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(e.stdout, runs)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RUN\tSLOT\tTRIGGER\tBY\tHOLDER\tSTARTED\tSECONDS\tSTATUS\tVERSION\tROWS\tNOTE")
		for _, r := range runs {
			note := r.Note
			if r.Error != "" {
				note = r.Error
			}
			by := r.By
			if by == "" {
				by = "-" // runs recorded before who-asked was kept
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%.1f\t%s\t%d\t%d\t%s\n", r.Number, r.Slot, r.Trigger, by, r.Holder,
				r.Started.Local().Format("01-02 15:04:05"), r.Seconds(time.Now()), r.Status, r.Version, r.Rows, note)
		}
		return tw.Flush()
	case "run", "backfill":
		in := jobs.Input{Progress: progressBar(e.stderr, name), By: cliUser()}
		trigger := jobs.TriggerManual
		if action == "backfill" {
			name, trigger, in.From, in.To = jobs.JobBackfill, jobs.TriggerBackfill, *from, *to
			in.Progress = progressBar(e.stderr, "backfill")
		}
		r, err := sch.Trigger(ctx, name, trigger, in)
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stderr)
		fmt.Fprintf(e.stdout, "%s run %d: %s in %.1fs", r.Job, r.Number, r.Status, r.Seconds(r.Ended))
		if r.Version > 0 {
			fmt.Fprintf(e.stdout, ", committed version %d (%d rows)", r.Version, r.Rows)
		}
		if r.Note != "" {
			fmt.Fprintf(e.stdout, ", %s", r.Note)
		}
		fmt.Fprintln(e.stdout)
		if r.Status != jobs.StatusOK {
			return fmt.Errorf("%s run %d %s after %d attempts: %s", r.Job, r.Number, r.Status, r.Attempts, r.Error)
		}
		return nil
	case "scheduler":
		if err := sch.Start(ctx); err != nil {
			return err
		}
		lc := newLifecycle(ctx)
		j := &processJobs{sch: sch, closeJobs: func() {}, started: true, log: log}
		defer j.stop()
		j.join(lc)
		mux := newMux(reg)
		health := httpx.NewHealth()
		health.Add("object_store", store.Ping)
		health.Register(mux)
		sch.Register(mux)
		hl, err := listenHTTP(e, cfg.HTTP, mux, acc, log)
		if err != nil {
			return err
		}
		defer hl.close()
		hl.join(lc)
		acc.join(lc, log)
		fmt.Fprintf(e.stdout, "gridlake jobs scheduler %s: %s/v1/jobs\n", sch.Holder(), hl.base)
		return lc.run()
	}
	return fmt.Errorf("%w: unknown jobs action %q (scheduler, list, status, history, run, backfill)", errUsage, action)
}

// newScheduler builds the standard batch jobs on the configured schedules.
// The recomputer keeps its DuckDB and cache under data_dir/jobs.
func newScheduler(ctx context.Context, cfg *config.Config, brokers []string, store *objstore.Store, reg *metrics.Registry, log *slog.Logger) (*jobs.Scheduler, func(), error) {
	loc, err := cfg.Location()
	if err != nil {
		return nil, nil, err
	}
	sched := jobs.Schedules{}
	for name, s := range map[string]config.Schedule{jobs.JobCompact: cfg.Jobs.Compact, jobs.JobRecompute: cfg.Jobs.Recompute,
		jobs.JobClose: cfg.Jobs.Close, jobs.JobMerge: cfg.Jobs.Merge, jobs.JobRetain: cfg.Jobs.Retain, jobs.JobCollect: cfg.Jobs.Collect} {
		if name == jobs.JobClose && s.Every == 0 && s.Cron == "" {
			sched[name], err = jobs.CloseSchedule(loc, cfg.Events.CloseGrace)
		} else {
			sched[name], err = jobs.ParseSchedule(s.Every, s.Cron)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("jobs.%s: %w", name, err)
		}
	}
	b, closeBatch, err := newBatch(ctx, cfg, brokers, store, filepath.Join(cfg.DataDir, "jobs"), 0, reg, log)
	if err != nil {
		return nil, nil, err
	}
	s, err := jobs.New(jobs.Options{Store: store, Lease: cfg.Jobs.Lease, Retries: cfg.Jobs.Retries, Backoff: cfg.Jobs.Backoff,
		Timeout: cfg.Jobs.Timeout, MaxPage: cfg.HTTP.MaxPage, BackfillMaxDays: cfg.Jobs.BackfillMaxDays,
		Log: log.With("layer", "jobs"), Metrics: reg}, jobs.BatchJobs(b, sched)...)
	if err != nil {
		closeBatch()
		return nil, nil, err
	}
	return s, closeBatch, nil
}

// openBatchLake prepares a batch process (gridlake batch, gridlake jobs):
// it lowers the process's CPU priority to batch.nice, so it yields to a
// speed layer on the same machine, and opens the lake it writes.
func openBatchLake(ctx context.Context, cfg *config.Config) (*objstore.Store, error) {
	if err := priority.Lower(cfg.Batch.Nice); err != nil {
		return nil, err
	}
	store, err := objstore.Open(ctx, storeOptions(cfg, cfg.S3Endpoint()))
	if err != nil {
		return nil, fmt.Errorf("%w\nbatch jobs write the lake: pass --s3-endpoint (or run gridlake up)", err)
	}
	return store, nil
}

// newBatch builds the batch layer on the configured site and limits, with
// its DuckDB and cache under work: what `gridlake jobs` schedules and
// `gridlake batch` runs by hand. maxRecords bounds a compaction step per
// partition (0: all); reg counts refusals (lake.BehindCutMetric).
func newBatch(ctx context.Context, cfg *config.Config, brokers []string, store *objstore.Store, work string, maxRecords int64, reg *metrics.Registry, log *slog.Logger) (jobs.Batch, func(), error) {
	loc, err := cfg.Location()
	if err != nil {
		return jobs.Batch{}, nil, err
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return jobs.Batch{}, nil, err
	}
	log = log.With("layer", "batch")
	rc, err := batch.OpenRecomputer(ctx, batch.RecomputeOptions{Store: store, Dir: work,
		Site: batch.Site{Location: loc, CloseGrace: cfg.Events.CloseGrace}, Threads: cfg.Batch.Threads, Log: log})
	if err != nil {
		return jobs.Batch{}, nil, err
	}
	dlq := kafkaio.NewWriter(brokers) // rejects go to the dead-letter topic, as from the speed layer
	return jobs.Batch{
		Compactor: batch.NewCompactor(batch.CompactOptions{Brokers: brokers, Store: store, Limits: cfg.Limits(), Views: rc,
			MaxRecords: maxRecords, Concurrency: cfg.Batch.Concurrency, MaxRecordsPerSecond: cfg.Batch.MaxRecordsPerSec,
			LetterValueBytes: cfg.Batch.DLQMaxValueBytes, MaxLetterBytes: int64(cfg.Batch.DLQMaxRunBytes), DeadLetters: kafkaio.NewDeadLetters(dlq), Metrics: reg, Log: log}),
		Recomputer: rc,
		Housekeeper: batch.NewHousekeeper(batch.HousekeepOptions{Store: store, Views: rc, MergeAfter: cfg.Batch.MergeAfter,
			Retention: cfg.Events.Retention, Grace: cfg.Batch.Grace, Log: log}),
	}, func() { dlq.Close(); rc.Close() }, nil
}

type jobInfo struct {
	Name     string `json:"name"`
	Schedule string `json:"schedule"`
	Help     string `json:"help"`
}

func jobList(s *jobs.Scheduler) []jobInfo {
	var out []jobInfo
	for _, j := range s.Jobs() {
		out = append(out, jobInfo{j.Name, j.Schedule.String(), j.Help})
	}
	return out
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// progressBar draws a one-line progress bar on w, at most a few times a
// second.
func progressBar(w io.Writer, what string) batch.Progress {
	var last time.Time
	return func(done, total int64) {
		if time.Since(last) < 200*time.Millisecond && done < total {
			return
		}
		last = time.Now()
		frac := float64(done) / float64(max(total, 1))
		n := int(frac * 30)
		fmt.Fprintf(w, "\r%s [%s%s] %3.0f%%  %d / %d   ", what, strings.Repeat("#", n), strings.Repeat(".", 30-n), 100*frac, done, total)
	}
}

// processJobs is the batch job scheduler of a serve or up process.
type processJobs struct {
	sch       *jobs.Scheduler
	closeJobs func()
	started   bool
	stopOnce  sync.Once
	log       *slog.Logger
}

// startJobs mounts /v1/jobs on mux and, with jobs.enabled, starts a
// scheduler replica in the process; join stops it with the process.
func startJobs(ctx context.Context, cfg *config.Config, brokers []string, store *objstore.Store, reg *metrics.Registry, mux *http.ServeMux, log *slog.Logger) (*processJobs, error) {
	sch, closeJobs, err := newScheduler(ctx, cfg, brokers, store, reg, log)
	if err != nil {
		return nil, err
	}
	sch.Register(mux)
	j := &processJobs{sch: sch, closeJobs: closeJobs, log: log}
	if !cfg.Jobs.Enabled {
		return j, nil
	}
	if err := sch.Start(ctx); err != nil {
		closeJobs()
		return nil, err
	}
	j.started = true
	return j, nil
}

// join adds the running scheduler to the process's lifecycle.
func (j *processJobs) join(lc *lifecycle) {
	if j.started {
		lc.addBackground(nil, j.stop)
	}
}

// stop stops the scheduler, waiting for the runs in progress.
func (j *processJobs) stop() {
	j.stopOnce.Do(func() {
		if !j.started {
			return
		}
		if err := j.sch.Stop(); err != nil {
			j.log.Warn("stop job scheduler", "err", err)
		}
	})
}

// close stops the scheduler if the process did not, and closes the batch
// layer it ran.
func (j *processJobs) close() {
	j.stop()
	j.closeJobs()
}

// cliUser is who a `gridlake jobs run` or `backfill` records as having
// asked: the operating-system user at the terminal ("cli:alice").
func cliUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	return fmt.Sprintf("cli:uid-%d", os.Getuid())
}
