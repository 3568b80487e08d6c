package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/gridlake/gridlake/config"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/simulate"
)

const simulateSynopsis = `Sends simulated device traffic to Kafka: --simulate-batteries packs reading
--simulate-rate times a second, and a hotel of --simulate-rooms rooms whose
guests check in and out, come and go and leave devices on. The same
--simulate-seed sends the same messages. Faults: --simulate-duplicate,
--simulate-loss, --simulate-reorder, --simulate-late (with
--simulate-late-delay) and --simulate-malformed. --simulate-record FILE keeps
an NDJSON copy of exactly what was sent.

Without --kafka-brokers it sends to the embedded broker of "gridlake up".

Example: gridlake simulate --simulate-batteries 30000 --simulate-duplicate 0.01`

func runSimulate(ctx context.Context, e *env, args []string) error {
	fs, loader := flags(e, "simulate", simulateSynopsis)
	cfg, err := load(fs, loader, e, args)
	if err != nil {
		return err
	}
	brokers := cfg.BrokerAddrs()
	if err := connectKafka(ctx, &cfg, brokers); err != nil {
		return err
	}
	w := kafkaio.NewWriter(brokers)
	defer w.Close()
	err = simulateTo(ctx, &cfg, w, e.stderr)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// simulateTo runs the configured simulation into sink, reporting progress
// to progress. It is shared by "simulate" and "up --simulate".
func simulateTo(ctx context.Context, cfg *config.Config, sink simulate.Sink, progress io.Writer) error {
	start, err := cfg.SimStart(time.Now())
	if err != nil {
		return err
	}
	s := cfg.Sim
	sim := simulate.New(simulate.Options{
		Batteries: s.Batteries, Rooms: s.Rooms, Rate: s.Rate, Seed: s.Seed, Start: start,
		Faults: simulate.Faults{Duplicate: s.Duplicate, Loss: s.Loss, Reorder: s.Reorder,
			Late: s.Late, LateDelay: s.LateDelay, Malformed: s.Malformed},
	})
	ro := simulate.RunOptions{Duration: s.Duration, Fast: s.Fast, Progress: progress, ProgressEvery: 5 * time.Second}
	if s.Record != "" {
		f, err := os.Create(s.Record)
		if err != nil {
			return fmt.Errorf("record file: %w", err)
		}
		defer f.Close()
		ro.Record = f
	}
	fmt.Fprintf(progress, "simulate: %d batteries at %g/s, %d rooms, seed %d, from %s\n",
		s.Batteries, s.Rate, s.Rooms, s.Seed, start.UTC().Format(time.RFC3339))
	if err := sim.Run(ctx, sink, ro); err != nil {
		return err
	}
	st := sim.Stats()
	fmt.Fprintf(progress, "simulate: done, %d messages sent (%d battery, %d room)\n", st.Sent, st.Batteries, st.Rooms)
	return nil
}
