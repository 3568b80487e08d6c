package agg

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/gridlake/gridlake/schemas"
)

func close(a, b float64) bool {
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

// Splitting readings into parts, aggregating each and merging gives the
// statistics computed directly over all readings.
func TestBatteryStats_MergeEqualsDirect(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for trial := 0; trial < 200; trial++ {
		n := 1 + r.IntN(300)
		readings := make([]Reading, n)
		for i := range readings {
			readings[i] = Reading{TS: int64(r.IntN(1e6)), Metrics: Metrics{
				VoltageV: 1000 + r.NormFloat64()*0.001, CurrentA: r.NormFloat64() * 50, TemperatureC: 20 + r.Float64()*5, SOCPct: r.Float64() * 100}}
		}
		var whole BatteryStats
		for _, x := range readings {
			whole.Add(x)
		}
		var merged BatteryStats
		for i := 0; i < n; {
			j := i + 1 + r.IntN(n-i)
			var part BatteryStats
			for _, x := range readings[i:j] {
				part.Add(x)
			}
			merged.Merge(&part)
			i = j
		}
		// Direct two-pass reference.
		var sum, lastTS float64
		minV, maxV := math.Inf(1), math.Inf(-1)
		for _, x := range readings {
			sum += x.VoltageV
			minV, maxV = math.Min(minV, x.VoltageV), math.Max(maxV, x.VoltageV)
		}
		mean := sum / float64(n)
		var ss float64
		for _, x := range readings {
			ss += (x.VoltageV - mean) * (x.VoltageV - mean)
		}
		std := math.Sqrt(ss / float64(n))
		_ = lastTS
		for _, s := range []BatteryStats{whole, merged} {
			if s.N != int64(n) || s.Voltage.Min != minV || s.Voltage.Max != maxV || !close(s.Voltage.Mean, mean) ||
				math.Abs(s.Voltage.Std(s.N)-std) > 1e-9 {
				t.Fatalf("trial %d: got n=%d mean=%v std=%v, want n=%d mean=%v std=%v", trial, s.N, s.Voltage.Mean, s.Voltage.Std(s.N), n, mean, std)
			}
		}
		maxTS := readings[0].TS
		for _, x := range readings {
			if x.TS > maxTS {
				maxTS = x.TS
			}
		}
		if merged.Last.TS != maxTS || whole.Last.TS != maxTS {
			t.Fatalf("last ts %d/%d, want %d", merged.Last.TS, whole.Last.TS, maxTS)
		}
	}
}

// Folding batteries into fleet windows on two sides and merging the sides
// gives the fleet window of all the batteries folded on one side.
func TestFleetStats_MergeEqualsOneSide(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	for trial := 0; trial < 200; trial++ {
		batts := make([]BatteryStats, 1+r.IntN(40))
		for i := range batts {
			for k := r.IntN(30); k >= 0; k-- {
				batts[i].Add(Reading{TS: int64(r.IntN(1e6)), Metrics: Metrics{
					VoltageV: 1000 + r.NormFloat64(), CurrentA: r.NormFloat64() * 50, TemperatureC: 20 + r.Float64()*5, SOCPct: r.Float64() * 100}})
			}
		}
		var whole, a, b FleetStats
		cut := r.IntN(len(batts) + 1)
		for i := range batts {
			whole.AddBattery(&batts[i])
			if i < cut {
				a.AddBattery(&batts[i])
			} else {
				b.AddBattery(&batts[i])
			}
		}
		a.Merge(&b)
		if a.Readings != whole.Readings || a.Batteries != whole.Batteries {
			t.Fatalf("trial %d: %d readings of %d batteries, want %d of %d", trial, a.Readings, a.Batteries, whole.Readings, whole.Batteries)
		}
		for i, m := range [][2]Moments{{a.Voltage, whole.Voltage}, {a.Current, whole.Current}, {a.Temperature, whole.Temperature}, {a.SOC, whole.SOC}} {
			if m[0].Min != m[1].Min || m[0].Max != m[1].Max || !close(m[0].Mean, m[1].Mean) {
				t.Fatalf("trial %d metric %d: got %+v, want %+v", trial, i, m[0], m[1])
			}
		}
	}
}

// refState is the state semantics of DESIGN §4 written as directly as
// possible: the state at t is that of the latest event with ts <= t, and
// at equal ts off / unoccupied / check_out win.
func refState(evs []RoomEvent, match func(RoomEvent) bool, t int64) (bool, int64, bool) {
	var best *RoomEvent
	for i := range evs {
		e := &evs[i]
		if !match(*e) || e.TS > t {
			continue
		}
		if best == nil || e.TS > best.TS || (e.TS == best.TS && !e.Flag) {
			best = e
		}
	}
	if best == nil {
		return false, 0, false
	}
	return best.Flag, best.TS, true
}

// refPower is the power of the event that switched the device on: the
// latest on event at a ts where the state before it was off.
func refPower(evs []RoomEvent, dev string, t int64) float64 {
	match := func(e RoomEvent) bool { return e.Kind == schemas.KindDevice && e.DeviceID == dev }
	var ons []RoomEvent
	for _, e := range evs {
		if match(e) && e.Flag && e.TS <= t {
			ons = append(ons, e)
		}
	}
	sort.Slice(ons, func(i, j int) bool { return ons[i].TS > ons[j].TS })
	for _, on := range ons {
		if s, _, _ := refState(evs, match, on.TS); !s {
			continue // an off at the same ts wins
		}
		if before, _, _ := refState(evs, match, on.TS-1); !before {
			return on.PowerW
		}
	}
	return 0
}

// refReport integrates the report second by second... at every change point
// it evaluates the state from scratch, so no incremental logic is shared.
func refReport(evs []RoomEvent, from, to int64) RoomDay {
	points := []int64{from, to}
	for _, e := range evs {
		if e.TS > from && e.TS < to {
			points = append(points, e.TS)
		}
	}
	sort.Slice(points, func(i, j int) bool { return points[i] < points[j] })
	day := RoomDay{ByType: map[string]*TypeUsage{}}
	devs := map[string]string{}
	for _, e := range evs {
		if e.Kind == schemas.KindDevice && e.TS < to {
			devs[e.DeviceID] = e.DeviceType
			if day.ByType[e.DeviceType] == nil {
				day.ByType[e.DeviceType] = &TypeUsage{}
			}
		}
	}
	for i := 0; i+1 < len(points); i++ {
		a, b := points[i], points[i+1]
		if b <= a {
			continue
		}
		dt := float64(b-a) / 1000
		occ, _, _ := refState(evs, func(e RoomEvent) bool { return e.Kind == schemas.KindOccupancy }, a)
		sold, _, _ := refState(evs, func(e RoomEvent) bool { return e.Kind == schemas.KindStay }, a)
		if occ {
			day.OccupiedS += dt
		}
		if sold {
			day.SoldS += dt
		}
		for dev, typ := range devs {
			on, _, _ := refState(evs, func(e RoomEvent) bool { return e.Kind == schemas.KindDevice && e.DeviceID == dev }, a)
			if !on {
				continue
			}
			wh := dt * refPower(evs, dev, a) / 3600
			u := day.ByType[typ]
			u.OnS += dt
			u.EnergyWh += wh
			if !occ {
				u.OnVacantS += dt
			}
			if !sold {
				u.OnUnsoldS += dt
			}
			if !occ || !sold {
				u.WasteWh += wh
			}
		}
	}
	return day
}

func randomRoomEvents(r *rand.Rand, n int, span int64) []RoomEvent {
	devs := []struct{ id, typ string }{{"l1", "light"}, {"l2", "light"}, {"h", "hvac"}, {"tv", "tv"}}
	seen := map[schemas.Identity]bool{}
	var evs []RoomEvent
	for len(evs) < n {
		// Coarse timestamps so equal-ts ties happen often.
		e := RoomEvent{TS: int64(r.IntN(int(span/60000))) * 60000, Flag: r.IntN(2) == 0}
		switch r.IntN(3) {
		case 0:
			d := devs[r.IntN(len(devs))]
			e.Kind, e.DeviceID, e.DeviceType = schemas.KindDevice, d.id, d.typ
			if e.Flag && r.IntN(4) > 0 {
				e.PowerW = float64(10 + r.IntN(1000))
			}
		case 1:
			e.Kind = schemas.KindOccupancy
		default:
			e.Kind = schemas.KindStay
		}
		if id := e.Identity("R"); !seen[id] {
			seen[id] = true
			evs = append(evs, e)
		}
	}
	return evs
}

func TestReplay_MatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	span := int64(3 * 86_400_000)
	for trial := 0; trial < 300; trial++ {
		evs := randomRoomEvents(r, 1+r.IntN(60), span)
		from := int64(r.IntN(int(span / 2)))
		to := from + int64(r.IntN(int(span/2)))
		want := refReport(evs, from, to)
		r.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
		got, _ := Replay(evs, from, to)
		if !close(got.OccupiedS, want.OccupiedS) || !close(got.SoldS, want.SoldS) || len(got.ByType) != len(want.ByType) {
			t.Fatalf("trial %d: room got %+v want %+v", trial, got, want)
		}
		for typ, w := range want.ByType {
			g := got.ByType[typ]
			if g == nil || !close(g.OnS, w.OnS) || !close(g.OnVacantS, w.OnVacantS) || !close(g.OnUnsoldS, w.OnUnsoldS) ||
				!close(g.EnergyWh, w.EnergyWh) || !close(g.WasteWh, w.WasteWh) {
				t.Fatalf("trial %d %s: got %+v want %+v", trial, typ, g, w)
			}
		}
	}
}

// The examples DESIGN §4 spells out.
func TestReplay_DesignExamples(t *testing.T) {
	dev := func(ts int64, on bool, w float64) RoomEvent {
		return RoomEvent{Kind: schemas.KindDevice, TS: ts * 1000, DeviceID: "l", DeviceType: "light", Flag: on, PowerW: w}
	}
	cases := []struct {
		name   string
		evs    []RoomEvent
		onS    float64
		energy float64
	}{
		{"on on off counts from the first on", []RoomEvent{dev(10, true, 36), dev(20, true, 99), dev(40, false, 0)}, 30, 30 * 36.0 / 3600},
		{"off, lost on, off counts nothing", []RoomEvent{dev(10, false, 0), dev(40, false, 0)}, 0, 0},
		{"equal ts: off wins", []RoomEvent{dev(10, true, 36), dev(10, false, 0)}, 0, 0},
		{"no power: energy 0", []RoomEvent{dev(0, true, 0)}, 100, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, _ := Replay(c.evs, 0, 100_000)
			u := got.ByType["light"]
			if u == nil || !close(u.OnS, c.onS) || !close(u.EnergyWh, c.energy) {
				t.Fatalf("got %+v, want on_s %v energy %v", u, c.onS, c.energy)
			}
			// A light on in an unoccupied, unsold room wastes all it uses.
			if !close(u.WasteWh, u.EnergyWh) || !close(u.OnVacantS, u.OnS) {
				t.Fatalf("waste %+v", u)
			}
		})
	}
}

func TestDay_BoundsAcrossDST(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	from, to := Day{2026, time.March, 29}.Bounds(berlin)
	if to-from != 23*3_600_000 {
		t.Fatalf("spring-forward day lasts %v", time.Duration(to-from)*time.Millisecond)
	}
	seoul, _ := time.LoadLocation("Asia/Seoul")
	d := DayOf(time.Date(2026, 11, 21, 15, 30, 0, 0, time.UTC).UnixMilli(), seoul)
	if d.String() != "2026-11-22" {
		t.Fatalf("15:30 UTC is %s in Seoul, want 2026-11-22", d)
	}
}

// TestRoomTimeline_SpansIntegrateToReference: a timeline's spans, summed,
// are the brute-force reference report: on seconds and energy per device
// type, occupied and sold seconds; spans never overlap within a track.
func TestRoomTimeline_SpansIntegrateToReference(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	span := int64(3 * 86_400_000)
	for trial := 0; trial < 300; trial++ {
		evs := randomRoomEvents(r, 1+r.IntN(60), span)
		from := int64(r.IntN(int(span / 2)))
		to := from + int64(r.IntN(int(span/2)))
		want := refReport(evs, from, to)
		r.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
		tl := RoomTimeline(evs, from, to)
		sum := func(spans []Span) (s float64) {
			last := int64(-1 << 62)
			for _, x := range spans {
				if x.From < last || x.To <= x.From || x.From < from || x.To > to {
					t.Fatalf("trial %d: bad span %+v after %d in [%d,%d)", trial, x, last, from, to)
				}
				last = x.To
				s += float64(x.To-x.From) / 1000
			}
			return s
		}
		if !close(sum(tl.Occupied), want.OccupiedS) || !close(sum(tl.Sold), want.SoldS) {
			t.Fatalf("trial %d: occupied %v sold %v, want %v %v", trial, sum(tl.Occupied), sum(tl.Sold), want.OccupiedS, want.SoldS)
		}
		onS, wh := map[string]float64{}, map[string]float64{}
		for _, d := range tl.Devices {
			onS[d.DeviceType] += sum(d.On)
			for _, x := range d.On {
				wh[d.DeviceType] += float64(x.To-x.From) / 1000 * x.PowerW / 3600
			}
		}
		for typ, w := range want.ByType {
			if !close(onS[typ], w.OnS) || !close(wh[typ], w.EnergyWh) {
				t.Fatalf("trial %d %s: on %v s %v Wh, want %v s %v Wh", trial, typ, onS[typ], wh[typ], w.OnS, w.EnergyWh)
			}
		}
	}
}
