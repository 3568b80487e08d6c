// Package speed is gridlake's speed layer: a Kafka consumer group that keeps
// exact real-time aggregates of the records at or above the last batch cut.
//
// Its state is disposable. On every partition it is assigned it rebuilds by
// replaying Kafka from the newest committed cut (plus an overlap before it
// that only seeds de-duplication), so a restarted or rebalanced process
// converges to the same answers. It splits its battery state into
// generations at offsets it publishes; batch cuts fall on them, and when a
// cut commits, the generations below it are dropped.
package speed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/alerts"
	"github.com/gridlake/gridlake/internal/wait"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/metrics"
	"github.com/gridlake/gridlake/objstore"
	"github.com/gridlake/gridlake/schemas"
)

// Options configure the speed layer.
type Options struct {
	Brokers  []string
	Group    string // consumer group id
	Limits   schemas.Limits
	Location *time.Location // site time zone of the room reports
	// GenEvery is how often the battery state starts a new generation.
	GenEvery time.Duration
	// DedupHorizon is how long identities stay known for de-duplication,
	// and how much before the cut is replayed to seed them.
	DedupHorizon time.Duration
	// CutPoll is how often the newest manifest is checked.
	CutPoll time.Duration
	// Store holds manifests and receives generation boundaries; nil runs
	// without a batch layer (everything is speed).
	Store objstore.Bucket
	// DeadLetters receives rejected messages; nil only counts them.
	DeadLetters *kafkaio.DeadLetters
	Metrics     *metrics.Registry
	// Alerts turns on the event-time alert rules; nil leaves them off.
	Alerts *AlertOptions
	Log    *slog.Logger
	Now    func() time.Time
}

func (o *Options) defaults() error {
	if len(o.Brokers) == 0 {
		return errors.New("speed: no Kafka brokers")
	}
	if o.Group == "" {
		o.Group = lake.SpeedGroup
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	if o.GenEvery <= 0 {
		o.GenEvery = 30 * time.Second
	}
	if o.DedupHorizon <= 0 {
		o.DedupHorizon = 10 * time.Minute
	}
	if o.CutPoll <= 0 {
		o.CutPoll = 2 * time.Second
	}
	if o.Metrics == nil {
		o.Metrics = metrics.NewRegistry()
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// Layer is one speed process: it answers for the partitions the consumer
// group assigned to it.
type Layer struct {
	opts     Options
	alerting *alerting // nil when alerts are off

	mu       sync.RWMutex
	parts    map[partKey]*part
	manifest *lake.Manifest // newest seen; nil before the first batch commit
	cuts     map[int64]lake.Cut
	groupGen int32 // the consumer-group generation of the current assignment

	events, invalid, dups, late, seededN, rebuilds *metrics.Counter
	rejects                                        map[schemas.Reason]*metrics.Counter
	// seq moves after every change of the battery state (StateSeq).
	seq atomic.Uint64
	// epoch moves before any change of the battery state other than
	// readings counted (partitions assigned, started or cut): a reader
	// holding what changed since a seq of an older epoch reads it all
	// again (BatteryLatestSince).
	epoch atomic.Uint64

	// failure is the error that stopped Run (a partition behind the cut);
	// stopRun ends Run's context. Both are set once, under failMu.
	failMu  sync.Mutex
	failure error
	stopRun context.CancelFunc
}

type partKey struct {
	topic string
	id    int
}

// part is the state of one owned partition. Its worker goroutine is the
// only writer; queries take the read lock.
type part struct {
	mu   sync.RWMutex
	key  partKey
	bat  *batteryPart
	room *roomPart
	next int64 // next offset to apply
	hwm  int64 // high watermark at the last fetch
	// lag is hwm - next, kept so that every answer's freshness reads it
	// without waiting for the apply to release mu.
	lag       atomic.Int64
	seedUntil int64 // offsets below this only seed de-duplication
	dlqFrom   int64 // offsets below this were already dead-lettered
	rotated   time.Time
	rebuild   bool // set when a cut did not fall on a boundary
	// replayTo is the partition's end when this state started: until next
	// reaches it the state is behind what an earlier owner answered.
	replayTo int64
	// pending are boundaries above the cut that an earlier process
	// published: a batch run may have read them before this process
	// published its own, so the state rotates there too (see honour).
	pending []int64

	// alerts evaluates the alert rules over every record read; records
	// below next (from before the speed start) feed it alone. It has its
	// own lock, amu, taken after mu is released: evaluating alerts does not
	// delay when a fetch becomes visible to queries.
	amu       sync.Mutex
	alerts    *alerts.Evaluator
	alertsGen int64               // the rules generation it was built with
	outbox    []alerts.Transition // produced, not yet queued
	emitted   int64               // transitions produced (under amu)
	written   *atomic.Int64       // of which written to Kafka (shared with a rebuilt part)
}

// honour starts a generation at every pending boundary at or below offset,
// before the record at offset is applied. Called with p.mu held.
func (p *part) honour(offset int64) {
	for len(p.pending) > 0 && p.pending[0] <= offset {
		p.bat.rotate(p.pending[0])
		p.pending = p.pending[1:]
	}
}

// New returns a speed layer; Run starts it.
func New(o Options) (*Layer, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	l := &Layer{opts: o, parts: map[partKey]*part{}, cuts: map[int64]lake.Cut{0: {}}, rejects: map[schemas.Reason]*metrics.Counter{}}
	m := o.Metrics
	l.events = m.Counter("gridlake_speed_events_total", "valid events applied")
	l.invalid = m.Counter("gridlake_speed_invalid_total", "rejected messages")
	l.dups = m.Counter("gridlake_speed_duplicates_total", "duplicate events ignored")
	l.late = m.Counter("gridlake_speed_late_total", "events that arrived over a minute after their ts, or for a closed day")
	l.seededN = m.Counter("gridlake_speed_seeded_total", "overlap records replayed only to seed de-duplication")
	l.rebuilds = m.Counter("gridlake_speed_rebuilds_total", "partitions rebuilt from a batch cut that fell inside a generation")
	if o.Alerts != nil {
		l.alerting = newAlerting(*o.Alerts, m)
	}
	for _, r := range schemas.Reasons() {
		l.rejects[r] = m.Counter("gridlake_speed_rejected_total", "rejected messages by reason", "reason", r.String())
	}
	m.GaugeFunc("gridlake_speed_lag_records", "consumer lag per partition", l.lagSamples)
	m.GaugeFunc("gridlake_speed_generations", "battery state generations per partition", l.genSamples)
	m.GaugeFunc("gridlake_speed_state_size", "battery-minute cells and room events held", l.sizeSamples)
	return l, nil
}

// Run joins the consumer group and processes partitions until ctx ends, or
// until a partition turns out to end below the lake's cut (the topic was
// re-created): then it returns that *lake.BehindCutError.
func (l *Layer) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	l.failMu.Lock()
	l.stopRun = cancel
	l.failMu.Unlock()
	if l.opts.Store != nil {
		if err := l.pollCut(ctx); err != nil {
			l.opts.Log.Warn("read newest manifest", "err", err)
		}
		go l.every(ctx, l.opts.CutPoll, func() {
			if err := l.pollCut(ctx); err != nil && ctx.Err() == nil {
				l.opts.Log.Warn("read newest manifest", "err", err)
			}
		})
		go l.every(ctx, l.opts.CutPoll, func() { l.publish(ctx) })
	}
	if l.alerting != nil {
		go l.writeAlerts(ctx)
		if l.opts.Store != nil {
			go l.saveAlertsLoop(ctx)
		}
	}
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                l.opts.Group,
		Brokers:           l.opts.Brokers,
		Topics:            []string{schemas.TopicBattery, schemas.TopicRoom},
		StartOffset:       kafka.FirstOffset,
		SessionTimeout:    10 * time.Second,
		RebalanceTimeout:  10 * time.Second,
		HeartbeatInterval: time.Second,
		JoinGroupBackoff:  time.Second,
	})
	if err != nil {
		return fmt.Errorf("speed: consumer group %s: %w", l.opts.Group, err)
	}
	defer group.Close()
	for {
		gen, err := group.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return l.failed()
			}
			l.opts.Log.Warn("consumer group generation", "err", err)
			if wait.Sleep(ctx, time.Second) != nil {
				return l.failed()
			}
			continue
		}
		l.assign(gen)
	}
}

// fail stops Run with err; the first failure wins.
func (l *Layer) fail(err error) {
	l.failMu.Lock()
	defer l.failMu.Unlock()
	if l.failure == nil {
		l.failure = err
	}
	if l.stopRun != nil {
		l.stopRun()
	}
}

// failed returns the error that stopped Run, or nil.
func (l *Layer) failed() error {
	l.failMu.Lock()
	defer l.failMu.Unlock()
	return l.failure
}

// assign starts a worker per assigned partition, keeping the state of
// partitions this process already owned and dropping the others.
func (l *Layer) assign(gen *kafka.Generation) {
	keep := map[partKey]int64{}
	for topic, pas := range gen.Assignments {
		for _, pa := range pas {
			keep[partKey{topic, pa.ID}] = pa.Offset
		}
	}
	l.epoch.Add(1)
	l.mu.Lock()
	l.groupGen = gen.ID
	for k := range l.parts {
		if _, ok := keep[k]; !ok {
			delete(l.parts, k)
		}
	}
	l.mu.Unlock()
	l.seq.Add(1)
	l.opts.Log.Info("partitions assigned", "generation", gen.ID, "count", len(keep))
	if l.alerting != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		l.loadAlertState(ctx, keep)
		cancel()
	}
	for k, committed := range keep {
		gen.Start(func(ctx context.Context) { l.work(ctx, k, committed) })
	}
	gen.Start(func(ctx context.Context) { l.commitLoop(ctx, gen) })
}

// commitLoop commits the applied offsets, for lag monitoring and so that
// dead letters are not sent twice after a restart.
func (l *Layer) commitLoop(ctx context.Context, gen *kafka.Generation) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		offs := map[string]map[int]int64{}
		l.mu.RLock()
		for k, p := range l.parts {
			p.mu.RLock()
			next := p.next
			p.mu.RUnlock()
			if offs[k.topic] == nil {
				offs[k.topic] = map[int]int64{}
			}
			offs[k.topic][k.id] = next
		}
		l.mu.RUnlock()
		if err := gen.CommitOffsets(offs); err != nil && ctx.Err() == nil {
			l.opts.Log.Warn("commit offsets", "err", err)
		}
	}
}

func (l *Layer) every(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

// ManifestVersion is the newest batch manifest this process has applied (0:
// none). Queries above that version's cut are answerable exactly.
func (l *Layer) ManifestVersion() int64 {
	if m := l.currentManifest(); m != nil {
		return m.Version
	}
	return 0
}

// currentManifest returns the newest manifest seen, or nil.
func (l *Layer) currentManifest() *lake.Manifest {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.manifest
}

// pollCut reads the newest manifest and, when it is new, drops the battery
// generations it covers and moves the rooms' open-day boundary.
func (l *Layer) pollCut(ctx context.Context) error {
	m, err := lake.Latest(ctx, l.opts.Store)
	if err != nil || m == nil {
		return err
	}
	l.mu.Lock()
	if l.manifest != nil && l.manifest.Version >= m.Version {
		l.mu.Unlock()
		return nil
	}
	l.manifest = m
	l.cuts[m.Version] = m.Cut
	l.epoch.Add(1) // the drop below may forget batteries
	parts := make([]*part, 0, len(l.parts))
	for _, p := range l.parts {
		parts = append(parts, p)
	}
	l.mu.Unlock()
	for _, p := range parts {
		p.mu.Lock()
		switch {
		case p.bat != nil:
			if !p.bat.dropBelow(m.Cut.Offset(p.key.topic, p.key.id), l.opts.DedupHorizon) {
				p.rebuild = true
			}
		case p.room != nil:
			p.room.openFrom = l.openFrom(m)
		}
		p.mu.Unlock()
	}
	l.seq.Add(1)
	l.opts.Log.Info("batch cut applied", "version", m.Version)
	return nil
}

// openFrom is the start of the first day batch has not closed.
func (l *Layer) openFrom(m *lake.Manifest) int64 {
	if m == nil || m.ClosedThrough == "" {
		return -1 << 62
	}
	d, err := agg.ParseDay(m.ClosedThrough)
	if err != nil {
		return -1 << 62
	}
	start, _ := d.Next().Bounds(l.opts.Location)
	return start
}

// publish writes the generation boundaries of owned battery partitions.
func (l *Layer) publish(ctx context.Context) {
	l.mu.RLock()
	var out []lake.Boundaries
	for k, p := range l.parts {
		p.mu.RLock()
		if p.bat != nil {
			out = append(out, lake.Boundaries{Topic: k.topic, Partition: k.id, Offsets: p.bat.boundaries(), Updated: l.opts.Now()})
		}
		p.mu.RUnlock()
	}
	l.mu.RUnlock()
	for _, b := range out {
		if err := lake.PublishBoundaries(ctx, l.opts.Store, l.opts.Group, b); err != nil && ctx.Err() == nil {
			l.opts.Log.Warn("publish generation boundaries", "err", err)
		}
	}
}

// Status describes what this process holds.
type Status struct {
	Group           string `json:"group"`
	ManifestVersion int64  `json:"manifest_version"`
	// Rebuilds counts partitions rebuilt because a batch cut fell inside
	// a generation.
	Rebuilds   uint64          `json:"rebuilds"`
	Partitions []PartitionInfo `json:"partitions"`
}

// PartitionInfo is one owned partition.
type PartitionInfo struct {
	Topic       string  `json:"topic"`
	Partition   int     `json:"partition"`
	Next        int64   `json:"next_offset"`
	Lag         int64   `json:"lag"`
	Generations []int64 `json:"generation_starts,omitempty"`
	// CaughtUp is true once the partition reached the high watermark seen
	// at its last fetch.
	CaughtUp bool `json:"caught_up"`
}

// Status reports the owned partitions.
func (l *Layer) Status() Status {
	l.mu.RLock()
	defer l.mu.RUnlock()
	st := Status{Group: l.opts.Group}
	if l.manifest != nil {
		st.ManifestVersion = l.manifest.Version
	}
	st.Rebuilds = l.rebuilds.Value()
	for k, p := range l.parts {
		p.mu.RLock()
		pi := PartitionInfo{Topic: k.topic, Partition: k.id, Next: p.next, Lag: max(0, p.hwm-p.next), CaughtUp: p.hwm >= 0 && p.next >= p.hwm}
		if p.bat != nil {
			pi.Generations = p.bat.boundaries()
		}
		p.mu.RUnlock()
		st.Partitions = append(st.Partitions, pi)
	}
	sort.Slice(st.Partitions, func(i, j int) bool {
		a, b := st.Partitions[i], st.Partitions[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.Partition < b.Partition
	})
	return st
}

func (l *Layer) lagSamples() []metrics.Sample {
	var out []metrics.Sample
	for _, p := range l.Status().Partitions {
		out = append(out, metrics.Sample{Labels: []string{"topic", p.Topic, "partition", fmt.Sprint(p.Partition)}, Value: float64(p.Lag)})
	}
	return out
}

func (l *Layer) genSamples() []metrics.Sample {
	var out []metrics.Sample
	for _, p := range l.Status().Partitions {
		if p.Topic == schemas.TopicBattery {
			out = append(out, metrics.Sample{Labels: []string{"partition", fmt.Sprint(p.Partition)}, Value: float64(len(p.Generations))})
		}
	}
	return out
}

func (l *Layer) sizeSamples() []metrics.Sample {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var cells, events int
	for _, p := range l.parts {
		p.mu.RLock()
		if p.bat != nil {
			cells += p.bat.size()
		} else if p.room != nil {
			events += p.room.size()
		}
		p.mu.RUnlock()
	}
	return []metrics.Sample{{Labels: []string{"kind", "battery_minute_cells"}, Value: float64(cells)},
		{Labels: []string{"kind", "room_events"}, Value: float64(events)}}
}
