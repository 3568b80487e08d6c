// Package serving answers queries exactly by merging the batch views of one
// manifest with the speed layer's state above that manifest's cut (DESIGN
// §5), and serves the answers over HTTP (/v1), SQL and the PostgreSQL wire
// protocol.
package serving

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/internal/wait"
	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/objstore"
	"github.com/gridlake/gridlake/speed"
	"github.com/gridlake/gridlake/views"
)

// Speed is what the merge asks of the speed layer: the batch version it
// applied, its lag, and (through speedSource) its state above a version's
// cut. *speed.Layer is one.
type Speed interface {
	ManifestVersion() int64
	MaxLag() int64
	BatteryWindows(ctx context.Context, id string, res agg.Res, from, to, version int64) ([]agg.Window, bool, error)
	Fleet(ctx context.Context, res agg.Res, from, to, version int64) ([]agg.FleetWindow, error)
	BatteryWindowsAll(ctx context.Context, res agg.Res, from, to, version int64, fn func(id string, start int64, s *agg.BatteryStats)) error
	BatteryLatest(ctx context.Context, id string, version int64) (agg.Reading, bool, error)
	BatteryLatestAll(ctx context.Context, version int64, fn func(id string, r agg.Reading)) error
	RoomEvents(ctx context.Context, room string, version int64, from, to int64, fn func(room string, evs []agg.RoomEvent, untaken int64)) error
	Rooms() []string
}

// Merger answers exactly: the batch views of one manifest version plus the
// speed layer's state above that version's cut. It uses the version the
// speed layer has applied, so the two sides split the records at the same
// offsets; a batch commit swaps in when the speed layer applies it, and
// every query reads one version from start to end. When the object store
// is unreachable and that version cannot be loaded, it answers from the
// newest version already loaded, as long as the speed layer still splits
// there (see pick), and says so in the freshness.
//
// Each query asks the sides as Sources (source.go) and folds their answers
// once per aggregate: merge_battery.go, merge_fleet.go, merge_rooms.go.
type Merger struct {
	store objstore.Bucket
	views *views.Reader
	speed versioned
	// local is the in-process speed layer; nil when fan answers for the
	// speed processes (NewFanoutMerger).
	local Speed
	fan   *Fanout
	loc   *time.Location
	now   func() time.Time
	// clock paces store retries and probes; now is the answers' time,
	// which tests may simulate.
	clock func() time.Time

	mu     sync.Mutex
	snaps  map[int64]*snapshot
	health storeHealth

	latest latestCache // merge_cache.go
}

// NewMerger returns a merger. loc is the site's time zone (room days).
func NewMerger(store objstore.Bucket, rd *views.Reader, sp Speed, loc *time.Location, now func() time.Time) *Merger {
	if loc == nil {
		loc = time.UTC
	}
	if now == nil {
		now = time.Now
	}
	return &Merger{store: store, views: rd, speed: sp, local: sp, loc: loc, now: now, clock: time.Now, snaps: map[int64]*snapshot{}}
}

// NewFanoutMerger returns a merger whose speed side are the speed
// processes f finds (DESIGN §12).
func NewFanoutMerger(store objstore.Bucket, rd *views.Reader, f *Fanout, loc *time.Location, now func() time.Time) *Merger {
	m := NewMerger(store, rd, nil, loc, now)
	m.speed, m.local, m.fan = f, nil, f
	return m
}

// versioned is what the merger asks of the speed side as a whole: the
// batch version it applied and its lag.
type versioned interface {
	ManifestVersion() int64
	MaxLag() int64
}

// unsettledRetry bounds how long a query waits for the speed processes to
// settle on an owner set after a rebalance before it answers 503.
const unsettledRetry = 3 * time.Second

// Freshness says what an answer is made of: the batch manifest version and
// its cut time, how many records the speed side trails Kafka by, and
// whether the object store answers.
type Freshness struct {
	BatchVersion  int64      `json:"batch_version"`
	CutTime       *time.Time `json:"cut_time,omitempty"`
	ClosedThrough string     `json:"closed_through,omitempty"`
	SpeedLag      int64      `json:"speed_lag_records"`
	AsOf          time.Time  `json:"as_of"`
	// Store is "ok", "unreachable" (no answer within s3.timeout) or
	// "error" (it answered, but the batch version could not be loaded).
	// While it is not ok, answers come from the last loaded batch version
	// plus the speed layer: still exact, but no newer batch run shows.
	Store      string `json:"store"`
	StoreError string `json:"store_error,omitempty"`
	// StaleSince is when the store stopped answering.
	StaleSince *time.Time `json:"stale_since,omitempty"`
	// SpeedVersion is the batch version the speed layer applied, when it
	// is newer than BatchVersion (a newer version could not be loaded).
	SpeedVersion int64 `json:"speed_batch_version,omitempty"`
}

// snapshot is what the serving layer loaded of one manifest version: the
// manifest and the small views held in memory.
type snapshot struct {
	done chan struct{} // closed when the load ended; err is set before
	err  error
	man  *lake.Manifest // nil before the first batch commit
	// speedVersion is the speed layer's version when the answer falls
	// back to this older snapshot (0 otherwise); set on the copy pick
	// returns, never on the shared one.
	speedVersion int64

	latest   map[string]agg.Reading
	roomDays map[string]map[string][]views.RoomDayRow // day → room → rows
	// endState is each room's state at the end of the last closed day.
	endState map[string]agg.RoomState
	// fleet holds the fleet view files read (snapshot_cache.go); shared
	// by the copies pick makes.
	fleet *fleetFileCache
}

// sources are the sides of the merge at version v, batch first: the batch
// views of snapshot s and the speed state above v's cut.
func (m *Merger) sources(s *snapshot, v int64) []Source {
	b := &batchSource{s: s, views: m.views, loc: m.loc}
	if m.fan != nil {
		return append([]Source{b}, m.fan.speedSources(context.Background(), v)...)
	}
	return []Source{b, speedSource{sp: m.local, version: v}}
}

// at runs fn on the snapshot of the speed layer's manifest version,
// retrying when the speed layer moves to a newer cut meanwhile. When that
// version cannot be loaded it runs fn on the newest loaded one, which is
// exact only while the speed layer still splits at that version's cut:
// otherwise the answer is ErrUnavailable, never a wrong number.
func (m *Merger) at(ctx context.Context, fn func(s *snapshot, v int64) error) error {
	start := m.clock()
	for attempt := 0; ; attempt++ {
		s, v, err := m.pick(ctx)
		if err != nil {
			return err
		}
		err = fn(s, v)
		if errors.Is(err, speed.ErrCutUnavailable) && s.speedVersion != 0 {
			return fmt.Errorf("%w: the speed layer moved to batch version %d, which cannot be loaded (%s), and no longer splits at version %d; the answer is exact again once the store answers",
				ErrUnavailable, s.speedVersion, m.storeError(), v)
		}
		if errors.Is(err, speed.ErrCutUnavailable) && attempt < 5 {
			if err := wait.Sleep(ctx, time.Duration(attempt)*10*time.Millisecond); err != nil {
				return err
			}
			continue
		}
		// Across a rebalance of the speed processes: ask again until one
		// consistent owner set answers, else say so (503), never a number
		// made of a partial owner set.
		if errors.Is(err, ErrOwnersUnsettled) || (m.fan != nil && errors.Is(err, speed.ErrCutUnavailable)) {
			if m.clock().Sub(start) < unsettledRetry {
				if err := wait.Sleep(ctx, 100*time.Millisecond); err != nil {
					return err
				}
				continue
			}
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return err
	}
}

// pick returns the snapshot to answer from and its version: the speed
// layer's version, or, when that cannot be loaded, the newest loaded one
// (marked with the speed layer's version).
func (m *Merger) pick(ctx context.Context) (*snapshot, int64, error) {
	v := m.speed.ManifestVersion()
	s, err := m.snapshot(ctx, v)
	if err == nil {
		return s, v, nil
	}
	if ctx.Err() != nil {
		return nil, 0, ctx.Err()
	}
	old, ov := m.newestLoaded(v)
	if old == nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	fb := *old
	fb.speedVersion = v
	return &fb, ov, nil
}

// storeRetry is the least time between two loads of a version that
// failed, so an outage costs one store call a second, not one a query.
const storeRetry = time.Second

// storeHealth is what the merger knows of the object store. Guarded by
// Merger.mu.
type storeHealth struct {
	err   error     // the last failure; nil while the store answers
	since time.Time // when the store stopped answering
	// The last failed load, not retried for storeRetry.
	failedV   int64
	failedAt  time.Time
	failedErr error
	probedAt  time.Time
	probing   bool
}

// snapshot returns the loaded snapshot of version v, loading it once.
// Loads run detached from the asking query (one query giving up must not
// fail the others), bounded by the store's own call timeouts.
func (m *Merger) snapshot(ctx context.Context, v int64) (*snapshot, error) {
	m.mu.Lock()
	s := m.snaps[v]
	if s == nil {
		h := &m.health
		if h.failedErr != nil && h.failedV == v && m.clock().Sub(h.failedAt) < storeRetry {
			err := h.failedErr
			m.mu.Unlock()
			return nil, err
		}
		s = &snapshot{done: make(chan struct{})}
		m.snaps[v] = s
		go m.loadInto(context.WithoutCancel(ctx), s, v)
	}
	// While the store is known to be down, a query with an older version
	// to fall back on does not wait for the load.
	down := m.health.err != nil
	m.mu.Unlock()
	if down {
		select {
		case <-s.done:
		default:
			if old, _ := m.newestLoaded(v); old != nil {
				return nil, fmt.Errorf("load batch version %d: %w", v, m.storeErr())
			}
		}
	}
	select {
	case <-s.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if s.err != nil {
		return nil, s.err
	}
	return s, nil
}

// loadInto loads version v into s and records how the store did.
func (m *Merger) loadInto(ctx context.Context, s *snapshot, v int64) {
	err := m.load(ctx, s, v)
	m.mu.Lock()
	if err != nil {
		s.err = err
		if m.snaps[v] == s {
			delete(m.snaps, v)
		}
		h := &m.health
		h.failedV, h.failedAt, h.failedErr = v, m.clock(), err
		if objstore.IsUnavailable(err) {
			m.storeFailed(err)
		}
	} else {
		m.storeAnswered()
		if m.health.failedV <= v {
			m.health.failedErr = nil
		}
		// Keep the newest few; queries in flight hold their own pointer.
		for old, o := range m.snaps {
			if old < v-2 && loaded(o) {
				delete(m.snaps, old)
			}
		}
	}
	m.mu.Unlock()
	close(s.done)
}

func loaded(s *snapshot) bool {
	select {
	case <-s.done:
		return s.err == nil
	default:
		return false
	}
}

// newestLoaded returns the newest loaded snapshot below version v.
func (m *Merger) newestLoaded(v int64) (*snapshot, int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var best *snapshot
	bv := int64(-1)
	for ov, s := range m.snaps {
		if ov < v && ov > bv && loaded(s) {
			best, bv = s, ov
		}
	}
	return best, bv
}

// storeFailed records a failure. Called with m.mu held.
func (m *Merger) storeFailed(err error) {
	if m.health.err == nil {
		m.health.since = m.clock()
	}
	m.health.err = err
}

// storeAnswered records that the store answered. Called with m.mu held.
func (m *Merger) storeAnswered() { m.health.err = nil }

func (m *Merger) storeErr() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.health.err != nil {
		return m.health.err
	}
	return m.health.failedErr
}

func (m *Merger) storeError() string {
	if err := m.storeErr(); err != nil {
		return err.Error()
	}
	return "no error recorded"
}

// probe checks in the background, at most once per storeRetry, whether
// the store answers, so freshness tells of an outage even while no new
// batch version has to be loaded. Called with m.mu held.
func (m *Merger) probe() {
	if m.health.probing || m.clock().Sub(m.health.probedAt) < storeRetry {
		return
	}
	m.health.probing, m.health.probedAt = true, m.clock()
	go func() {
		// The store bounds each call with its own timeout (s3.timeout).
		err := m.store.Ping(context.Background())
		m.mu.Lock()
		defer m.mu.Unlock()
		m.health.probing = false
		switch {
		case err == nil:
			m.storeAnswered()
		case objstore.IsUnavailable(err):
			m.storeFailed(err)
		}
	}()
}

func (m *Merger) load(ctx context.Context, s *snapshot, v int64) error {
	s.latest = map[string]agg.Reading{}
	s.roomDays = map[string]map[string][]views.RoomDayRow{}
	s.endState = map[string]agg.RoomState{}
	s.fleet = &fleetFileCache{}
	if v == 0 {
		return nil
	}
	man, err := lake.Read(ctx, m.store, v)
	if err != nil {
		return fmt.Errorf("read manifest %d: %w", v, err)
	}
	s.man = man
	var rooms []lake.ViewFile
	for _, f := range man.Views {
		switch f.View {
		case views.Latest:
			if err := m.views.ReadLatest(ctx, f, func(id string, r agg.Reading) { s.latest[id] = r }); err != nil {
				return fmt.Errorf("load battery_latest of manifest %d: %w", v, err)
			}
		case views.RoomDay:
			rooms = append(rooms, f)
		}
	}
	err = m.views.ReadRoomDays(ctx, rooms, func(r views.RoomDayRow) {
		byRoom := s.roomDays[r.Day]
		if byRoom == nil {
			byRoom = map[string][]views.RoomDayRow{}
			s.roomDays[r.Day] = byRoom
		}
		byRoom[r.RoomID] = append(byRoom[r.RoomID], r)
	})
	if err != nil {
		return fmt.Errorf("load room_day of manifest %d: %w", v, err)
	}
	for room, rows := range s.roomDays[man.ClosedThrough] {
		var st agg.RoomState
		if err := json.Unmarshal([]byte(rows[0].StateEnd), &st); err != nil {
			return fmt.Errorf("room %s state at end of %s: %w", room, man.ClosedThrough, err)
		}
		s.endState[room] = st
	}
	m.views.Retain(man.Views)
	return nil
}

func (m *Merger) freshness(s *snapshot) Freshness {
	f := Freshness{SpeedLag: m.speed.MaxLag(), AsOf: m.now().UTC(), Store: "ok", SpeedVersion: s.speedVersion}
	if s.man != nil {
		ct := s.man.CutTime.UTC()
		f.BatchVersion, f.CutTime, f.ClosedThrough = s.man.Version, &ct, s.man.ClosedThrough
	}
	m.mu.Lock()
	m.probe()
	h := m.health
	m.mu.Unlock()
	err := h.err
	if err == nil && s.speedVersion != 0 {
		err = h.failedErr
	}
	if err != nil {
		f.Store, f.StoreError = "error", err.Error()
		if objstore.IsUnavailable(err) {
			f.Store = "unreachable"
		}
		if h.err != nil {
			since := h.since.UTC()
			f.StaleSince = &since
		}
	}
	return f
}

// Freshness reports the current batch version, cut time, speed lag and
// the store's state.
func (m *Merger) Freshness(ctx context.Context) (Freshness, error) {
	var f Freshness
	err := m.at(ctx, func(s *snapshot, _ int64) error { f = m.freshness(s); return nil })
	return f, err
}
