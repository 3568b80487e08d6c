package schemas

import (
	"bytes"
	"encoding/json"
	"io"
	"regexp"
	"strconv"
	"time"
	"unicode/utf8"
)

// refValidate is a slow, obviously-correct reference of Decoder.Decode built
// on encoding/json, the regexp package and time.Date. The fuzz and property
// tests check that the fast decoder agrees with it on every input.
func refValidate(limits Limits, topic string, key, value []byte, recordTime time.Time) (Event, Rejection) {
	var ev Event
	if topic != TopicBattery && topic != TopicRoom {
		return ev, reject(ReasonUnknownTopic, "")
	}
	if !utf8.Valid(value) || nestingDepth(value) > maxDepth+1 {
		return ev, reject(ReasonNotJSON, "")
	}
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return ev, reject(ReasonNotJSON, "")
	}
	if _, err := dec.Token(); err != io.EOF {
		return ev, reject(ReasonNotJSON, "") // trailing data
	}
	for k, v := range m {
		if v == nil {
			delete(m, k) // null means absent
		}
	}

	// Type checks, in field-bit order so the reported field matches.
	order := []string{"ts", "battery_id", "voltage_v", "current_a", "temperature_c", "soc_pct", "soh_pct",
		"cycle_count", "type", "room_id", "device_id", "device_type", "state", "power_w", "occupied", "action", "stay_id"}
	str := map[string]bool{"battery_id": true, "room_id": true, "device_id": true, "device_type": true, "stay_id": true, "type": true, "state": true, "action": true}
	num := map[string]bool{"voltage_v": true, "current_a": true, "temperature_c": true, "soc_pct": true, "soh_pct": true, "power_w": true}
	var ts int64
	floats := map[string]float64{}
	strs := map[string]string{}
	var cycles int64
	var occupied bool
	for _, k := range order {
		v, ok := m[k]
		if !ok {
			continue
		}
		good := true
		switch {
		case k == "ts":
			switch t := v.(type) {
			case string:
				ts, good = refParseTS(t)
			case json.Number:
				n, err := strconv.ParseInt(string(t), 10, 64)
				ts, good = n, err == nil && n >= 0 && n <= maxEpochMS
			default:
				good = false
			}
		case str[k]:
			s, isStr := v.(string)
			good = isStr
			if isStr && s == "" && k != "type" && k != "state" && k != "action" {
				delete(m, k)
				continue
			}
			strs[k] = s
		case num[k]:
			n, isNum := v.(json.Number)
			good = isNum
			if isNum {
				f, err := strconv.ParseFloat(string(n), 64)
				good = err == nil
				floats[k] = f
			}
		case k == "cycle_count":
			n, isNum := v.(json.Number)
			good = isNum
			if isNum {
				c, err := strconv.ParseInt(string(n), 10, 64)
				good = err == nil && c >= 0
				cycles = c
			}
		case k == "occupied":
			b, isBool := v.(bool)
			good, occupied = isBool, b
		}
		if !good {
			return ev, reject(ReasonWrongType, k)
		}
	}
	// Ids, once every type is right, in field order; only those the
	// event uses (an id-named field of another kind of event is unknown).
	used := map[string]bool{"battery_id": topic == TopicBattery, "room_id": topic == TopicRoom}
	if topic == TopicRoom {
		switch strs["type"] {
		case "device":
			used["device_id"], used["device_type"] = true, true
		case "stay":
			used["stay_id"] = true
		}
	}
	for _, k := range order {
		if s, ok := strs[k]; ok && refIDField[k] && used[k] && (len(s) > 128 || !refIDPattern.MatchString(s)) {
			return ev, reject(ReasonBadID, k)
		}
	}
	has := func(k string) bool { _, ok := m[k]; return ok }
	need := func(keys ...string) Rejection {
		for _, k := range order { // first missing in field order
			for _, want := range keys {
				if k == want && !has(k) {
					return reject(ReasonMissingField, k)
				}
			}
		}
		return Rejection{}
	}
	inRange := func(k string, lo, hi float64) bool { return floats[k] >= lo && floats[k] <= hi }

	if topic == TopicBattery {
		if r := need("ts", "battery_id", "voltage_v", "current_a", "temperature_c", "soc_pct"); !r.OK() {
			return ev, r
		}
		switch {
		case !inRange("voltage_v", 0, 1500):
			return ev, reject(ReasonOutOfRange, "voltage_v")
		case !inRange("current_a", -5000, 5000):
			return ev, reject(ReasonOutOfRange, "current_a")
		case !inRange("temperature_c", -60, 200):
			return ev, reject(ReasonOutOfRange, "temperature_c")
		case !inRange("soc_pct", 0, 100):
			return ev, reject(ReasonOutOfRange, "soc_pct")
		case has("soh_pct") && !inRange("soh_pct", 0, 100):
			return ev, reject(ReasonOutOfRange, "soh_pct")
		}
		ev.Kind = KindBattery
		ev.Battery = Battery{BatteryID: strs["battery_id"], TS: ts, VoltageV: floats["voltage_v"],
			CurrentA: floats["current_a"], TemperatureC: floats["temperature_c"], SOCPct: floats["soc_pct"],
			SOHPct: floats["soh_pct"], HasSOH: has("soh_pct"), CycleCount: cycles, HasCycles: has("cycle_count")}
	} else {
		if !has("type") {
			return ev, reject(ReasonMissingField, "type")
		}
		switch strs["type"] {
		case "device":
			if r := need("ts", "room_id", "device_id", "device_type", "state"); !r.OK() {
				return ev, r
			}
			if strs["state"] != "on" && strs["state"] != "off" {
				return ev, reject(ReasonUnknownState, "state")
			}
			if has("power_w") && !inRange("power_w", 0, 1e6) {
				return ev, reject(ReasonOutOfRange, "power_w")
			}
			ev.Kind = KindDevice
			ev.Device = Device{RoomID: strs["room_id"], DeviceID: strs["device_id"], DeviceType: strs["device_type"],
				TS: ts, On: strs["state"] == "on", PowerW: floats["power_w"], HasPower: has("power_w")}
		case "occupancy":
			if r := need("ts", "room_id", "occupied"); !r.OK() {
				return ev, r
			}
			ev.Kind = KindOccupancy
			ev.Occupancy = Occupancy{RoomID: strs["room_id"], TS: ts, Occupied: occupied}
		case "stay":
			if r := need("ts", "room_id", "action", "stay_id"); !r.OK() {
				return ev, r
			}
			if strs["action"] != "check_in" && strs["action"] != "check_out" {
				return ev, reject(ReasonUnknownAction, "action")
			}
			ev.Kind = KindStay
			ev.Stay = Stay{RoomID: strs["room_id"], StayID: strs["stay_id"], TS: ts, CheckIn: strs["action"] == "check_in"}
		default:
			return ev, reject(ReasonUnknownType, "type")
		}
	}
	if topic == TopicBattery && string(key) != strs["battery_id"] {
		return Event{}, reject(ReasonKeyMismatch, "battery_id")
	}
	if topic == TopicRoom && string(key) != strs["room_id"] {
		return Event{}, reject(ReasonKeyMismatch, "room_id")
	}
	if !recordTime.IsZero() {
		rec := recordTime.UnixMilli()
		if ts > rec+limits.MaxAhead.Milliseconds() {
			return Event{}, reject(ReasonFromFuture, "ts")
		}
		if ts < rec-limits.Retention.Milliseconds() {
			return Event{}, reject(ReasonTooOld, "ts")
		}
	}
	return ev, Rejection{}
}

var (
	refIDField   = map[string]bool{"battery_id": true, "room_id": true, "device_id": true, "device_type": true, "stay_id": true}
	refIDPattern = regexp.MustCompile(`^[\p{L}\p{M}\p{Nd}\-_.:/]+$`)
)

var refTSPattern = regexp.MustCompile(`^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$`)

func refParseTS(s string) (int64, bool) {
	g := refTSPattern.FindStringSubmatch(s)
	if g == nil {
		return 0, false
	}
	n := func(i int) int { v, _ := strconv.Atoi(g[i]); return v }
	y, mo, d, h, mi, se := n(1), n(2), n(3), n(4), n(5), n(6)
	t := time.Date(y, time.Month(mo), d, h, mi, se, 0, time.UTC)
	if t.Year() != y || int(t.Month()) != mo || t.Day() != d || h > 23 || mi > 59 || se > 59 {
		return 0, false
	}
	ms := t.UnixMilli()
	if frac := g[7]; frac != "" {
		digits := (frac[1:] + "000")[:3]
		f, _ := strconv.Atoi(digits)
		ms += int64(f)
	}
	if z := g[8]; z != "Z" && z != "z" {
		oh, _ := strconv.Atoi(z[1:3])
		om, _ := strconv.Atoi(z[4:6])
		if oh > 23 || om > 59 {
			return 0, false
		}
		off := int64(oh*3600+om*60) * 1000
		if z[0] == '+' {
			ms -= off
		} else {
			ms += off
		}
	}
	return ms, true
}

// nestingDepth is the deepest bracket nesting outside strings.
func nestingDepth(b []byte) int {
	depth, max, inStr, esc := 0, 0, false, false
	for _, c := range b {
		switch {
		case inStr && esc:
			esc = false
		case inStr && c == '\\':
			esc = true
		case c == '"':
			inStr = !inStr
		case !inStr && (c == '{' || c == '['):
			depth++
			if depth > max {
				max = depth
			}
		case !inStr && (c == '}' || c == ']'):
			depth--
		}
	}
	return max
}
