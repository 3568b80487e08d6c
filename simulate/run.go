package simulate

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/gridlake/gridlake/internal/wait"
)

// RunOptions say how long and how fast to run.
type RunOptions struct {
	// Duration of simulated time; 0 runs until ctx ends.
	Duration time.Duration
	// Fast sends ticks back to back; otherwise ticks are paced to the wall
	// clock, one tick per 1/Rate seconds.
	Fast bool
	// Progress, when set, gets a status line every ProgressEvery.
	Progress      io.Writer
	ProgressEvery time.Duration
	// Record, when set, gets every message sent as one NDJSON line.
	Record io.Writer
	// Now and Sleep are the wall clock, injectable for tests.
	Now   func() time.Time
	Sleep func(context.Context, time.Duration) error
}

// Recorded is one NDJSON line of a recording: a message exactly as sent.
type Recorded struct {
	Topic    string `json:"topic"`
	Key      string `json:"key"`
	Value    string `json:"value"`
	RecordMS int64  `json:"record_ms"`
}

// Run steps the simulation and writes every tick's messages to sink, until
// the duration is covered or ctx ends. Held-back messages are flushed at the
// end of a finite run, so every message that was not lost is sent.
func (s *Sim) Run(ctx context.Context, sink Sink, o RunOptions) error {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = wait.Sleep
	}
	if o.ProgressEvery == 0 {
		o.ProgressEvery = 2 * time.Second
	}
	var rec *bufio.Writer
	if o.Record != nil {
		rec = bufio.NewWriterSize(o.Record, 1<<20)
		defer rec.Flush()
	}
	wallStart := o.Now()
	lastReport, lastSent := wallStart, int64(0)
	ticks := int64(-1)
	if o.Duration > 0 {
		ticks = o.Duration.Milliseconds() / s.stepMS
	}
	var batch []kafka.Message
	for t := int64(0); ticks < 0 || t < ticks; t++ {
		if err := ctx.Err(); err != nil {
			break
		}
		if !o.Fast {
			due := wallStart.Add(time.Duration(t*s.stepMS) * time.Millisecond)
			if wait := due.Sub(o.Now()); wait > 0 {
				if err := o.Sleep(ctx, wait); err != nil {
					break
				}
			}
		}
		batch = s.Step(batch[:0])
		if err := s.write(ctx, sink, rec, batch); err != nil {
			return err
		}
		if o.Progress != nil && o.Now().Sub(lastReport) >= o.ProgressEvery {
			now := o.Now()
			rate := float64(s.stats.Sent-lastSent) / now.Sub(lastReport).Seconds()
			st := s.stats
			fmt.Fprintf(o.Progress, "simulate: %d sent (%.0f/s), simulated %s; duplicates %d, lost %d, late %d, malformed %d, reordered %d\n",
				st.Sent, rate, time.Duration(st.SimulatedMS)*time.Millisecond, st.Duplicates, st.Lost, st.Late, st.Bad, st.Reordered)
			lastReport, lastSent = now, st.Sent
		}
	}
	if ticks >= 0 {
		if err := s.write(ctx, sink, rec, s.Flush(batch[:0])); err != nil {
			return err
		}
	}
	return nil
}

func (s *Sim) write(ctx context.Context, sink Sink, rec *bufio.Writer, batch []kafka.Message) error {
	if len(batch) == 0 {
		return nil
	}
	if err := sink.WriteMessages(ctx, batch...); err != nil {
		return fmt.Errorf("send %d simulated messages: %w", len(batch), err)
	}
	if rec != nil {
		enc := json.NewEncoder(rec)
		for _, m := range batch {
			if err := enc.Encode(Recorded{Topic: m.Topic, Key: string(m.Key), Value: string(m.Value), RecordMS: m.Time.UnixMilli()}); err != nil {
				return fmt.Errorf("record messages: %w", err)
			}
		}
	}
	return nil
}

// ReadRecording parses an NDJSON recording.
func ReadRecording(r io.Reader) ([]Recorded, error) {
	var out []Recorded
	dec := json.NewDecoder(r)
	for {
		var m Recorded
		if err := dec.Decode(&m); err == io.EOF {
			return out, nil
		} else if err != nil {
			return out, fmt.Errorf("read recording line %d: %w", len(out)+1, err)
		}
		out = append(out, m)
	}
}
