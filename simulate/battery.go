package simulate

import (
	"math"
	"math/rand/v2"
	"strconv"
)

// pack is one simulated battery pack: a 16-cell LFP string (nominal 51.2 V)
// whose state of charge follows its current and whose temperature follows
// its load.
type pack struct {
	id         string
	capacityAh float64
	soc        float64 // percent
	tempC      float64
	ambientC   float64
	soh        float64
	cycles     int64
	loadA      float64 // typical discharge current
	charging   bool
	phase      float64 // of the load's daily swing
	epochMS    bool    // sends ts as epoch milliseconds instead of RFC 3339
	faulty     bool    // runs hot and sags: a misbehaving pack
}

func newPack(i int, r *rand.Rand) pack {
	p := pack{
		id:         batteryID(i),
		capacityAh: 100 + 200*r.Float64(),
		soc:        20 + 75*r.Float64(),
		ambientC:   18 + 10*r.Float64(),
		soh:        85 + 15*r.Float64(),
		cycles:     int64(r.IntN(2000)),
		loadA:      10 + 60*r.Float64(),
		phase:      2 * math.Pi * r.Float64(),
		epochMS:    i%10 == 7,
		faulty:     r.Float64() < 0.01,
	}
	p.tempC = p.ambientC + 3
	p.charging = r.IntN(2) == 0
	return p
}

func batteryID(i int) string {
	s := strconv.Itoa(i)
	for len(s) < 5 {
		s = "0" + s
	}
	return "B-" + s
}

// step advances the pack by dt seconds and returns its current (A,
// negative while discharging) and terminal voltage.
func (p *pack) step(dt float64, tSec float64, r *rand.Rand) (current, voltage float64) {
	swing := 0.6 + 0.4*math.Sin(2*math.Pi*tSec/86400+p.phase)
	if p.charging {
		current = 0.3 * p.capacityAh * (1 - p.soc/110) // CC tapering to CV
	} else {
		current = -p.loadA * swing
	}
	current += r.NormFloat64() * 0.5
	p.soc += current * dt / 3600 / p.capacityAh * 100
	switch {
	case p.soc >= 98:
		p.soc, p.charging = 98, false
		p.cycles++
	case p.soc <= 8:
		p.soc, p.charging = 8, true
	}
	// Joule heating against cooling towards ambient (time constant 20 min).
	resistance := 0.02
	if p.faulty {
		resistance = 0.09
	}
	heat := current * current * resistance / 10
	p.tempC += (p.ambientC + heat - p.tempC) * dt / 1200
	p.tempC = math.Min(p.tempC, 150)
	ocv := 48 + 6.4*p.soc/100 // open-circuit voltage, LFP-ish slope
	voltage = ocv + current*resistance/4 + r.NormFloat64()*0.02
	return current, voltage
}

// appendReading renders one reading as the wire JSON.
func (p *pack) appendReading(b []byte, tsMS int64, current, voltage float64) []byte {
	b = append(b, `{"battery_id":"`...)
	b = append(b, p.id...)
	b = append(b, `","ts":`...)
	b = appendTS(b, tsMS, p.epochMS)
	b = append(b, `,"voltage_v":`...)
	b = strconv.AppendFloat(b, round(voltage, 3), 'f', -1, 64)
	b = append(b, `,"current_a":`...)
	b = strconv.AppendFloat(b, round(current, 2), 'f', -1, 64)
	b = append(b, `,"temperature_c":`...)
	b = strconv.AppendFloat(b, round(p.tempC, 2), 'f', -1, 64)
	b = append(b, `,"soc_pct":`...)
	b = strconv.AppendFloat(b, round(p.soc, 2), 'f', -1, 64)
	b = append(b, `,"soh_pct":`...)
	b = strconv.AppendFloat(b, round(p.soh, 1), 'f', -1, 64)
	b = append(b, `,"cycle_count":`...)
	b = strconv.AppendInt(b, p.cycles, 10)
	return append(b, '}')
}

func round(v float64, digits int) float64 {
	m := math.Pow10(digits)
	return math.Round(v*m) / m
}
