package serving

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"time"
)

// batteryStatsJSON encodes the answer of /v1/batteries/{id}/stats byte for
// byte as encoding/json encodes its map, without reflection: a battery's
// last-hour windows are three quarters of the API's traffic, and encoding
// them by reflection cost about a third of the serving CPU. ok is false
// when a number cannot be encoded (NaN or an infinity); the caller then
// lets encoding/json say so.
func batteryStatsJSON(id string, res string, from, to int64, wins []WindowOut, fr Freshness) (body []byte, ok bool) {
	idJSON, err := json.Marshal(id)
	if err != nil {
		return nil, false
	}
	frJSON, err := json.Marshal(fr)
	if err != nil {
		return nil, false
	}
	resJSON, err := json.Marshal(res)
	if err != nil {
		return nil, false
	}
	b := make([]byte, 0, 256+len(frJSON)+len(wins)*560)
	b = append(b, `{"battery_id":`...)
	b = append(b, idJSON...)
	b = append(b, `,"freshness":`...)
	b = append(b, frJSON...)
	b = append(b, `,"from":`...)
	b = appendTime(b, time.UnixMilli(from).UTC())
	b = append(b, `,"res":`...)
	b = append(b, resJSON...)
	b = append(b, `,"to":`...)
	b = appendTime(b, time.UnixMilli(to).UTC())
	b = append(b, `,"windows":`...)
	if wins == nil {
		return append(b, "null}"...), true
	}
	b = append(b, '[')
	ok = true
	for i := range wins {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendWindow(b, &wins[i], &ok)
	}
	b = append(b, "]}"...)
	return b, ok
}

func appendWindow(b []byte, w *WindowOut, ok *bool) []byte {
	b = append(b, `{"start":`...)
	b = appendTime(b, w.Start)
	b = append(b, `,"start_ms":`...)
	b = strconv.AppendInt(b, w.StartMS, 10)
	b = append(b, `,"n":`...)
	b = strconv.AppendInt(b, w.N, 10)
	for _, m := range []struct {
		name string
		s    *MetricStats
	}{{`,"voltage_v":`, &w.Voltage}, {`,"current_a":`, &w.Current}, {`,"temperature_c":`, &w.Temperature}, {`,"soc_pct":`, &w.SOC}} {
		b = append(b, m.name...)
		b = append(b, `{"min":`...)
		b = appendFloat(b, m.s.Min, ok)
		b = append(b, `,"max":`...)
		b = appendFloat(b, m.s.Max, ok)
		b = append(b, `,"mean":`...)
		b = appendFloat(b, m.s.Mean, ok)
		b = append(b, `,"std":`...)
		b = appendFloat(b, m.s.Std, ok)
		b = append(b, '}')
	}
	l := &w.Last
	b = append(b, `,"last":{"ts_ms":`...)
	b = strconv.AppendInt(b, l.TS, 10)
	b = append(b, `,"voltage_v":`...)
	b = appendFloat(b, l.VoltageV, ok)
	b = append(b, `,"current_a":`...)
	b = appendFloat(b, l.CurrentA, ok)
	b = append(b, `,"temperature_c":`...)
	b = appendFloat(b, l.TemperatureC, ok)
	b = append(b, `,"soc_pct":`...)
	b = appendFloat(b, l.SOCPct, ok)
	return append(b, "}}"...)
}

// appendTime encodes t as time.Time's MarshalJSON does.
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendFloat encodes f as encoding/json encodes a float64: the shortest
// decimal, in exponent form below 1e-6 and from 1e21 on, with a one-digit
// negative exponent where it fits (1e-07 becomes 1e-7).
func appendFloat(b []byte, f float64, ok *bool) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		*ok = false
		return b
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// writeRawJSON answers 200 with body, as httpx.WriteJSON does.
func writeRawJSON(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(body, '\n'))
}
