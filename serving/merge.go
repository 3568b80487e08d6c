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
	"sort"
	"sync"
	"time"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/objstore"
	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/speed"
	"github.com/gridlake/gridlake/views"
)

// Speed is what the merge asks of the speed layer; *speed.Layer is one.
type Speed interface {
	ManifestVersion() int64
	MaxLag() int64
	BatteryWindows(ctx context.Context, id string, res agg.Res, from, to, version int64) ([]speed.Window, bool, error)
	BatteryWindowsAll(ctx context.Context, res agg.Res, from, to, version int64, fn func(id string, start int64, s *agg.BatteryStats)) error
	BatteryLatest(ctx context.Context, id string, version int64) (agg.Reading, bool, error)
	BatteryLatestAll(ctx context.Context, version int64, fn func(id string, r agg.Reading)) error
	RoomEvents(roomID string) ([]agg.RoomEvent, bool)
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
type Merger struct {
	store objstore.Bucket
	views *views.Reader
	speed Speed
	loc   *time.Location
	now   func() time.Time
	// clock paces store retries and probes; now is the answers' time,
	// which tests may simulate.
	clock func() time.Time

	mu     sync.Mutex
	snaps  map[int64]*snapshot
	health storeHealth
}

// NewMerger returns a merger. loc is the site's time zone (room days).
func NewMerger(store objstore.Bucket, rd *views.Reader, sp Speed, loc *time.Location, now func() time.Time) *Merger {
	if loc == nil {
		loc = time.UTC
	}
	if now == nil {
		now = time.Now
	}
	return &Merger{store: store, views: rd, speed: sp, loc: loc, now: now, clock: time.Now, snaps: map[int64]*snapshot{}}
}

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

// Window is one merged window.
type Window struct {
	Start int64            `json:"start_ms"`
	Stats agg.BatteryStats `json:"stats"`
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
}

// at runs fn on the snapshot of the speed layer's manifest version,
// retrying when the speed layer moves to a newer cut meanwhile. When that
// version cannot be loaded it runs fn on the newest loaded one, which is
// exact only while the speed layer still splits at that version's cut:
// otherwise the answer is ErrUnavailable, never a wrong number.
func (m *Merger) at(ctx context.Context, fn func(s *snapshot, v int64) error) error {
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
			time.Sleep(time.Duration(attempt) * 10 * time.Millisecond)
			continue
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
		if errors.Is(err, objstore.ErrUnavailable) {
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
	p, ok := m.store.(interface{ Ping(context.Context) error })
	if !ok || m.health.probing || m.clock().Sub(m.health.probedAt) < storeRetry {
		return
	}
	m.health.probing, m.health.probedAt = true, m.clock()
	go func() {
		// The store bounds each call with its own timeout (s3.timeout).
		err := p.Ping(context.Background())
		m.mu.Lock()
		defer m.mu.Unlock()
		m.health.probing = false
		switch {
		case err == nil:
			m.storeAnswered()
		case errors.Is(err, objstore.ErrUnavailable):
			m.storeFailed(err)
		}
	}()
}

func (m *Merger) load(ctx context.Context, s *snapshot, v int64) error {
	s.latest = map[string]agg.Reading{}
	s.roomDays = map[string]map[string][]views.RoomDayRow{}
	s.endState = map[string]agg.RoomState{}
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
		if errors.Is(err, objstore.ErrUnavailable) {
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

// viewFiles are the manifest's partitions of view that can hold windows
// starting in [from, to).
func (s *snapshot) viewFiles(view string, from, to int64) []lake.ViewFile {
	if s.man == nil {
		return nil
	}
	var out []lake.ViewFile
	for _, f := range s.man.Views {
		if f.View == view && partOverlaps(f.Part, from, to) {
			out = append(out, f)
		}
	}
	return out
}

// BatteryWindows returns one battery's windows of res starting in
// [from, to), oldest first. found is false when neither side knows it.
func (m *Merger) BatteryWindows(ctx context.Context, id string, res agg.Res, from, to int64) (out []Window, fr Freshness, found bool, err error) {
	err = m.at(ctx, func(s *snapshot, v int64) error {
		out, found = out[:0], false
		fr = m.freshness(s)
		acc := map[int64]*agg.BatteryStats{}
		for _, f := range s.viewFiles(views.BatteryView(res), from, to) {
			err := m.views.Lookup(ctx, f, id, from, to, func(w agg.Window) {
				st := w.Stats
				acc[w.Start] = &st
				found = true
			})
			if err != nil {
				return err
			}
		}
		sw, ok, err := m.speed.BatteryWindows(ctx, id, res, from, to, v)
		if err != nil {
			return err
		}
		found = found || ok
		for i := range sw {
			w := &sw[i]
			if w.Start < from || w.Start >= to {
				continue
			}
			if a := acc[w.Start]; a != nil {
				a.Merge(&w.Stats)
			} else {
				st := w.Stats
				acc[w.Start] = &st
			}
		}
		for start, st := range acc {
			out = append(out, Window{Start: start, Stats: *st})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Start < out[j].Start })
		return nil
	})
	return out, fr, found, err
}

// Latest is a battery's newest reading.
type Latest struct {
	BatteryID string `json:"battery_id"`
	agg.Reading
}

// BatteryLatest returns one battery's reading with the greatest ts.
func (m *Merger) BatteryLatest(ctx context.Context, id string) (l Latest, fr Freshness, found bool, err error) {
	err = m.at(ctx, func(s *snapshot, v int64) error {
		fr = m.freshness(s)
		r, inBatch := s.latest[id]
		sr, inSpeed, err := m.speed.BatteryLatest(ctx, id, v)
		if err != nil {
			return err
		}
		if inSpeed && (!inBatch || sr.TS > r.TS) {
			r = sr
		}
		l, found = Latest{BatteryID: id, Reading: r}, inBatch || inSpeed
		return nil
	})
	return l, fr, found, err
}

// BatteryLatestAll returns every battery's newest reading, by id.
func (m *Merger) BatteryLatestAll(ctx context.Context) (all []Latest, fr Freshness, err error) {
	err = m.at(ctx, func(s *snapshot, v int64) error {
		fr = m.freshness(s)
		merged := make(map[string]agg.Reading, len(s.latest))
		for id, r := range s.latest {
			merged[id] = r
		}
		err := m.speed.BatteryLatestAll(ctx, v, func(id string, r agg.Reading) {
			if old, ok := merged[id]; !ok || r.TS > old.TS {
				merged[id] = r
			}
		})
		if err != nil {
			return err
		}
		all = make([]Latest, 0, len(merged))
		for id, r := range merged {
			all = append(all, Latest{BatteryID: id, Reading: r})
		}
		sort.Slice(all, func(i, j int) bool { return all[i].BatteryID < all[j].BatteryID })
		return nil
	})
	return all, fr, err
}

// FleetWindow is one merged fleet window.
type FleetWindow struct {
	Start int64          `json:"start_ms"`
	Stats agg.FleetStats `json:"stats"`
}

// Fleet returns the fleet's windows of res starting in [from, to): readings,
// distinct batteries and min/max/mean per metric. The batch side comes from
// the fleet views; where the speed side adds batteries to a window the batch
// already has, the batteries both sides hold are counted once.
func (m *Merger) Fleet(ctx context.Context, res agg.Res, from, to int64) (out []FleetWindow, fr Freshness, err error) {
	err = m.at(ctx, func(s *snapshot, v int64) error {
		out = out[:0]
		fr = m.freshness(s)
		acc := map[int64]*agg.FleetStats{}
		if view, ok := views.FleetView(res); ok {
			err := m.views.ReadFleet(ctx, s.viewFiles(view, from, to), func(w agg.FleetWindow) {
				if w.Start >= from && w.Start < to {
					acc[w.Start] = &w.Stats
				}
			})
			if err != nil {
				return err
			}
		} else {
			// Days: no fleet view; fold the battery day windows.
			err := m.views.ReadBatteryWindows(ctx, s.viewFiles(views.BatteryView(res), from, to), "", from, to, func(_ string, w agg.Window) {
				f := acc[w.Start]
				if f == nil {
					f = &agg.FleetStats{}
					acc[w.Start] = f
				}
				f.AddBattery(&w.Stats)
			})
			if err != nil {
				return err
			}
		}
		// The speed side folds straight into the fleet windows; only for
		// windows the batch side also has (those around the cut, and late
		// readings) are the batteries kept, to count each battery once.
		speedOnly := map[int64]*agg.FleetStats{}
		shared := map[int64]map[string]bool{}
		err := m.speed.BatteryWindowsAll(ctx, res, from, to, v, func(id string, start int64, st *agg.BatteryStats) {
			if start < from || start >= to {
				return
			}
			f := acc[start]
			if f == nil {
				f = speedOnly[start]
				if f == nil {
					f = &agg.FleetStats{}
					speedOnly[start] = f
				}
			} else {
				if shared[start] == nil {
					shared[start] = map[string]bool{}
				}
				shared[start][id] = true
			}
			f.AddBattery(st)
		})
		if err != nil {
			return err
		}
		if len(shared) > 0 {
			starts := make([]int64, 0, len(shared))
			for s := range shared {
				starts = append(starts, s)
			}
			err := m.views.BatteriesIn(ctx, s.viewFiles(views.BatteryView(res), from, to), starts, func(start int64, id string) {
				if shared[start][id] {
					acc[start].Batteries-- // counted by the batch side already
				}
			})
			if err != nil {
				return err
			}
		}
		for start, f := range speedOnly {
			acc[start] = f
		}
		for start, f := range acc {
			out = append(out, FleetWindow{Start: start, Stats: *f})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Start < out[j].Start })
		return nil
	})
	return out, fr, err
}

// RoomDay is one room's energy report for one local day.
type RoomDay struct {
	RoomID string `json:"room_id"`
	Day    string `json:"day"`
	// Closed days come from the batch view (Revision counts re-closes);
	// open days are integrated from the speed layer's events up to now.
	Closed   bool  `json:"closed"`
	Revision int64 `json:"revision,omitempty"`
	agg.RoomDay
	WasteWh  float64 `json:"waste_wh"`
	EnergyWh float64 `json:"energy_wh"`
}

func (d *RoomDay) total() {
	d.WasteWh, d.EnergyWh = 0, 0
	for _, u := range d.ByType {
		d.WasteWh += u.WasteWh
		d.EnergyWh += u.EnergyWh
	}
}

// closed reports whether batch has closed day in snapshot s.
func (s *snapshot) closed(day agg.Day) bool {
	return s.man != nil && s.man.ClosedThrough != "" && day.String() <= s.man.ClosedThrough
}

func fromRows(room string, day string, rows []views.RoomDayRow) RoomDay {
	d := RoomDay{RoomID: room, Day: day, Closed: true, RoomDay: agg.RoomDay{ByType: map[string]*agg.TypeUsage{}}}
	for _, r := range rows {
		d.OccupiedS, d.SoldS, d.Revision = r.OccupiedS, r.SoldS, r.Revision
		if r.DeviceType != "" {
			u := r.TypeUsage
			d.ByType[r.DeviceType] = &u
		}
	}
	d.total()
	return d
}

// openDay integrates a room over an open day: the batch layer's state at
// the end of the last closed day, then the speed layer's events.
func (m *Merger) openDay(s *snapshot, room string, day agg.Day) (RoomDay, bool) {
	from, to := day.Bounds(m.loc)
	now := m.now().UnixMilli()
	to = max(min(to, now), from)
	evs, inSpeed := m.speed.RoomEvents(room)
	st, inBatch := s.endState[room]
	if !inSpeed && !inBatch {
		return RoomDay{}, false
	}
	if inBatch {
		evs = append(evs, stateEvents(st, from-1)...)
	}
	rep, _ := agg.Replay(evs, from, to)
	d := RoomDay{RoomID: room, Day: day.String(), RoomDay: rep}
	d.total()
	return d, true
}

// stateEvents are events that put a room into state st at ts.
func stateEvents(st agg.RoomState, ts int64) []agg.RoomEvent {
	out := []agg.RoomEvent{
		{Kind: schemas.KindOccupancy, TS: ts, Flag: st.Occupied},
		{Kind: schemas.KindStay, TS: ts, Flag: st.Sold},
	}
	for id, d := range st.Devices {
		out = append(out, agg.RoomEvent{Kind: schemas.KindDevice, TS: ts, DeviceID: id, DeviceType: d.Type, Flag: d.On, PowerW: d.PowerW})
	}
	return out
}

// roomsExact refuses room answers from a fallback snapshot. The speed
// layer's room events are not kept per batch version: once it applied a
// newer version (which may close more days, and from which a rebuilt
// partition replays), the older snapshot's closed days and end-of-day
// states no longer meet its events exactly.
func (m *Merger) roomsExact(s *snapshot) error {
	if s.speedVersion == 0 {
		return nil
	}
	return fmt.Errorf("%w: the speed layer moved to batch version %d, which cannot be loaded (%s); room reports are exact again once the store answers",
		ErrUnavailable, s.speedVersion, m.storeError())
}

// RoomDays returns one room's reports for the local days from..to
// (inclusive). found is false when neither side knows the room.
func (m *Merger) RoomDays(ctx context.Context, room string, from, to agg.Day) (out []RoomDay, fr Freshness, found bool, err error) {
	err = m.at(ctx, func(s *snapshot, _ int64) error {
		if err := m.roomsExact(s); err != nil {
			return err
		}
		out, found = out[:0], false
		fr = m.freshness(s)
		_, found = s.endState[room]
		if _, ok := m.speed.RoomEvents(room); ok {
			found = true
		}
		// Compare as dates: "10000-01-01" sorts before "9999-12-31".
		for d := from; d.Compare(to) <= 0; d = d.Next() {
			if s.closed(d) {
				if rows, ok := s.roomDays[d.String()][room]; ok {
					out = append(out, fromRows(room, d.String(), rows))
					found = true
				}
				continue
			}
			if rd, ok := m.openDay(s, room, d); ok {
				out = append(out, rd)
			}
		}
		return nil
	})
	return out, fr, found, err
}

// Hotel returns every room's report for one local day.
func (m *Merger) Hotel(ctx context.Context, day agg.Day) (out []RoomDay, fr Freshness, err error) {
	err = m.at(ctx, func(s *snapshot, _ int64) error {
		if err := m.roomsExact(s); err != nil {
			return err
		}
		out = []RoomDay{}
		fr = m.freshness(s)
		if s.closed(day) {
			for room, rows := range s.roomDays[day.String()] {
				out = append(out, fromRows(room, day.String(), rows))
			}
			return nil
		}
		rooms := map[string]bool{}
		for _, r := range m.speed.Rooms() {
			rooms[r] = true
		}
		for r := range s.endState {
			rooms[r] = true
		}
		for r := range rooms {
			if rd, ok := m.openDay(s, r, day); ok {
				out = append(out, rd)
			}
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].RoomID < out[j].RoomID })
	return out, fr, err
}

// partOverlaps reports whether a view partition (a UTC hour 2006-01-02T15
// or day 2006-01-02) can hold windows starting in [from, to).
func partOverlaps(part string, from, to int64) bool {
	layout, span := "2006-01-02T15", time.Hour
	if len(part) == 10 {
		layout, span = "2006-01-02", 24*time.Hour
	}
	t, err := time.Parse(layout, part)
	if err != nil {
		return true
	}
	start := t.UnixMilli()
	return start < to && start+span.Milliseconds() > from
}
