package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gridlake/gridlake/alerts"
	"github.com/gridlake/gridlake/config"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/speed"
)

// alertOptions are the speed layer's alert settings: nil when alerts are
// off. A rules file that does not parse stops the start, loudly.
func alertOptions(cfg *config.Config, w kafkaio.Writer) (*speed.AlertOptions, error) {
	if !cfg.Alerts.Enabled {
		return nil, nil
	}
	rules := alerts.Defaults()
	if cfg.Alerts.RulesFile != "" {
		var err error
		if rules, err = alerts.ReadFile(cfg.Alerts.RulesFile); err != nil {
			return nil, err
		}
	}
	return &speed.AlertOptions{Rules: rules, Lateness: cfg.Alerts.Lateness, Writer: w, SnapshotEvery: cfg.Alerts.SnapshotEvery}, nil
}

// watchRules reloads the rules file on SIGHUP and when its modification
// time changes, and hands the rules to apply; a file that does not parse
// is logged and the rules in use stay. The speed layer and the serving
// process each watch with their own apply.
func watchRules(ctx context.Context, path string, log *slog.Logger, apply func([]alerts.Rule)) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	mtime := func() time.Time {
		if fi, err := os.Stat(path); err == nil {
			return fi.ModTime()
		}
		return time.Time{}
	}
	seen := mtime()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
		case <-tick.C:
			if m := mtime(); m.Equal(seen) {
				continue
			}
		}
		seen = mtime()
		rules, err := alerts.ReadFile(path)
		if err != nil {
			log.Error("alert rules not reloaded: the rules in use stay", "err", err)
			continue
		}
		apply(rules)
		log.Info("alert rules reloaded", "file", path, "rules", len(rules))
	}
}
