package speed

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/gridlake/gridlake/alerts"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/schemas"
)

// chunk is how many messages are decoded and applied under one lock.
const chunk = 1024

var (
	errRebuild     = errors.New("cut fell inside a generation: rebuilding the partition from the cut")
	errReloadRules = errors.New("alert rules reloaded: rebuilding the partition's evaluator from its state")
)

// work consumes one partition until the group generation ends. It must not
// return earlier: kafka-go ends the generation when any of its goroutines
// returns.
func (l *Layer) work(ctx context.Context, k partKey, committed int64) {
	for ctx.Err() == nil {
		err := l.consume(ctx, k, committed)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errReloadRules) {
			continue
		}
		if errors.Is(err, errRebuild) {
			l.rebuilds.Add(1)
			l.opts.Log.Info("rebuilding partition", "topic", k.topic, "partition", k.id)
			continue
		}
		var behind *lake.BehindCutError
		if errors.As(err, &behind) {
			l.opts.Log.Error("speed layer stopped: a topic partition ends below the lake's cut", "topic", k.topic, "partition", k.id,
				"cut", behind.Cut, "newest", behind.Newest, "version", behind.Version)
			l.opts.Metrics.Counter(lake.BehindCutMetric, "refusals to go on because a Kafka partition ends below the lake's cut (topic re-created)",
				"layer", "speed", "topic", k.topic, "partition", fmt.Sprint(k.id)).Add(1)
			l.fail(err)
			<-ctx.Done() // returning early would end the group generation
			return
		}
		l.opts.Log.Warn("partition consumer", "topic", k.topic, "partition", k.id, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (l *Layer) dial(ctx context.Context, k partKey) (*kafka.Conn, error) {
	return kafkaio.DialLeader(ctx, l.opts.Brokers, k.topic, k.id)
}

// decoded is one message after validation, kept between the decode (no
// lock) and the apply (under the partition lock).
type decoded struct {
	ev     schemas.Event
	rej    schemas.Rejection
	offset int64
	record int64 // record timestamp, Unix ms
	// slot is the battery's alert-evaluator hint, set by the apply of a
	// battery reading to the speed state (nil: the evaluator looks it up).
	slot *int32
}

func (l *Layer) consume(ctx context.Context, k partKey, committed int64) error {
	conn, err := l.dial(ctx, k)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()

	l.mu.RLock()
	p := l.parts[k]
	l.mu.RUnlock()
	if p == nil || p.rebuild {
		if p, err = l.newPart(ctx, conn, k, committed); err != nil {
			return err
		}
	}
	p.mu.RLock()
	from := p.next
	p.mu.RUnlock()
	p.amu.Lock()
	from = l.refreshAlerts(p, from)
	retired := append([]alerts.Transition(nil), p.outbox...) // alerts of removed rules
	clear(p.outbox)
	p.outbox = p.outbox[:0]
	p.amu.Unlock()
	if len(retired) > 0 {
		l.sendAlerts(ctx, p, retired)
	}
	if _, err := conn.Seek(from, kafka.SeekAbsolute); err != nil {
		if errors.Is(err, kafka.OffsetOutOfRange) {
			return p.outOfRange()
		}
		return fmt.Errorf("seek %s/%d to %d: %w", k.topic, k.id, from, err)
	}
	dec := schemas.NewDecoder(l.opts.Limits)
	msgs := make([]kafka.Message, 0, chunk)
	evs := make([]decoded, 0, chunk)
	for ctx.Err() == nil {
		p.mu.RLock()
		rebuild := p.rebuild
		p.mu.RUnlock()
		if rebuild {
			return errRebuild
		}
		if l.alerting != nil && p.alertsGen != l.alerting.gen.Load() {
			return errReloadRules
		}
		batch := conn.ReadBatchWith(kafka.ReadBatchConfig{MinBytes: 1, MaxBytes: 4 << 20, MaxWait: 250 * time.Millisecond})
		hwm := batch.HighWaterMark()
		// A fetch can hold far more than its MaxBytes (brokers return whole
		// record batches), so apply it in chunks: memory stays bounded and
		// the partition lock is taken once per chunk, not per event.
		for more := true; more; {
			msgs = msgs[:0]
			for len(msgs) < chunk {
				m, err := batch.ReadMessage()
				if err != nil {
					more = false
					break
				}
				msgs = append(msgs, m)
			}
			if len(msgs) == 0 {
				break
			}
			evs = l.decode(dec, k.topic, msgs, evs[:0])
			letters, out := l.apply(p, evs)
			l.sendLetters(ctx, p, msgs, evs, letters)
			if len(out) > 0 {
				l.sendAlerts(ctx, p, out)
			}
		}
		berr := batch.Close()
		p.mu.Lock()
		p.hwm = max(p.hwm, hwm)
		p.lag.Store(max(0, p.hwm-p.next))
		l.maybeRotate(p)
		p.mu.Unlock()
		if errors.Is(berr, kafka.OffsetOutOfRange) {
			return p.outOfRange()
		}
		if berr != nil && !kafkaio.IsTimeout(berr) {
			return fmt.Errorf("fetch %s/%d: %w", k.topic, k.id, berr)
		}
	}
	return nil
}

// outOfRange marks p for a rebuild: the partition no longer holds p.next,
// because retention deleted it or the topic was re-created. The rebuild
// from the cut tells which (newPart refuses a partition that ends below
// the cut).
func (p *part) outOfRange() error {
	p.mu.Lock()
	p.rebuild = true
	p.mu.Unlock()
	return errRebuild
}

// newPart builds the state of a newly assigned (or rebuilt) partition and
// registers it: battery partitions start at the newest cut, replaying an
// overlap before it only to seed de-duplication; room partitions start where
// the first open day's events can begin.
func (l *Layer) newPart(ctx context.Context, conn *kafka.Conn, k partKey, committed int64) (*part, error) {
	first, last, err := conn.ReadOffsets()
	if err != nil {
		return nil, fmt.Errorf("offsets of %s/%d: %w", k.topic, k.id, err)
	}
	m := l.currentManifest()
	// Replaying from a cut the partition does not reach would skip its
	// records below the cut for good.
	if err := lake.CheckBehind("speed", m, k.topic, k.id, last); err != nil {
		return nil, err
	}
	p := &part{key: k, hwm: last, replayTo: last, dlqFrom: max(committed, 0), rotated: l.opts.Now()}
	switch k.topic {
	case schemas.TopicBattery:
		cut := max(first, 0)
		if m != nil {
			cut = m.Cut.Offset(k.topic, k.id)
			if cut < first {
				l.opts.Log.Error("records between the batch cut and the first retained offset are lost: raise kafka.retention above the batch interval",
					"topic", k.topic, "partition", k.id, "cut", cut, "first", first)
				cut = first
			}
		}
		seed := cut
		if m != nil && !m.CutTime.IsZero() && cut > first {
			if off, err := conn.ReadOffset(m.CutTime.Add(-l.opts.DedupHorizon)); err == nil && off < cut {
				seed = max(off, first)
			}
		}
		p.bat, p.next, p.seedUntil = newBatteryPart(cut), seed, cut
		p.bat.seq = &l.seq
		if err := l.adoptBoundaries(ctx, p, cut); err != nil {
			l.opts.Log.Warn("read published generation boundaries", "topic", k.topic, "partition", k.id, "err", err)
		}
	default:
		openFrom := l.openFrom(m)
		start := first
		if m != nil && m.ClosedThrough != "" {
			from := time.UnixMilli(openFrom).Add(-l.opts.Limits.MaxAhead - time.Minute)
			if off, err := conn.ReadOffset(from); err == nil && off > first {
				start = off
			}
		}
		p.room, p.next, p.seedUntil = newRoomPart(openFrom), start, start
	}
	if l.alerting != nil {
		l.mu.RLock()
		old := l.parts[k]
		l.mu.RUnlock()
		if old != nil && old.alerts != nil { // a rebuild: the evaluator goes on where it was
			old.amu.Lock()
			p.alerts, p.alertsGen, p.outbox, p.emitted, p.written = old.alerts, old.alertsGen, old.outbox, old.emitted, old.written
			old.amu.Unlock()
		} else {
			p.alerts, _ = l.newEvaluator(k, p.next)
			p.alertsGen, p.written = l.alerting.gen.Load(), new(atomic.Int64)
		}
	}
	p.lag.Store(max(0, p.hwm-p.next))
	l.epoch.Add(1)
	l.mu.Lock()
	l.parts[k] = p
	l.mu.Unlock()
	l.seq.Add(1)
	l.opts.Log.Info("partition state started", "topic", k.topic, "partition", k.id, "from", p.next, "seed_until", p.seedUntil, "high_watermark", last)
	return p, nil
}

// adoptBoundaries makes a new battery state honour the boundaries an
// earlier process published above the cut: a batch run may read them
// before this process publishes its own, and a cut on one of them must not
// force a rebuild. With none published yet, it publishes the cut at once,
// so batch aligns to this process instead of cutting at the end of the
// partition.
func (l *Layer) adoptBoundaries(ctx context.Context, p *part, cut int64) error {
	if l.opts.Store == nil {
		return nil
	}
	b, err := lake.ReadBoundaries(ctx, l.opts.Store, l.opts.Group, p.key.topic, p.key.id)
	if err != nil {
		return err
	}
	if len(b.Offsets) == 0 {
		return lake.PublishBoundaries(ctx, l.opts.Store, l.opts.Group, lake.Boundaries{Topic: p.key.topic, Partition: p.key.id,
			Offsets: []int64{cut}, Updated: l.opts.Now()})
	}
	for _, o := range b.Offsets {
		if o > cut {
			p.pending = append(p.pending, o)
		}
	}
	sort.Slice(p.pending, func(i, j int) bool { return p.pending[i] < p.pending[j] })
	return nil
}

func (l *Layer) decode(dec *schemas.Decoder, topic string, msgs []kafka.Message, out []decoded) []decoded {
	out = out[:len(msgs)] // capacity is chunk; no per-message copy of decoded
	for i := range msgs {
		m, d := &msgs[i], &out[i]
		d.offset, d.record, d.slot = m.Offset, m.Time.UnixMilli(), nil
		d.rej = dec.Decode(topic, m.Key, m.Value, m.Time, &d.ev)
	}
	return out
}

// apply folds a fetch into the partition state under one lock and returns
// the indexes of messages to dead-letter and the alert transitions the
// fetch produced.
func (l *Layer) apply(p *part, evs []decoded) ([]int, []alerts.Transition) {
	var nEvents, nInvalid, nDups, nLate, nSeeded uint64
	var letters []int
	var out []alerts.Transition
	rejects := map[schemas.Reason]uint64{}
	p.mu.Lock()
	if p.bat != nil {
		p.bat.stamp = 0 // a fetch of its own
	}
	for i := range evs {
		d := &evs[i]
		if d.offset < p.next {
			continue // read for the alert evaluator only
		}
		if len(p.pending) > 0 && p.pending[0] <= d.offset {
			p.honour(d.offset)
		}
		seedOnly := d.offset < p.seedUntil
		if !d.rej.OK() {
			if !seedOnly {
				nInvalid++
				rejects[d.rej.Reason]++
				if d.offset >= p.dlqFrom {
					letters = append(letters, i)
				}
			}
			continue
		}
		switch {
		case p.bat != nil:
			res, bt := p.bat.apply(&d.ev.Battery, d.record, seedOnly)
			d.slot = &bt.alertSlot
			switch res {
			case counted:
				nEvents++
				if d.record-d.ev.Battery.TS > 60_000 {
					nLate++
				}
			case duplicate:
				if !seedOnly {
					nDups++
				}
			case seeded:
				nSeeded++
			}
		case p.room != nil:
			dup, late := p.room.apply(&d.ev, d.offset)
			switch {
			case dup:
				nDups++
			default:
				nEvents++
				if late {
					nLate++
				}
			}
		}
	}
	p.next = max(p.next, evs[len(evs)-1].offset+1)
	p.lag.Store(max(0, p.hwm-p.next))
	if len(p.pending) > 0 {
		p.honour(p.next) // a boundary right after this fetch, before the next record arrives
	}
	l.maybeRotate(p)
	p.mu.Unlock()
	if nEvents > 0 {
		l.seq.Add(1)
	}
	l.events.Add(nEvents)
	l.invalid.Add(nInvalid)
	l.dups.Add(nDups)
	l.late.Add(nLate)
	l.seededN.Add(nSeeded)
	for r, n := range rejects {
		l.rejects[r].Add(n)
	}
	if p.alerts != nil {
		p.amu.Lock()
		l.observeAlerts(p, evs)
		if len(p.outbox) > 0 {
			out = append(out, p.outbox...)
			clear(p.outbox)
			p.outbox = p.outbox[:0]
		}
		p.amu.Unlock()
	}
	return letters, out
}

// refreshAlerts rebuilds the partition's evaluator from its own state when
// the rules changed, and returns the offset to read from: the evaluator
// may need records before the speed state's next. Called with p.amu held.
func (l *Layer) refreshAlerts(p *part, next int64) int64 {
	if p.alerts == nil {
		return next
	}
	a := l.alerting
	if gen := a.gen.Load(); p.alertsGen != gen {
		rules := *a.rules.Load()
		ev := alerts.NewEvaluator(rules, a.opts.Lateness.Milliseconds(), l.opts.Limits.MaxAhead.Milliseconds(), p.key.topic == schemas.TopicBattery)
		if p.key.topic == schemas.TopicBattery {
			a.fleetMu.Lock()
			if a.fleet != nil {
				wm, ok := p.alerts.Watermark()
				n := len(p.outbox)
				p.outbox = a.fleet.Merge(p.key.id, wm, ok, p.alerts.TakeFleet(), p.outbox)
				p.emitted += int64(len(p.outbox) - n)
			}
			a.fleetMu.Unlock()
		}
		snap := p.alerts.Snapshot()
		if wm, ok := p.alerts.Watermark(); ok {
			retired := alerts.Retired(p.alerts.Rules(), rules, snap, wm)
			p.outbox = append(p.outbox, retired...)
			p.emitted += int64(len(retired))
		}
		if err := ev.Restore(snap); err != nil {
			l.opts.Log.Error("rebuild alert evaluator", "err", err)
		} else {
			p.alerts = ev
		}
		p.alertsGen = gen
	}
	return min(next, p.alerts.ResumeAt())
}

// maybeRotate starts a new battery generation at the next offset once the
// active one is GenEvery old, also while the partition is idle, so a batch
// cut can always fall close to the end. Called with p.mu held.
func (l *Layer) maybeRotate(p *part) {
	if p.bat != nil && p.next > p.seedUntil && l.opts.Now().Sub(p.rotated) >= l.opts.GenEvery {
		p.bat.rotate(p.next)
		p.rotated = l.opts.Now()
	}
}

func (l *Layer) sendLetters(ctx context.Context, p *part, msgs []kafka.Message, evs []decoded, idx []int) {
	if l.opts.DeadLetters == nil || len(idx) == 0 {
		return
	}
	letters := make([]kafka.Message, 0, len(idx))
	for _, i := range idx {
		letters = append(letters, kafkaio.Letter(msgs[i], evs[i].rej))
	}
	if err := l.opts.DeadLetters.Send(ctx, letters...); err != nil && ctx.Err() == nil {
		l.opts.Log.Error("dead-letter queue", "err", err, "messages", len(letters))
	}
}
