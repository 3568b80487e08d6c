package alerts_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/gridlake/gridlake/alerts"
	"github.com/gridlake/gridlake/schemas"
)

// BenchmarkEvaluator_Readings is the evaluator's cost per battery reading
// with the default rules, on one partition's share of the reference fleet
// (2,500 batteries at 1 Hz, a few readings out of order), as the speed
// layer feeds it (with a slot per battery).
func BenchmarkEvaluator_Readings(b *testing.B) {
	const batteries = 2500
	ids := make([]string, batteries)
	for i := range ids {
		ids[i] = fmt.Sprintf("bat-%05d", i)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const start = int64(1_795_000_000_000)
	evs := make([]schemas.Event, 0, 60*batteries)
	recs := make([]int64, 0, cap(evs))
	for s := int64(0); s < 60; s++ {
		for i, id := range ids {
			ts := start + s*1000 + int64(i%1000)
			if rng.IntN(20) == 0 {
				ts -= 2000 // a little late
			}
			evs = append(evs, schemas.Event{Kind: schemas.KindBattery, Battery: schemas.Battery{BatteryID: id, TS: ts,
				TemperatureC: 25 + rng.Float64()*25, SOCPct: rng.Float64() * 100, VoltageV: 400, CurrentA: -10}})
			recs = append(recs, start+s*1000+int64(i%1000)+50)
		}
	}
	slots := make([]int32, batteries)
	ev := alerts.NewEvaluator(alerts.Defaults(), 60_000, 300_000, true)
	ev.SetNext(0)
	var out []alerts.Transition
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i % len(evs)
		lap := int64(i/len(evs)) * 60_000
		e := evs[j]
		e.Battery.TS += lap
		ev.ObserveAt(int64(i), recs[j]+lap, &e, &slots[j%batteries])
		if j%500 == 0 {
			out = ev.Drain(out[:0])
			ev.TakeFleet()
		}
	}
}
