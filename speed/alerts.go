package speed

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/gridlake/gridlake/alerts"
	"github.com/gridlake/gridlake/internal/wait"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/metrics"
	"github.com/gridlake/gridlake/objstore"
	"github.com/gridlake/gridlake/schemas"
)

// AlertOptions turn on the evaluation of the event-time alert rules
// (DESIGN §11) in the speed layer.
type AlertOptions struct {
	Rules    []alerts.Rule
	Lateness time.Duration
	// Writer receives every transition on alerts.Topic, keyed by ID.
	Writer kafkaio.Writer
	// Queue bounds the transitions waiting for the writer; a full queue
	// holds the partition that produced them back (never drops).
	Queue int
	// SnapshotEvery is how often the evaluators' state goes to the store.
	SnapshotEvery time.Duration
}

// alerting is the speed layer's alert machinery: rules, the fleet share
// over every battery partition, the transition queue and its writer.
type alerting struct {
	opts  AlertOptions
	rules atomic.Pointer[[]alerts.Rule]
	gen   atomic.Int64 // bumped by SetRules

	fleetMu sync.Mutex
	fleet   *alerts.Fleet // nil unless this process owns every battery partition
	fleetOf int           // battery partitions of the topic when fleet was made

	queue chan outMsg

	// loaded is the stored state read at the last assignment, for the
	// partitions it brings.
	loadedMu sync.Mutex
	loaded   *alertState

	// saved is the object as this process last wrote it, and its ETag: while
	// nobody else wrote since, the next save replaces it without reading it.
	saved     *alertState
	savedETag string

	late, transitions, written *metrics.Counter
}

type outMsg struct {
	msg     kafka.Message
	written *atomic.Int64 // the producing partition's count of written transitions
}

// alertState is the stored object: each partition's evaluator state and
// the fleet's, keyed "topic/partition".
type alertState struct {
	Parts map[string]alerts.PartState `json:"parts"`
	Fleet *alerts.FleetState          `json:"fleet,omitempty"`
	Saved time.Time                   `json:"saved"`
}

func partName(k partKey) string { return fmt.Sprintf("%s/%d", k.topic, k.id) }

func newAlerting(o AlertOptions, m *metrics.Registry) *alerting {
	if o.Queue <= 0 {
		o.Queue = 10_000
	}
	if o.SnapshotEvery <= 0 {
		o.SnapshotEvery = 30 * time.Second
	}
	if o.Lateness <= 0 {
		o.Lateness = time.Minute
	}
	a := &alerting{opts: o, queue: make(chan outMsg, o.Queue),
		late:        m.Counter("gridlake_alerts_late_events_total", "events not on time for alerts (ts below their partition's watermark): left out of alert evaluation"),
		transitions: m.Counter("gridlake_alerts_evaluated_transitions_total", "alert transitions produced by the speed layer's event-time rules"),
		written:     m.Counter("gridlake_alerts_written_total", "alert transitions written to "+alerts.Topic)}
	rules := o.Rules
	a.rules.Store(&rules)
	return a
}

// SetRules replaces the alert rules (a reloaded rules file). Each
// partition's evaluator is rebuilt from its own snapshot with the new
// rules, so alerts of rules kept by name go on under the same identity.
func (l *Layer) SetRules(rules []alerts.Rule) {
	if l.alerting == nil {
		return
	}
	a := l.alerting
	a.rules.Store(&rules)
	a.gen.Add(1)
	a.fleetMu.Lock()
	if a.fleet != nil {
		f := alerts.NewFleet(rules, a.fleetOf)
		f.Restore(a.fleet.Snapshot(nil))
		a.fleet = f
	}
	a.fleetMu.Unlock()
}

// newEvaluator builds the evaluator of a new partition state, from the
// stored state when there is one for it, else starting at from.
func (l *Layer) newEvaluator(k partKey, from int64) (*alerts.Evaluator, int64) {
	a := l.alerting
	ev := alerts.NewEvaluator(*a.rules.Load(), a.opts.Lateness.Milliseconds(), l.opts.Limits.MaxAhead.Milliseconds(), k.topic == schemas.TopicBattery)
	a.loadedMu.Lock()
	st, ok := alertState{}, false
	if a.loaded != nil {
		var ps alerts.PartState
		if ps, ok = a.loaded.Parts[partName(k)]; ok {
			st.Parts = map[string]alerts.PartState{partName(k): ps}
		}
	}
	a.loadedMu.Unlock()
	if ok {
		if err := ev.Restore(st.Parts[partName(k)]); err == nil {
			l.opts.Log.Info("alert state restored", "topic", k.topic, "partition", k.id, "next", ev.Next(), "refill_from", ev.ResumeAt())
			return ev, ev.ResumeAt()
		}
	}
	ev.SetNext(from)
	return ev, from
}

// loadAlertState reads the stored state at an assignment and sets up the
// fleet share when this process owns every battery partition: with
// several speed processes none does, and the fleet share is left to the
// ingest-staleness pipeline rule (see the README).
func (l *Layer) loadAlertState(ctx context.Context, owned map[partKey]int64) {
	a := l.alerting
	var st *alertState
	if l.opts.Store != nil {
		data, _, err := l.opts.Store.Get(ctx, lake.AlertStateKey(l.opts.Group))
		switch {
		case objstore.IsNotFound(err):
		case err != nil:
			l.opts.Log.Warn("read alert state: alerts restart from the speed layer's start offsets", "err", err)
		default:
			st = &alertState{}
			if err := json.Unmarshal(data, st); err != nil {
				l.opts.Log.Warn("alert state is corrupt: alerts restart from the speed layer's start offsets", "err", err)
				st = nil
			}
		}
	}
	a.loadedMu.Lock()
	a.loaded = st
	a.loadedMu.Unlock()

	n, err := kafkaio.Partitions(ctx, l.opts.Brokers, schemas.TopicBattery)
	mine := 0
	for k := range owned {
		if k.topic == schemas.TopicBattery {
			mine++
		}
	}
	a.fleetMu.Lock()
	defer a.fleetMu.Unlock()
	if err != nil || mine != n {
		if a.fleet != nil || mine > 0 {
			l.opts.Log.Info("fleet-share alerts off: this process owns only some battery partitions", "owned", mine, "partitions", n)
		}
		a.fleet = nil
		return
	}
	if a.fleet != nil && a.fleetOf == n {
		return // kept: the same partitions, their evaluators go on
	}
	a.fleet, a.fleetOf = alerts.NewFleet(*a.rules.Load(), n), n
	if st == nil || st.Fleet == nil {
		return
	}
	// The fleet's state is exact only with the evaluators restored at the
	// offsets it was saved with.
	for p := 0; p < n; p++ {
		ps, ok := st.Parts[partName(partKey{schemas.TopicBattery, p})]
		if st.Fleet.Offsets[p] != ps.Next || !ok {
			l.opts.Log.Warn("stored fleet alert state does not match the partitions' states: fleet share restarts", "partition", p)
			return
		}
	}
	a.fleet.Restore(*st.Fleet)
}

// observeAlerts hands a chunk's records to the partition's evaluator and
// collects its transitions; called with p.amu held.
func (l *Layer) observeAlerts(p *part, evs []decoded) {
	ev := p.alerts
	late := ev.Late()
	for i := range evs {
		d := &evs[i]
		if d.rej.OK() {
			ev.ObserveAt(d.offset, d.record, &d.ev, d.slot)
		} else {
			ev.Observe(d.offset, d.record, nil)
		}
	}
	l.alerting.late.Add(ev.Late() - late)
	n := len(p.outbox)
	p.outbox = ev.Drain(p.outbox)
	if p.key.topic == schemas.TopicBattery {
		a := l.alerting
		d := ev.TakeFleet()
		wm, ok := ev.Watermark()
		a.fleetMu.Lock()
		if a.fleet != nil {
			p.outbox = a.fleet.Merge(p.key.id, wm, ok, d, p.outbox)
		}
		a.fleetMu.Unlock()
	}
	p.emitted += int64(len(p.outbox) - n)
}

// sendAlerts queues the partition's transitions for the writer, waiting
// while the queue is full; called without p.mu or p.amu.
func (l *Layer) sendAlerts(ctx context.Context, p *part, out []alerts.Transition) {
	for _, t := range out {
		v, err := json.Marshal(t)
		if err != nil {
			continue
		}
		m := outMsg{kafka.Message{Topic: alerts.Topic, Key: []byte(t.ID()), Value: v}, p.written}
		select {
		case l.alerting.queue <- m:
		case <-ctx.Done():
			return
		}
	}
	l.alerting.transitions.Add(uint64(len(out)))
}

// writeAlerts writes queued transitions to Kafka in order, retrying until
// each is written.
func (l *Layer) writeAlerts(ctx context.Context) {
	a := l.alerting
	batch := make([]outMsg, 0, 512)
	msgs := make([]kafka.Message, 0, 512)
	for {
		batch, msgs = batch[:0], msgs[:0]
		select {
		case <-ctx.Done():
			return
		case m := <-a.queue:
			batch = append(batch, m)
		}
	more:
		for len(batch) < cap(batch) {
			select {
			case m := <-a.queue:
				batch = append(batch, m)
			default:
				break more
			}
		}
		for _, m := range batch {
			msgs = append(msgs, m.msg)
		}
		for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
			err := a.opts.Writer.WriteMessages(ctx, msgs...)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			l.opts.Log.Warn("write alert transitions", "err", err, "count", len(msgs))
			if wait.Sleep(ctx, backoff) != nil {
				return
			}
		}
		for _, m := range batch {
			m.written.Add(1)
		}
		a.written.Add(uint64(len(batch)))
	}
}

// saveAlertsLoop stores the evaluators' state every SnapshotEvery.
func (l *Layer) saveAlertsLoop(ctx context.Context) {
	l.every(ctx, l.alerting.opts.SnapshotEvery, func() {
		if err := l.SaveAlertState(ctx); err != nil && ctx.Err() == nil {
			l.opts.Log.Warn("save alert state", "err", err)
		}
	})
}

// SaveAlertState stores the state of every owned partition's evaluator
// (and the fleet's) at one instant, once every transition produced before
// that instant is written to Kafka: a restart from it then neither loses
// a transition nor produces one under another identity. Transitions after
// it are produced again on a restart, the same (ID, State); consumers
// de-duplicate them.
func (l *Layer) SaveAlertState(ctx context.Context) error {
	a := l.alerting
	if a == nil || l.opts.Store == nil {
		return nil
	}
	l.mu.RLock()
	parts := make([]*part, 0, len(l.parts))
	for _, p := range l.parts {
		parts = append(parts, p)
	}
	l.mu.RUnlock()
	sort.Slice(parts, func(i, j int) bool { return partName(parts[i].key) < partName(parts[j].key) })
	st := alertState{Parts: map[string]alerts.PartState{}, Saved: l.opts.Now()}
	need := make([]int64, len(parts))
	for _, p := range parts {
		p.amu.Lock()
	}
	offs := map[int]int64{}
	for i, p := range parts {
		if p.alerts != nil && p.written != nil {
			st.Parts[partName(p.key)] = p.alerts.Snapshot()
			need[i] = p.emitted
			if p.key.topic == schemas.TopicBattery {
				offs[p.key.id] = p.alerts.Next()
			}
		}
	}
	a.fleetMu.Lock()
	if a.fleet != nil {
		fs := a.fleet.Snapshot(offs)
		st.Fleet = &fs
	}
	a.fleetMu.Unlock()
	for _, p := range parts {
		p.amu.Unlock()
	}
	for i, p := range parts {
		for p.written != nil && p.written.Load() < need[i] {
			if err := wait.Sleep(ctx, 20*time.Millisecond); err != nil {
				return err
			}
		}
	}
	return l.mergeAlertState(ctx, st)
}

// mergeAlertState replaces the stored entries of the partitions in st,
// keeping those other processes own, with a conditional put. While the
// object is as this process last wrote it, it is not read again.
func (l *Layer) mergeAlertState(ctx context.Context, st alertState) error {
	a := l.alerting
	key := lake.AlertStateKey(l.opts.Group)
	old, etag := a.saved, a.savedETag
	for try := 0; try < 5; try++ {
		if old == nil {
			data, info, err := l.opts.Store.Get(ctx, key)
			old, etag = &alertState{}, info.ETag
			switch {
			case objstore.IsNotFound(err):
				etag = ""
			case err != nil:
				return err
			default:
				_ = json.Unmarshal(data, old) // a corrupt object is replaced
			}
		}
		merged := &alertState{Parts: map[string]alerts.PartState{}, Fleet: old.Fleet, Saved: st.Saved}
		for k, ps := range old.Parts {
			merged.Parts[k] = ps
		}
		for k, ps := range st.Parts {
			merged.Parts[k] = ps
		}
		if st.Fleet != nil {
			merged.Fleet = st.Fleet
		}
		out, err := json.Marshal(merged)
		if err != nil {
			return err
		}
		var newTag string
		if etag == "" {
			newTag, err = l.opts.Store.PutIfAbsent(ctx, key, out)
		} else {
			newTag, err = l.opts.Store.PutIfMatch(ctx, key, out, etag)
		}
		if err == nil {
			a.saved, a.savedETag = merged, newTag
			return nil
		}
		if !objstore.IsConditionNotMet(err) {
			return err
		}
		old = nil // another process wrote: read its entries and merge again
	}
	return fmt.Errorf("alert state %s: five concurrent updates lost", key)
}
