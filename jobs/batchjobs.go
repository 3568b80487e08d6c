package jobs

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/gridlake/gridlake/batch"
	"github.com/gridlake/gridlake/lake"
)

// Batch is the batch layer the standard jobs drive.
type Batch struct {
	Compactor   *batch.Compactor
	Recomputer  *batch.Recomputer
	Housekeeper *batch.Housekeeper
}

// Schedules are the standard jobs' schedules, by job name.
type Schedules map[string]Schedule

// Standard job names.
const (
	JobCompact   = "compact"
	JobRecompute = "recompute"
	JobClose     = "close"
	JobMerge     = "merge"
	JobRetain    = "retain"
	JobCollect   = "collect"
	JobBackfill  = "backfill"
)

// BatchJobs is the standard registry: compaction, recompute, the daily
// close, small-file merge, retention, deletion of replaced files, and the
// manual backfill.
func BatchJobs(b Batch, sched Schedules) []*Job {
	return []*Job{
		{Name: JobCompact, Schedule: sched[JobCompact], Run: b.compact,
			Help: "move Kafka records below a new cut into raw Parquet and recompute the views they touch, until caught up"},
		{Name: JobRecompute, Schedule: sched[JobRecompute], Run: b.recompute,
			Help: "recompute the views whose raw files changed, and close the local days that are due"},
		{Name: JobClose, Schedule: sched[JobClose], Run: b.recompute,
			Help: "close yesterday's room energy reports: local midnight plus events.close_grace"},
		{Name: JobMerge, Schedule: sched[JobMerge], Run: b.housekeep(b.Housekeeper.Merge),
			Help: "merge the small raw files of hours older than batch.merge_after"},
		{Name: JobRetain, Schedule: sched[JobRetain], Run: b.housekeep(b.Housekeeper.Retain),
			Help: "drop raw files and views older than events.retention"},
		{Name: JobCollect, Schedule: sched[JobCollect], Run: b.collect,
			Help: "delete replaced objects once batch.grace has passed"},
		{Name: JobBackfill, Run: b.backfill,
			Help: "recompute the views of the local days --from..--to with the current settings (manual)"},
	}
}

func (b Batch) compact(ctx context.Context, in Input) (Output, error) {
	c := b.Compactor.WithProgress(in.Progress)
	var out Output
	for {
		m, err := c.Run(ctx)
		if errors.Is(err, batch.ErrNothingToDo) {
			if out.Manifest == nil {
				out.Note = "nothing new to compact"
			}
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out.Manifest = m
		out.Rows += m.Run.Rows
		out.Bytes += m.Run.Bytes
	}
}

func (b Batch) recompute(ctx context.Context, in Input) (Output, error) {
	m, err := b.Recomputer.Refresh(ctx, false, in.Progress)
	return manifestOutput(m, err, "views are up to date")
}

func (b Batch) housekeep(step func(context.Context) (*lake.Manifest, error)) Func {
	return func(ctx context.Context, _ Input) (Output, error) {
		m, err := step(ctx)
		return manifestOutput(m, err, "nothing to do")
	}
}

func (b Batch) collect(ctx context.Context, _ Input) (Output, error) {
	n, err := b.Housekeeper.Collect(ctx)
	return Output{Note: fmt.Sprintf("deleted %d objects", n)}, err
}

func (b Batch) backfill(ctx context.Context, in Input) (Output, error) {
	// The scheduler checked the range against its bound before claiming;
	// this only parses it again.
	from, to, err := CheckBackfill(in.From, in.To, math.MaxInt)
	if err != nil {
		return Output{}, err
	}
	m, err := b.Recomputer.Backfill(ctx, from, to, in.Progress)
	return manifestOutput(m, err, "no views in the range")
}

func manifestOutput(m *lake.Manifest, err error, idle string) (Output, error) {
	if errors.Is(err, batch.ErrNothingToDo) {
		return Output{Note: idle}, nil
	}
	if err != nil {
		return Output{}, err
	}
	return Output{Manifest: m, Rows: m.Run.Rows, Bytes: m.Run.Bytes}, nil
}

// CloseSchedule is the daily close's default schedule: local midnight of
// the site's time zone plus the close grace.
func CloseSchedule(loc *time.Location, grace time.Duration) (Schedule, error) {
	at := time.Duration(grace % (24 * time.Hour))
	expr := fmt.Sprintf("CRON_TZ=%s %d %d %d * * *", loc, int(at/time.Second)%60, int(at/time.Minute)%60, int(at/time.Hour))
	return ParseSchedule(0, expr)
}
