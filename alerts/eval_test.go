package alerts_test

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gridlake/gridlake/alerts"
	"github.com/gridlake/gridlake/internal/reference"
	"github.com/gridlake/gridlake/schemas"
)

// testRules are short enough for a 40-minute stream to cross each of them
// both ways.
func testRules() []alerts.Rule {
	rs := []alerts.Rule{
		{Name: "hot", Kind: alerts.KindThreshold, Severity: "critical", Metric: "temperature_c", Op: ">", Fire: 45, Clear: 42, For: alerts.Duration(30 * time.Second)},
		{Name: "hot_now", Kind: alerts.KindThreshold, Severity: "info", Metric: "temperature_c", Op: ">", Fire: 50, Clear: 50},
		{Name: "soc_low", Kind: alerts.KindThreshold, Severity: "warning", Metric: "soc_pct", Op: "<", Fire: 15, Clear: 20, For: alerts.Duration(time.Minute)},
		{Name: "silent", Kind: alerts.KindSilent, Severity: "warning", After: alerts.Duration(2 * time.Minute)},
		{Name: "fleet_low", Kind: alerts.KindFleetShare, Severity: "critical", Below: 0.8, For: alerts.Duration(time.Minute)},
		{Name: "waste", Kind: alerts.KindRoomWaste, Severity: "warning", After: alerts.Duration(5 * time.Minute)},
	}
	if err := alerts.Validate(rs); err != nil {
		panic(err)
	}
	return rs
}

// records partitions a stream like a keyed producer and validates each
// message like the speed layer.
func records(t testing.TB, seed uint64, parts int) []reference.Record {
	return recordsOf(t, reference.StreamOptions{Seed: seed, Batteries: 40, Rooms: 8, Start: time.UnixMilli(1_795_000_000_000),
		Duration: 40 * time.Minute, Every: 10 * time.Second, Lateness: time.Minute}, parts)
}

func recordsOf(t testing.TB, o reference.StreamOptions, parts int) []reference.Record {
	msgs := reference.AlertStream(o)
	next := map[string]int64{}
	out := make([]reference.Record, 0, len(msgs))
	for _, m := range msgs {
		h := fnv.New32a()
		h.Write(m.Key)
		p := int(h.Sum32() % uint32(parts))
		k := fmt.Sprint(m.Topic, p)
		ev, rej := schemas.Validate(schemas.DefaultLimits(), m.Topic, m.Key, m.Value, m.Time)
		r := reference.Record{Topic: m.Topic, Partition: p, Offset: next[k], RecordMS: m.Time.UnixMilli()}
		if rej.OK() {
			r.Event = &ev
		}
		next[k]++
		out = append(out, r)
	}
	return out
}

// run feeds the records to one evaluator per partition and a fleet, in
// the interleaving given by the stream, restarting everything from
// snapshots at random points (each partition then reads again from its
// snapshot's refill offset), and returns the transitions by (ID, State).
func run(t testing.TB, rules []alerts.Rule, recs []reference.Record, parts int, restarts int, seed uint64) map[reference.AlertKey]alerts.Transition {
	return runReload(t, rules, rules, recs, parts, restarts, seed)
}

// runReload is run with the rules replaced by reload at the restarts (a
// reloaded rules file: the speed layer rebuilds each evaluator from its
// snapshot with the new rules).
func runReload(t testing.TB, rules, reload []alerts.Rule, recs []reference.Record, parts int, restarts int, seed uint64) map[reference.AlertKey]alerts.Transition {
	r := rand.New(rand.NewPCG(seed, 7))
	lateness, ahead := time.Minute.Milliseconds(), schemas.DefaultLimits().MaxAhead.Milliseconds()
	got := map[reference.AlertKey]alerts.Transition{}
	var buf []alerts.Transition
	collect := func(ts []alerts.Transition) {
		for _, tr := range ts {
			k := reference.AlertKey{ID: tr.ID(), State: tr.State}
			if old, ok := got[k]; ok && old != tr {
				t.Fatalf("%v emitted twice differently:\n%+v\n%+v", k, old, tr)
			}
			got[k] = tr
		}
	}
	type key struct {
		topic string
		p     int
	}
	var evs map[key]*alerts.Evaluator
	var fleet *alerts.Fleet
	fresh := func() {
		if fleet != nil {
			rules = reload
		}
		evs = map[key]*alerts.Evaluator{}
		for p := 0; p < parts; p++ {
			evs[key{schemas.TopicBattery, p}] = alerts.NewEvaluator(rules, lateness, ahead, true)
			evs[key{schemas.TopicRoom, p}] = alerts.NewEvaluator(rules, lateness, ahead, false)
		}
		fleet = alerts.NewFleet(rules, parts)
	}
	fresh()
	byPart := map[key][]reference.Record{}
	for _, rec := range recs {
		byPart[key{rec.Topic, rec.Partition}] = append(byPart[key{rec.Topic, rec.Partition}], rec)
	}
	slots := map[string]*int32{}
	cuts := map[int]bool{}
	for i := 0; i < restarts; i++ {
		cuts[r.IntN(len(recs))] = true
	}
	for i := 0; i < len(recs); i++ {
		rec := recs[i]
		k := key{rec.Topic, rec.Partition}
		ev := evs[k]
		// Like the speed layer, hand the evaluator a slot per battery,
		// sometimes holding another battery's index (a slot is a hint).
		var slot *int32
		if rec.Event != nil && rec.Event.Kind == schemas.KindBattery {
			id := rec.Event.Battery.BatteryID
			if slots[id] == nil {
				slots[id] = new(int32)
			}
			slot = slots[id]
			if r.IntN(50) == 0 {
				*slot = int32(r.IntN(8)) - 1
			}
		}
		ev.ObserveAt(rec.Offset, rec.RecordMS, rec.Event, slot)
		// The speed layer drains once per fetch: here after a random
		// number of records, and every partition before a snapshot.
		if !cuts[i] && i < len(recs)-1 && r.IntN(40) > 0 {
			continue
		}
		for k, ev := range evs {
			if !cuts[i] && i < len(recs)-1 && k != (key{rec.Topic, rec.Partition}) {
				continue
			}
			buf = ev.Drain(buf[:0])
			if k.topic == schemas.TopicBattery {
				wm, ok := ev.Watermark()
				buf = fleet.Merge(k.p, wm, ok, ev.TakeFleet(), buf)
			}
			collect(buf)
		}
		if !cuts[i] {
			continue
		}
		// A restart: snapshot every evaluator and the fleet, build fresh
		// ones from the snapshots, and replay each partition's records
		// from its refill offset up to where it was.
		states := map[key]alerts.PartState{}
		offs := map[int]int64{}
		for k, ev := range evs {
			states[k] = ev.Snapshot()
			if k.topic == schemas.TopicBattery {
				offs[k.p] = ev.Next()
			}
		}
		fs := fleet.Snapshot(offs)
		fresh()
		fleet.Restore(fs)
		for k, st := range states {
			if err := evs[k].Restore(st); err != nil {
				t.Fatal(err)
			}
			for _, rec := range byPart[k] {
				if rec.Offset >= st.Refill && rec.Offset < st.Next {
					evs[k].Observe(rec.Offset, rec.RecordMS, rec.Event)
				}
			}
			if tr := evs[k].Drain(nil); len(tr) > 0 {
				t.Fatalf("refilling %v emitted %v", k, tr)
			}
		}
	}
	return got
}

func compare(t testing.TB, got, want map[reference.AlertKey]alerts.Transition) {
	t.Helper()
	kinds := map[alerts.Kind]int{}
	bad := 0
	for k, w := range want {
		kinds[w.Kind]++
		g, ok := got[k]
		if !ok {
			if bad++; bad < 10 {
				t.Errorf("missing %v at %d", k, w.At)
			}
			continue
		}
		if g.At != w.At || g.Kind != w.Kind || (w.Value != 0 && math.Abs(g.Value-w.Value) > 1e-9) {
			if bad++; bad < 10 {
				t.Errorf("%v: got at %d value %g, want at %d value %g", k, g.At, g.Value, w.At, w.Value)
			}
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			if bad++; bad < 10 {
				t.Errorf("unexpected %v at %d", k, g.At)
			}
		}
	}
	for _, kind := range []alerts.Kind{alerts.KindThreshold, alerts.KindSilent, alerts.KindFleetShare, alerts.KindRoomWaste} {
		if kinds[kind] < 2 {
			t.Errorf("the stream gives %d transitions of kind %s: too weak a test", kinds[kind], kind)
		}
	}
	t.Logf("%d transitions by kind: %v", len(want), kinds)
	if bad > 0 {
		t.Fatalf("%d differences; %d transitions expected (%v)", bad, len(want), kinds)
	}
}

func TestEvaluator_MatchesReferenceAcrossRestarts(t *testing.T) {
	const parts = 3
	rules := testRules()
	for seed := uint64(1); seed <= 6; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			recs := records(t, seed, parts)
			want := reference.Alerts(rules, time.Minute, parts, recs)
			compare(t, run(t, rules, recs, parts, 0, seed), want)
			compare(t, run(t, rules, recs, parts, 5, seed), want)
		})
	}
}

// TestEvaluator_ReloadKeepsAlertsOfKeptRules replaces the rules mid-stream
// (one rule dropped, one changed) through snapshots: the alerts of the
// rules kept unchanged come out exactly as without the reload.
func TestEvaluator_ReloadKeepsAlertsOfKeptRules(t *testing.T) {
	const parts = 3
	rules := testRules()
	var reload []alerts.Rule
	for _, r := range rules {
		switch r.Name {
		case "hot_now":
		case "soc_low":
			r.Fire, r.Clear = 5, 8
			r.Name = "soc_very_low"
			reload = append(reload, r)
		default:
			reload = append(reload, r)
		}
	}
	for seed := uint64(1); seed <= 3; seed++ {
		recs := records(t, seed, parts)
		want := reference.Alerts(rules, time.Minute, parts, recs)
		got := runReload(t, rules, reload, recs, parts, 1, seed)
		kept := func(m map[reference.AlertKey]alerts.Transition) map[reference.AlertKey]alerts.Transition {
			out := map[reference.AlertKey]alerts.Transition{}
			for k, tr := range m {
				if tr.Rule != "hot_now" && tr.Rule != "soc_low" && tr.Rule != "soc_very_low" {
					out[k] = tr
				}
			}
			return out
		}
		compare(t, kept(got), kept(want))
	}
}

// Readings several times a second, out of order within a second: each
// battery must still see its readings in ts order.
func TestEvaluator_SubSecondReadingsInOrder(t *testing.T) {
	const parts = 2
	rules := testRules()
	for seed := uint64(2); seed <= 4; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			recs := recordsOf(t, reference.StreamOptions{Seed: seed, Batteries: 6, Rooms: 4, Start: time.UnixMilli(1_795_000_000_000),
				Duration: 25 * time.Minute, Every: 300 * time.Millisecond, Lateness: time.Minute}, parts)
			want := reference.Alerts(rules, time.Minute, parts, recs)
			compare(t, run(t, rules, recs, parts, 3, seed), want)
		})
	}
}

// A reading exactly After after the last one is in time; one millisecond
// later is a silence, fired at the deadline whether a reading or the
// watermark passes it, and only once the watermark is past the deadline.
func TestEvaluator_SilenceBoundary(t *testing.T) {
	rules := []alerts.Rule{{Name: "silent", Kind: alerts.KindSilent, Severity: "warning", After: alerts.Duration(2 * time.Minute)}}
	if err := alerts.Validate(rules); err != nil {
		t.Fatal(err)
	}
	const lateness, after = 60_000, 120_000
	ev := alerts.NewEvaluator(rules, lateness, 300_000, true)
	ev.SetNext(0)
	off := int64(0)
	reading := func(id string, ts, rec int64) {
		e := schemas.Event{Kind: schemas.KindBattery, Battery: schemas.Battery{BatteryID: id, TS: ts, TemperatureC: 20, SOCPct: 50}}
		ev.Observe(off, rec, &e)
		off++
	}
	drain := func() []string {
		var got []string
		for _, tr := range ev.Drain(nil) {
			got = append(got, fmt.Sprintf("%s@%d", tr.State, tr.At))
		}
		return got
	}
	reading("b", 0, 0)
	reading("b", after, after)         // exactly After later: in time
	reading("b", 2*after+1, 2*after+1) // one ms too late: silent from 2*after
	reading("clock", 2*after+2+lateness, 2*after+2+lateness)
	want := fmt.Sprint([]string{fmt.Sprintf("%s@%d", alerts.Firing, 2*after), fmt.Sprintf("%s@%d", alerts.Resolved, 2*after+1)})
	if got := fmt.Sprint(drain()); got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	// Now b stops: the watermark reaching its deadline is not enough, passing it is.
	dl := int64(2*after + 1 + after)
	reading("clock", dl+lateness, dl+lateness)
	if got := drain(); len(got) != 0 {
		t.Fatalf("at the deadline: got %v, want nothing", got)
	}
	reading("clock", dl+lateness+1, dl+lateness+1)
	if got, want := fmt.Sprint(drain()), fmt.Sprint([]string{fmt.Sprintf("%s@%d", alerts.Firing, dl)}); got != want {
		t.Fatalf("past the deadline: got %s, want %s", got, want)
	}
}
