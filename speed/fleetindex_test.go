package speed

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/internal/reference"
	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/schemas"
)

// fleetStream is a random stream of one battery partition: readings of a
// few batteries across a UTC midnight, with duplicates (the same identity
// again, at a later offset), reordering, late readings (an hour and more
// behind the record time) and invalid messages.
func fleetStream(r *rand.Rand, n int) []kafka.Message {
	base := time.Date(2026, 11, 20, 22, 30, 0, 0, time.UTC).UnixMilli()
	var out []kafka.Message
	for off := int64(0); off < int64(n); off++ {
		rec := base + off*2_000 // the record time moves on
		ts := rec - r.Int64N(30_000)
		switch x := r.IntN(20); {
		case x == 0 && len(out) > 0: // a duplicate of an earlier record
			d := out[r.IntN(len(out))]
			d.Offset, d.Time = off, time.UnixMilli(rec)
			out = append(out, d)
			continue
		case x == 1: // late
			ts = rec - 60*60_000 - r.Int64N(90*60_000)
		case x == 2: // ahead by up to 4 min, still valid
			ts = rec + r.Int64N(4*60_000)
		}
		ts -= ts % 500 // a coarse clock, so identities collide
		id := fmt.Sprintf("B-%d", r.IntN(7))
		v := fmt.Sprintf(`{"battery_id":%q,"ts":%d,"voltage_v":%g,"current_a":%g,"temperature_c":%g,"soc_pct":%g}`,
			id, ts, 40+r.Float64()*20, -200+r.Float64()*400, float64(r.IntN(80))-10, float64(r.IntN(1001))/10)
		if r.IntN(50) == 0 {
			v = v[:len(v)/2] // malformed
		}
		out = append(out, kafka.Message{Topic: schemas.TopicBattery, Partition: 0, Offset: off, Key: []byte(id), Value: []byte(v), Time: time.UnixMilli(rec)})
	}
	return out
}

// TestFleetIndex_ExactAgainstReference drives one partition's state through
// random streams with generation rotations and batch cuts on generation
// boundaries, and compares the fleet windows of every resolution above
// every boundary held (the batteries, readings, extremes and means), the
// newest reading of every battery and the batteries of every window with
// the reference over the records at or above that boundary.
func TestFleetIndex_ExactAgainstReference(t *testing.T) {
	limits := schemas.DefaultLimits()
	for seed := uint64(1); seed <= 40; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		msgs := fleetStream(r, 300+r.IntN(500))
		p := newBatteryPart(0)
		dec := schemas.NewDecoder(limits)
		var ev schemas.Event
		cut := int64(0)
		checks := 0
		for i, m := range msgs {
			if r.IntN(25) == 0 {
				p.rotate(m.Offset)
			}
			if r.IntN(120) == 0 && len(p.gens) > 1 { // a batch cut on a boundary held
				c := p.gens[1+r.IntN(len(p.gens)-1)].start
				if !p.dropBelow(c, 24*time.Hour) {
					t.Fatalf("seed %d: cut at boundary %d refused", seed, c)
				}
				cut = c
			}
			if rej := dec.Decode(m.Topic, m.Key, m.Value, m.Time, &ev); rej.OK() {
				p.apply(&ev.Battery, m.Time.UnixMilli(), false)
			}
			if i%97 == 96 || i == len(msgs)-1 {
				checkFleetIndex(t, seed, p, limits, msgs[:i+1], cut)
				checks++
			}
		}
		if checks == 0 {
			t.Fatal("nothing checked")
		}
	}
}

func checkFleetIndex(t *testing.T, seed uint64, p *batteryPart, limits schemas.Limits, msgs []kafka.Message, cut int64) {
	t.Helper()
	for _, g := range p.gens {
		if g.start < cut {
			t.Fatalf("seed %d: generation %d starts at %d below the cut %d", seed, g.id, g.start, cut)
		}
		ref := reference.BuildKept(limits, msgs, func(m kafka.Message) bool { return m.Offset >= g.start })
		for _, res := range []agg.Res{agg.Minutely, agg.Hourly, agg.Daily} {
			acc := map[int64]*fleetAcc{}
			p.fleet.fold(res, math.MinInt64/2, math.MaxInt64/2, g.id, acc)
			got := map[int64]agg.FleetStats{}
			for w, a := range acc {
				if a.n > 0 {
					got[w] = a.stats()
				} else if a.batteries != 0 {
					t.Fatalf("seed %d gen %d %s window %d: %d batteries without readings", seed, g.id, res, w, a.batteries)
				}
			}
			want := ref.FleetWindows(res)
			if len(got) != len(want) {
				t.Fatalf("seed %d above %d %s: %d windows, reference %d", seed, g.start, res, len(got), len(want))
			}
			for w, f := range want {
				s := got[w]
				if s.Readings != f.Readings || s.Batteries != f.Batteries ||
					!sameMetric(s.Voltage, f.Voltage) || !sameMetric(s.Current, f.Current) ||
					!sameMetric(s.Temperature, f.Temperature) || !sameMetric(s.SOC, f.SOC) {
					t.Fatalf("seed %d above %d %s window %d:\n got %+v\nwant %+v", seed, g.start, res, w, s, f)
				}
				// The batteries of the window, as the merge reads them back.
				var ids []string
				for id, bt := range p.batts {
					if bt.hasIn(res, w, g.id) {
						ids = append(ids, id)
					}
				}
				var wantIDs []string
				for id, rs := range ref.Readings {
					for _, x := range rs {
						if res.WindowStart(x.TS) == w {
							wantIDs = append(wantIDs, id)
							break
						}
					}
				}
				sort.Strings(ids)
				sort.Strings(wantIDs)
				if fmt.Sprint(ids) != fmt.Sprint(wantIDs) {
					t.Fatalf("seed %d above %d %s window %d: batteries %v, reference %v", seed, g.start, res, w, ids, wantIDs)
				}
			}
		}
		for id := range ref.Readings {
			want, _ := ref.Latest(id)
			bt := p.batts[id]
			if bt == nil {
				t.Fatalf("seed %d: battery %s not held", seed, id)
			}
			if got, ok := bt.latest(g.id); !ok || got != want {
				t.Fatalf("seed %d above %d: battery %s latest %+v, reference %+v", seed, g.start, id, got, want)
			}
		}
		for id, bt := range p.batts {
			if _, ok := ref.Readings[id]; !ok {
				if got, ok := bt.latest(g.id); ok {
					t.Fatalf("seed %d above %d: battery %s has latest %+v, reference none", seed, g.start, id, got)
				}
			}
		}
	}
}

func sameMetric(m agg.Moments, w reference.Metric) bool {
	return m.Min == w.Min && m.Max == w.Max && reference.Close(m.Mean, w.Mean)
}

// TestFleet_LayerFoldsPartitions checks Layer.Fleet and FleetBatteries
// over two partitions against the reference: batteries are counted per
// partition, and a battery lives in one, so the partitions' counts add up.
func TestFleet_LayerFoldsPartitions(t *testing.T) {
	limits := schemas.DefaultLimits()
	r := rand.New(rand.NewPCG(3, 3))
	l := &Layer{parts: map[partKey]*part{}, cuts: map[int64]lake.Cut{0: {}}}
	var all []kafka.Message
	dec := schemas.NewDecoder(limits)
	var ev schemas.Event
	for id := 0; id < 2; id++ {
		p := &part{key: partKey{schemas.TopicBattery, id}, bat: newBatteryPart(0)}
		l.parts[p.key] = p
		for _, m := range fleetStream(r, 400) {
			m.Partition = id
			m.Key = append([]byte(fmt.Sprintf("P%d-", id)), m.Key...)
			m.Value = []byte(strings.Replace(string(m.Value), `"B-`, fmt.Sprintf(`"P%d-B-`, id), 1))
			all = append(all, m)
			if rej := dec.Decode(m.Topic, m.Key, m.Value, m.Time, &ev); rej.OK() {
				p.bat.apply(&ev.Battery, m.Time.UnixMilli(), false)
			}
		}
	}
	ref := reference.Build(limits, all)
	for _, res := range []agg.Res{agg.Minutely, agg.Hourly, agg.Daily} {
		got, err := l.Fleet(context.Background(), res, math.MinInt64/2, math.MaxInt64/2, 0)
		if err != nil {
			t.Fatal(err)
		}
		want := ref.FleetWindows(res)
		if len(got) != len(want) || len(got) == 0 {
			t.Fatalf("%s: %d windows, reference %d", res, len(got), len(want))
		}
		var starts []int64
		for _, w := range got {
			f := want[w.Start]
			if s := w.Stats; s.Readings != f.Readings || s.Batteries != f.Batteries || !sameMetric(s.SOC, f.SOC) || !sameMetric(s.Voltage, f.Voltage) {
				t.Fatalf("%s window %d:\n got %+v\nwant %+v", res, w.Start, s, f)
			}
			starts = append(starts, w.Start)
		}
		n := map[int64]int64{}
		err = l.FleetBatteries(context.Background(), res, starts, 0, func(start int64, _ string) { n[start]++ })
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range got {
			if n[w.Start] != w.Stats.Batteries {
				t.Fatalf("%s window %d: FleetBatteries lists %d, the fleet counts %d", res, w.Start, n[w.Start], w.Stats.Batteries)
			}
		}
		// A few starts are looked up per battery, many by the battery's own
		// windows: both list the same.
		for _, w := range got[:min(len(got), 5)] {
			one := int64(0)
			err = l.FleetBatteries(context.Background(), res, []int64{w.Start}, 0, func(int64, string) { one++ })
			if err != nil || one != w.Stats.Batteries {
				t.Fatalf("%s window %d alone: FleetBatteries lists %d (%v), the fleet counts %d", res, w.Start, one, err, w.Stats.Batteries)
			}
		}
	}
}

// A reader that keeps every battery's newest reading and asks only for the
// batteries changed since its cursor (BatteryLatestSince) holds what
// BatteryLatestAll answers after every fetch, though each answer lists only
// the batteries of the fetches since; a change of state other than
// readings counted (the epoch) makes the next answer whole.
func TestBatteryLatestSince_ChangesAddUpToTheWhole(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(5, 5))
	l := &Layer{parts: map[partKey]*part{}, cuts: map[int64]lake.Cut{0: {}}}
	l.epoch.Store(1)
	var parts []*part
	for id := range 2 {
		p := &part{key: partKey{schemas.TopicBattery, id}, bat: newBatteryPart(0)}
		p.bat.seq = &l.seq
		l.parts[p.key] = p
		parts = append(parts, p)
	}
	replica := map[string]agg.Reading{}
	var cur LatestCursor
	base := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC).UnixMilli()
	for fetch := range 60 {
		// One fetch per partition: a few batteries of 50 read, in any
		// order of time.
		touched := map[string]bool{}
		for _, p := range parts {
			p.mu.Lock()
			p.bat.stamp = 0
			for range 1 + r.IntN(5) {
				id := fmt.Sprintf("P%d-B-%02d", p.key.id, r.IntN(25))
				b := schemas.Battery{BatteryID: id, TS: base + int64(fetch)*1000 - r.Int64N(120_000), SOCPct: r.Float64() * 100}
				if res, _ := p.bat.apply(&b, base+int64(fetch)*1000, false); res == counted {
					touched[id] = true
				}
			}
			p.mu.Unlock()
			l.seq.Add(1)
		}
		listed := map[string]bool{}
		next, full, err := l.BatteryLatestSince(ctx, 0, cur, func(id string, rd agg.Reading) {
			replica[id] = rd
			listed[id] = true
		})
		if err != nil {
			t.Fatal(err)
		}
		if full != (fetch == 0) {
			t.Fatalf("fetch %d: full %v, want a whole answer only first", fetch, full)
		}
		if fetch > 0 && len(listed) != len(touched) {
			t.Fatalf("fetch %d: the answer lists %d batteries, %d counted a reading since the cursor", fetch, len(listed), len(touched))
		}
		want := map[string]agg.Reading{}
		if err := l.BatteryLatestAll(ctx, 0, func(id string, rd agg.Reading) { want[id] = rd }); err != nil {
			t.Fatal(err)
		}
		if len(replica) != len(want) {
			t.Fatalf("fetch %d: the replica holds %d batteries, the layer %d", fetch, len(replica), len(want))
		}
		for id, w := range want {
			if replica[id] != w {
				t.Fatalf("fetch %d battery %s: replica %+v, layer %+v", fetch, id, replica[id], w)
			}
		}
		cur = next
	}
	l.epoch.Add(1)
	n := 0
	if _, full, err := l.BatteryLatestSince(ctx, 0, cur, func(string, agg.Reading) { n++ }); err != nil || !full || n != len(replica) {
		t.Fatalf("after another epoch: full %v with %d batteries (%v), want a whole answer of %d", full, n, err, len(replica))
	}
	if c, ok := ParseLatestCursor(cur.String()); !ok || c != cur {
		t.Fatalf("cursor %s reads back as %v (%v)", cur, c, ok)
	}
	for _, bad := range []string{"", "1", "x.2", "1.2.3", "-1.2", strings.Repeat("9", 40) + ".1"} {
		if _, ok := ParseLatestCursor(bad); ok {
			t.Errorf("cursor %q read as valid", bad)
		}
	}
}
