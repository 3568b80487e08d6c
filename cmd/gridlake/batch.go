package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/gridlake/gridlake/batch"
	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/metrics"
)

const batchSynopsis = `Runs the batch layer by hand. Actions:

  run        compact until the cut reaches the newest speed generation
             boundary (or the end of each partition), recomputing the views of
             the hours touched, one committed manifest per step
  compact    one compaction step (with its view recompute)
  recompute  recompute the views whose raw files changed since they were built
  rebuild    recompute every view (after a change of logic), as a new version
  merge      merge the small raw files of hours older than batch.merge_after
  retain     drop raw files and views older than events.retention
  collect    delete replaced objects older than batch.grace, and orphans

Every step commits a new manifest under _manifests/ with a conditional put;
nothing is visible before. Raw files: raw/<topic>/dt=YYYY-MM-DD/hour=HH/.
Views: views/battery_{1m,1h,1d}/dt=.../.

Example: gridlake batch run --kafka-brokers kafka:9092 --s3-endpoint minio:9000`

func runBatch(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		return actionHelp(e, args, fmt.Sprintf("Usage: gridlake batch <run|compact|recompute|rebuild|merge|retain|collect> [flags]\n\n%s\n", batchSynopsis))
	}
	action := args[0]
	fs, loader := flags(e, "batch "+action, batchSynopsis)
	maxRecords := fs.Int64("max-records", 0, "records per partition per step (0: all)")
	cfg, err := load(fs, loader, e, args[1:])
	if err != nil {
		return err
	}
	log := newLogger(e.stderr, cfg.Log)
	store, err := openBatchLake(ctx, &cfg)
	if err != nil {
		return err
	}
	b, closeBatch, err := newBatch(ctx, &cfg, cfg.BrokerAddrs(), store, filepath.Join(cfg.DataDir, "batch"), *maxRecords, metrics.NewRegistry(), log)
	if err != nil {
		return err
	}
	defer closeBatch()
	progress := func(what string) batch.Progress { return progressBar(e.stderr, what) }
	report := func(m *lake.Manifest) {
		fmt.Fprintf(e.stdout, "\ncommitted version %d (%s): %d rows, %d invalid, %d dead letters, %d files, %d view partitions\n",
			m.Version, m.Run.Kind, m.Run.Rows, m.Run.Invalid, m.Run.DeadLetters, len(m.Files), len(m.Views))
	}
	switch action {
	case "run", "compact":
		brokers := cfg.BrokerAddrs()
		if err := connectKafka(ctx, &cfg, brokers); err != nil {
			return err
		}
		c := b.Compactor.WithProgress(progress("compact"))
		for {
			m, err := c.Run(ctx)
			if errors.Is(err, batch.ErrNothingToDo) {
				fmt.Fprintln(e.stdout, "nothing new to compact")
				return nil
			}
			if err != nil {
				return err
			}
			report(m)
			if action == "compact" {
				return nil
			}
		}
	case "recompute", "rebuild":
		m, err := b.Recomputer.Refresh(ctx, action == "rebuild", progress(action))
		if errors.Is(err, batch.ErrNothingToDo) {
			fmt.Fprintln(e.stdout, "views are up to date")
			return nil
		}
		if err != nil {
			return err
		}
		report(m)
		return nil
	case "merge", "retain", "collect":
		hk := b.Housekeeper
		var m *lake.Manifest
		switch action {
		case "merge":
			m, err = hk.Merge(ctx)
		case "retain":
			m, err = hk.Retain(ctx)
		default:
			n, err := hk.Collect(ctx)
			if err == nil {
				fmt.Fprintf(e.stdout, "deleted %d objects\n", n)
			}
			return err
		}
		if errors.Is(err, batch.ErrNothingToDo) {
			fmt.Fprintln(e.stdout, "nothing to do")
			return nil
		}
		if err != nil {
			return err
		}
		report(m)
		return nil
	}
	return fmt.Errorf("%w: unknown batch action %q (run, compact, recompute, rebuild, merge, retain, collect)", errUsage, action)
}
