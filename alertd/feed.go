package alertd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/gridlake/gridlake/alerts"
	"github.com/gridlake/gridlake/internal/wait"
	"github.com/gridlake/gridlake/kafkaio"
)

// Feed reads every partition of gridlake.alerts from its beginning into a
// Book. It joins no consumer group on purpose: a group would split the
// partitions among the serving replicas and each would know only some
// alerts, and a group per process would need to start from the beginning
// anyway to rebuild the firing set after a restart. Reading all from the
// beginning gives every replica the whole stream; the topic's retention
// (kafka.retention) bounds the replay.
type Feed struct {
	Brokers []string
	Book    *Book
	Log     *slog.Logger
	// MaxBytes bounds one message; a bigger one is skipped with a log.
	MaxBytes int

	caughtUp atomic.Bool
	ready    chan struct{}
	once     sync.Once

	// pos is each partition's next offset to read, for Sync.
	posMu sync.Mutex
	pos   []atomic.Int64
}

// CaughtUp reports whether the feed has read every transition that was on
// the topic when it started: before that, the book may lack firing alerts.
func (f *Feed) CaughtUp() bool { return f.caughtUp.Load() }

// Ready is closed once the feed caught up.
func (f *Feed) Ready() <-chan struct{} { return f.readyChan() }

func (f *Feed) readyChan() chan struct{} {
	f.once.Do(func() { f.ready = make(chan struct{}) })
	return f.ready
}

// Run reads until ctx ends.
func (f *Feed) Run(ctx context.Context) error {
	ready := f.readyChan()
	if f.Log == nil {
		f.Log = slog.New(slog.DiscardHandler)
	}
	if f.MaxBytes <= 0 {
		f.MaxBytes = 1 << 20
	}
	// A broker that is down at start delays the feed; it never stops the
	// process (DESIGN: a consumer never dies on its input).
	var n int
	var ends []int64
	for attempt := 0; ; attempt++ {
		var err error
		if n, ends, err = f.ends(ctx); err == nil {
			break
		}
		f.Log.Warn("alert feed: gridlake.alerts not readable yet; retrying", "err", err)
		if wait.Sleep(ctx, backoff(attempt)) != nil {
			return nil
		}
	}
	pos := make([]atomic.Int64, n)
	f.posMu.Lock()
	f.pos = pos
	f.posMu.Unlock()
	var pending atomic.Int64
	for p := range n {
		if ends[p] > 0 {
			pending.Add(1)
		}
	}
	done := func() {
		if pending.Load() == 0 && f.caughtUp.CompareAndSwap(false, true) {
			close(ready)
		}
	}
	done()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for p := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[p] = f.read(ctx, p, ends[p], &pos[p], func() { pending.Add(-1); done() })
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return errors.Join(errs...)
}

// ends are the topic's partition count and each partition's end offset.
func (f *Feed) ends(ctx context.Context) (int, []int64, error) {
	n, err := kafkaio.Partitions(ctx, f.Brokers, alerts.Topic)
	if err != nil {
		return 0, nil, fmt.Errorf("alert feed: %w", err)
	}
	ends := make([]int64, n)
	for p := range n {
		if ends[p], err = lastOffset(ctx, f.Brokers, p); err != nil {
			return 0, nil, fmt.Errorf("alert feed: %w", err)
		}
	}
	return n, ends, nil
}

// backoff is the wait before retry attempt (0, 1, ...): 100 ms doubling
// to 5 s.
func backoff(attempt int) time.Duration {
	return min(100*time.Millisecond<<min(attempt, 6), 5*time.Second)
}

func lastOffset(ctx context.Context, brokers []string, p int) (int64, error) {
	conn, err := kafkaio.DialLeader(ctx, brokers, alerts.Topic, p)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	first, last, err := conn.ReadOffsets()
	if err != nil {
		return 0, fmt.Errorf("offsets of %s/%d: %w", alerts.Topic, p, err)
	}
	if last <= first {
		return 0, nil
	}
	return last, nil
}

// Sync waits until the feed has read every transition on the topic when
// it was called: what another process wrote before is then in the book.
func (f *Feed) Sync(ctx context.Context) error {
	n, ends, err := f.ends(ctx)
	if err != nil {
		return err
	}
	for {
		f.posMu.Lock()
		pos := f.pos
		f.posMu.Unlock()
		behind := pos == nil
		// Partitions added after the feed started are not read: they
		// cannot be waited for.
		for p := 0; p < min(n, len(pos)); p++ {
			behind = behind || pos[p].Load() < ends[p]
		}
		if !behind {
			return nil
		}
		if err := wait.Sleep(ctx, 50*time.Millisecond); err != nil {
			return fmt.Errorf("read %s up to its end: %w", alerts.Topic, err)
		}
	}
}

// read applies partition p from its first offset, keeping its position
// in pos; caught is called once the offset end (the end when the feed
// started) has been read.
func (f *Feed) read(ctx context.Context, p int, end int64, pos *atomic.Int64, caught func()) error {
	reached := end == 0
	next := kafka.FirstOffset
	for attempt := 0; ; {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: f.Brokers, Topic: alerts.Topic, Partition: p,
			MinBytes: 1, MaxBytes: 4 << 20, MaxWait: 500 * time.Millisecond, StartOffset: kafka.FirstOffset})
		if next >= 0 {
			if err := r.SetOffset(next); err != nil {
				r.Close()
				return fmt.Errorf("read %s/%d from %d: %w", alerts.Topic, p, next, err)
			}
		}
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				r.Close()
				if ctx.Err() != nil {
					return nil
				}
				// The broker is down or moved: read on from the next
				// offset once it answers again.
				f.Log.Warn("alert feed: read failed; retrying", "partition", p, "offset", next, "err", err)
				if wait.Sleep(ctx, backoff(attempt)) != nil {
					return nil
				}
				attempt++
				break
			}
			attempt = 0
			next = m.Offset + 1
			if t, ok := f.decode(m); ok {
				f.Book.Apply(t)
			}
			pos.Store(next)
			if !reached && m.Offset+1 >= end {
				reached = true
				caught()
			}
		}
	}
}

// decode reads one transition; a message that is not one is logged and
// skipped (the topic is ours, but a bad copy must not stop the feed).
func (f *Feed) decode(m kafka.Message) (alerts.Transition, bool) {
	var t alerts.Transition
	if len(m.Value) > f.MaxBytes {
		f.Log.Warn("alert transition skipped: too large", "partition", m.Partition, "offset", m.Offset, "bytes", len(m.Value))
		return t, false
	}
	if err := json.Unmarshal(m.Value, &t); err != nil || t.Rule == "" || (t.State != alerts.Firing && t.State != alerts.Resolved) {
		f.Log.Warn("alert transition skipped: not a transition", "partition", m.Partition, "offset", m.Offset, "err", err)
		return t, false
	}
	return t, true
}

// Encode is a transition as it goes on the topic: JSON keyed by its ID.
func Encode(t alerts.Transition) (kafka.Message, error) {
	b, err := json.Marshal(t)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("encode transition %s: %w", t.ID(), err)
	}
	return kafka.Message{Topic: alerts.Topic, Key: []byte(t.ID()), Value: b}, nil
}
