package serving

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gridlake/gridlake/agg"
)

// TestBatteryStatsJSON_MatchesEncodingJSON: the hand encoder of the
// battery stats answer writes exactly what encoding/json writes for the
// map the handler used to encode, over random windows with numbers of every
// magnitude and sign (exponent forms, negative zero, integers), and
// declines NaN and infinities.
func TestBatteryStatsJSON_MatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	specials := []float64{0, math.Copysign(0, -1), 1, -1, 1e-6, 9.99e-7, 1e-7, -1.5e-9, 1e20, 1e21, 123456789e15, 1e-300, 5e-324,
		math.MaxFloat64, 0.1, 51.2, 1.0 / 3, -273.15, 100}
	num := func() float64 {
		switch r.IntN(3) {
		case 0:
			return specials[r.IntN(len(specials))]
		case 1:
			return (r.Float64() - 0.5) * math.Pow(10, float64(r.IntN(60)-30))
		}
		return float64(r.IntN(2000)-1000) / 10
	}
	ct := time.Date(2026, 11, 21, 9, 0, 0, 123456789, time.UTC)
	for i := 0; i < 500; i++ {
		var wins []WindowOut
		for j := r.IntN(70); j > 0; j-- {
			start := r.Int64N(4e12) - 1e12
			s := agg.BatteryStats{N: r.Int64N(100000),
				Voltage:     agg.Moments{Min: num(), Max: num(), Mean: num(), M2: math.Abs(num())},
				Current:     agg.Moments{Min: num(), Max: num(), Mean: num(), M2: math.Abs(num())},
				Temperature: agg.Moments{Min: num(), Max: num(), Mean: num(), M2: math.Abs(num())},
				SOC:         agg.Moments{Min: num(), Max: num(), Mean: num(), M2: math.Abs(num())},
				Last:        agg.Reading{TS: start + r.Int64N(60000), Metrics: agg.Metrics{VoltageV: num(), CurrentA: num(), TemperatureC: num(), SOCPct: num()}}}
			wins = append(wins, windowOut(start, &s))
		}
		id := []string{"B-00001", "B<&>\"x", "키-1:a/b_c.d", "\u2028"}[r.IntN(4)]
		fr := Freshness{BatchVersion: r.Int64N(10), SpeedLag: r.Int64N(1000), AsOf: ct.Add(time.Duration(r.Int64N(1e12))), Store: "ok"}
		if r.IntN(2) == 0 {
			fr.CutTime, fr.ClosedThrough = &ct, "2026-11-20"
		}
		from, to := r.Int64N(4e12), r.Int64N(4e12)
		want, err := json.Marshal(map[string]any{"battery_id": id, "res": "1m",
			"from": time.UnixMilli(from).UTC(), "to": time.UnixMilli(to).UTC(), "windows": wins, "freshness": fr})
		if err != nil {
			t.Fatal(err)
		}
		got, ok := batteryStatsJSON(id, "1m", from, to, wins, fr)
		if !ok || string(got) != string(want) {
			t.Fatalf("case %d (ok %v):\n got %s\nwant %s", i, ok, got, want)
		}
	}
	bad := []WindowOut{windowOut(0, &agg.BatteryStats{N: 1, Voltage: agg.Moments{Mean: math.NaN()}})}
	if _, ok := batteryStatsJSON("B-1", "1m", 0, 1, bad, Freshness{}); ok {
		t.Fatal("NaN encoded; encoding/json refuses it")
	}
}
