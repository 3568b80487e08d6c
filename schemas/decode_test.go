package schemas

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

var recTime = time.Date(2026, 11, 21, 9, 0, 30, 0, time.UTC)

func TestDecode_Table(t *testing.T) {
	bat := `"battery_id":"B-00042","voltage_v":51.2,"current_a":-12.5,"temperature_c":31.4,"soc_pct":78.5`
	cases := []struct {
		name  string
		topic string
		msg   string
		want  Reason
		field string
	}{
		{"battery ok rfc3339", TopicBattery, `{` + bat + `,"ts":"2026-11-21T09:00:00.000Z","soh_pct":97.0}`, ReasonNone, ""},
		{"battery ok epoch ms", TopicBattery, `{` + bat + `,"ts":1795251600000}`, ReasonNone, ""},
		{"battery ok offset", TopicBattery, `{` + bat + `,"ts":"2026-11-21T18:00:00+09:00"}`, ReasonNone, ""},
		{"unknown fields ignored", TopicBattery, `{"x":{"y":[1,2,{"z":null}]},` + bat + `,"ts":1795251600000,"fw":"1.2"}`, ReasonNone, ""},
		{"not json", TopicBattery, `hello`, ReasonNotJSON, ""},
		{"trailing garbage", TopicBattery, `{` + bat + `,"ts":1795251600000} x`, ReasonNotJSON, ""},
		{"array", TopicBattery, `[1]`, ReasonNotJSON, ""},
		{"missing soc", TopicBattery, `{"battery_id":"B","voltage_v":1,"current_a":1,"temperature_c":1,"ts":1795251600000}`, ReasonMissingField, "soc_pct"},
		{"empty id is missing", TopicBattery, `{"battery_id":"","voltage_v":1,"current_a":1,"temperature_c":1,"soc_pct":1,"ts":1795251600000}`, ReasonMissingField, "battery_id"},
		{"null is missing", TopicBattery, `{` + bat + `,"ts":null}`, ReasonMissingField, "ts"},
		{"string number", TopicBattery, `{"battery_id":"B","voltage_v":"51.2","current_a":1,"temperature_c":1,"soc_pct":1,"ts":1795251600000}`, ReasonWrongType, "voltage_v"},
		{"bad ts format", TopicBattery, `{` + bat + `,"ts":"2026-11-21 09:00:00"}`, ReasonWrongType, "ts"},
		{"ts without zone", TopicBattery, `{` + bat + `,"ts":"2026-11-21T09:00:00"}`, ReasonWrongType, "ts"},
		{"ts feb 30", TopicBattery, `{` + bat + `,"ts":"2026-02-30T09:00:00Z"}`, ReasonWrongType, "ts"},
		{"ts float", TopicBattery, `{` + bat + `,"ts":1795251600000.5}`, ReasonWrongType, "ts"},
		{"voltage range", TopicBattery, `{"battery_id":"B","voltage_v":1500.5,"current_a":1,"temperature_c":1,"soc_pct":1,"ts":1795251600000}`, ReasonOutOfRange, "voltage_v"},
		{"soh range", TopicBattery, `{` + bat + `,"soh_pct":101,"ts":1795251600000}`, ReasonOutOfRange, "soh_pct"},
		{"future", TopicBattery, `{` + bat + `,"ts":"2026-11-21T09:05:31Z"}`, ReasonFromFuture, "ts"},
		{"just within future skew", TopicBattery, `{` + bat + `,"ts":"2026-11-21T09:05:30Z"}`, ReasonNone, ""},
		{"too old", TopicBattery, `{` + bat + `,"ts":"2026-10-01T00:00:00Z"}`, ReasonTooOld, "ts"},
		{"device ok", TopicRoom, `{"type":"device","room_id":"R-0101","device_id":"R-0101-light-1","device_type":"light","state":"on","power_w":12.0,"ts":"2026-11-21T09:00:00Z"}`, ReasonNone, ""},
		{"device type last", TopicRoom, `{"room_id":"R-0101","device_id":"d","device_type":"tv","state":"off","ts":1795251600000,"type":"device"}`, ReasonNone, ""},
		{"device bad state", TopicRoom, `{"type":"device","room_id":"R","device_id":"d","device_type":"tv","state":"dim","ts":1795251600000}`, ReasonUnknownState, "state"},
		{"occupancy ok", TopicRoom, `{"type":"occupancy","room_id":"R-0101","occupied":true,"ts":1795251600000}`, ReasonNone, ""},
		{"occupancy string bool", TopicRoom, `{"type":"occupancy","room_id":"R-0101","occupied":"true","ts":1795251600000}`, ReasonWrongType, "occupied"},
		{"stay ok", TopicRoom, `{"type":"stay","room_id":"R-0101","action":"check_in","stay_id":"S-77","ts":1795251600000}`, ReasonNone, ""},
		{"stay bad action", TopicRoom, `{"type":"stay","room_id":"R-0101","action":"leave","stay_id":"S-77","ts":1795251600000}`, ReasonUnknownAction, "action"},
		{"unknown type", TopicRoom, `{"type":"window","room_id":"R-0101","ts":1795251600000}`, ReasonUnknownType, "type"},
		{"missing type", TopicRoom, `{"room_id":"R-0101","ts":1795251600000}`, ReasonMissingField, "type"},
		{"unknown topic", "other", `{}`, ReasonUnknownTopic, ""},
		{"escaped letter id", TopicRoom, `{"type":"occupancy","room_id":"R-\u00e9","occupied":false,"ts":1795251600000}`, ReasonNone, ""},
		{"escaped quote in id", TopicRoom, `{"type":"occupancy","room_id":"R-\u00e9\"x","occupied":false,"ts":1795251600000}`, ReasonBadID, "room_id"},
		{"invalid utf8", TopicRoom, "{\"type\":\"occupancy\",\"room_id\":\"R-\xff\",\"occupied\":false,\"ts\":1795251600000}", ReasonNotJSON, ""},
	}
	d := NewDecoder(DefaultLimits())
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var ev Event
			key := keyOf(c.msg)
			rej := d.Decode(c.topic, key, []byte(c.msg), recTime, &ev)
			if rej.Reason != c.want || rej.Field != c.field {
				t.Fatalf("got %v/%q (%s), want %v/%q", rej.Reason, rej.Field, rej.Error(), c.want, c.field)
			}
			refEv, refRej := refValidate(DefaultLimits(), c.topic, key, []byte(c.msg), recTime)
			if refRej != rej {
				t.Fatalf("reference disagrees: %v/%q vs %v/%q", refRej.Reason, refRej.Field, rej.Reason, rej.Field)
			}
			if rej.OK() && !reflect.DeepEqual(ev, refEv) {
				t.Fatalf("event differs from reference:\n got %+v\nwant %+v", ev, refEv)
			}
		})
	}
}

func TestDecode_Values(t *testing.T) {
	msg := `{"battery_id":"B-7","ts":"2026-11-21T18:00:00.1239+09:00","voltage_v":51.2,"current_a":-12.5,"temperature_c":31.4,"soc_pct":78.5,"cycle_count":312}`
	ev, rej := Validate(DefaultLimits(), TopicBattery, []byte("B-7"), []byte(msg), recTime)
	if !rej.OK() {
		t.Fatal(rej)
	}
	want := Battery{BatteryID: "B-7", TS: time.Date(2026, 11, 21, 9, 0, 0, 123e6, time.UTC).UnixMilli(),
		VoltageV: 51.2, CurrentA: -12.5, TemperatureC: 31.4, SOCPct: 78.5, CycleCount: 312, HasCycles: true}
	if ev.Kind != KindBattery || ev.Battery != want {
		t.Fatalf("got %+v, want %+v", ev.Battery, want)
	}
	if got := ev.Identity(); got != (Identity{Kind: KindBattery, ID: "B-7", TS: want.TS}) {
		t.Fatalf("identity %+v", got)
	}
}

func TestDecode_Deterministic_NoWallClock(t *testing.T) {
	// The same message and record time decide the same way whatever now is.
	msg := []byte(`{"battery_id":"B","ts":"2020-01-01T00:00:00Z","voltage_v":1,"current_a":1,"temperature_c":1,"soc_pct":1}`)
	old := time.Date(2020, 1, 1, 0, 1, 0, 0, time.UTC)
	if _, rej := Validate(DefaultLimits(), TopicBattery, []byte("B"), msg, old); !rej.OK() {
		t.Fatalf("a 2020 record of a 2020 reading is valid, got %v", rej)
	}
}

// randomMessage builds plausible and broken messages alike, so the property
// test covers both sides of every rule.
func randomMessage(r *rand.Rand) (topic string, key []byte, msg string) {
	// pick returns the first option most of the time, so a good share of
	// messages is valid, and any option otherwise.
	pick := func(xs ...string) string {
		if r.IntN(4) > 0 {
			return xs[0]
		}
		return xs[r.IntN(len(xs))]
	}
	num := func() string {
		return pick("51.2", "0", "-1", "1e3", "-12.5", "100", "100.0001", "1500", "-5000.1", "200", "-60", "1e400", "\"5\"", "true", "null")
	}
	ts := func() string {
		return pick(`"2026-11-21T09:00:00.000Z"`, `"2026-11-21T09:04:59.999+00:00"`, `"2026-11-21T18:00:00+09:00"`,
			`"2026-11-21T09:10:00Z"`, `"2026-10-01T00:00:00Z"`, `1795251600000`, `"2026-13-01T00:00:00Z"`,
			`"2026-11-21T09:00:00.123456789-01:30"`, `1795251600000.0`, `-1`, `"x"`, `null`, `"2024-02-29T23:59:59z"`)
	}
	var parts []string
	add := func(k, v string) {
		if r.IntN(30) > 0 { // sometimes drop a field
			parts = append(parts, fmt.Sprintf("%q:%s", k, v))
		}
	}
	topic = pick(TopicBattery, TopicRoom)
	badIDs := []string{`"a b"`, `"x\u0000"`, `"\ud800"`, `"\ud83d\ude00"`, `"R\"1"`, `"` + strings.Repeat("x", 129) + `"`,
		`"` + strings.Repeat("é", 64) + `"`, `"` + strings.Repeat("é", 65) + `"`, `"키-1:a/b_c.d"`, `"x\u0301"`, `"\ufffd"`}
	if topic == TopicBattery {
		add("battery_id", pick(append([]string{`"B-1"`, `""`, `7`, `"B-\u0041"`}, badIDs...)...))
		add("ts", ts())
		for _, k := range []string{"voltage_v", "current_a", "temperature_c", "soc_pct", "soh_pct", "cycle_count"} {
			add(k, num())
		}
	} else {
		add("type", pick(`"device"`, `"occupancy"`, `"stay"`, `"lamp"`, `""`, `1`))
		add("room_id", pick(append([]string{`"R-1"`, `""`, `null`}, badIDs...)...))
		add("device_id", pick(`"R-1-tv-1"`, `3`, `"R 1"`))
		add("device_type", pick(`"tv"`, `"light"`, `"mini bar"`))
		add("state", pick(`"on"`, `"off"`, `"ON"`))
		add("power_w", num())
		add("occupied", pick("true", "false", `"yes"`, "null"))
		add("action", pick(`"check_in"`, `"check_out"`, `"out"`))
		add("stay_id", pick(`"S-1"`, `""`, `"S\t1"`))
		add("ts", ts())
	}
	add("extra", pick(`{"a":[1,{"b":"c"}]}`, `[]`, `"\ud83d\ude00"`, `"\ud800"`))
	r.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
	msg = "{" + strings.Join(parts, ",") + "}"
	if r.IntN(20) == 0 {
		msg = msg[:r.IntN(len(msg)+1)] // truncated
	}
	// Mostly the id the message most often carries; sometimes another,
	// none, or one differing only in case.
	key = []byte(pick("B-1", "R-1", "", "b-1", "B-A", "R-1 "))
	if topic == TopicRoom && r.IntN(2) == 0 {
		key = []byte("R-1")
	}
	if r.IntN(40) == 0 {
		key = nil
	}
	return topic, key, msg
}

// keyOf is the key a well-behaved producer sends with msg: its battery_id
// or room_id, unescaped.
func keyOf(msg string) []byte {
	var m struct {
		BatteryID string `json:"battery_id"`
		RoomID    string `json:"room_id"`
	}
	_ = json.Unmarshal([]byte(msg), &m)
	return []byte(m.BatteryID + m.RoomID)
}

func TestDecode_MatchesReference_Random(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	d := NewDecoder(DefaultLimits())
	var valid int
	reasons := map[Reason]int{}
	for i := 0; i < 50000; i++ {
		topic, key, msg := randomMessage(r)
		checkAgainstReference(t, d, topic, key, []byte(msg))
		_, rej := refValidate(DefaultLimits(), topic, key, []byte(msg), recTime)
		if rej.OK() {
			valid++
		}
		reasons[rej.Reason]++
	}
	if valid < 1000 || reasons[ReasonBadID] < 100 || reasons[ReasonKeyMismatch] < 100 {
		t.Fatalf("generator produced only %d valid messages, %d bad ids, %d key mismatches; the test would be weak",
			valid, reasons[ReasonBadID], reasons[ReasonKeyMismatch])
	}
}

func checkAgainstReference(t *testing.T, d *Decoder, topic string, key, msg []byte) {
	t.Helper()
	var ev Event
	rej := d.Decode(topic, key, msg, recTime, &ev)
	refEv, refRej := refValidate(DefaultLimits(), topic, key, msg, recTime)
	if rej != refRej {
		t.Fatalf("%s key %q %q: decoder %v/%q, reference %v/%q", topic, key, msg, rej.Reason, rej.Field, refRej.Reason, refRej.Field)
	}
	if rej.OK() && !reflect.DeepEqual(ev, refEv) {
		t.Fatalf("%s %q: decoded %+v, reference %+v", topic, msg, ev, refEv)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(TopicBattery, []byte("B-00042"), []byte(`{"battery_id":"B-00042","ts":"2026-11-21T09:00:00.000Z","voltage_v":51.2,"current_a":-12.5,"temperature_c":31.4,"soc_pct":78.5,"soh_pct":97.0}`))
	f.Add(TopicRoom, []byte("R-0101"), []byte(`{"type":"device","room_id":"R-0101","device_id":"R-0101-light-1","device_type":"light","state":"on","power_w":12.0,"ts":"2026-11-21T09:00:00Z"}`))
	f.Add(TopicRoom, []byte("R-0101"), []byte(`{"type":"stay","room_id":"R-0101","action":"check_in","stay_id":"S-77","ts":1795251600000}`))
	f.Add(TopicRoom, []byte("RA"), []byte(`{"type":"occupancy","room_id":"R\u0041","occupied":true,"ts":1795251600000,"x":[{}]}`))
	f.Add(TopicRoom, []byte("R-0102"), []byte(`{"type":"occupancy","room_id":"R-0101","occupied":true,"ts":1795251600000}`))
	f.Add(TopicBattery, []byte(nil), []byte(`{"battery_id":"B\ud800","ts":1795251600000,"voltage_v":1,"current_a":1,"temperature_c":1,"soc_pct":1}`))
	d := NewDecoder(DefaultLimits())
	f.Fuzz(func(t *testing.T, topic string, key, msg []byte) {
		if topic != TopicRoom {
			topic = TopicBattery
		}
		var ev Event
		rej := d.Decode(topic, key, msg, recTime, &ev)
		if rej.OK() == (rej.Reason != ReasonNone) || (rej.OK() && ev.Kind == KindUnknown) {
			t.Fatalf("neither a valid event nor a typed rejection: %+v %+v", rej, ev)
		}
		if rej.OK() {
			for _, id := range []string{ev.Battery.BatteryID, ev.RoomID(), ev.Device.DeviceID, ev.Device.DeviceType, ev.Stay.StayID} {
				if id != "" && !ValidID([]byte(id)) {
					t.Fatalf("valid event with a bad id %q", id)
				}
			}
		}
		checkAgainstReference(t, d, topic, key, msg)
	})
}

var benchKey = []byte("B-00042")

var benchBattery = []byte(`{"battery_id":"B-00042","ts":"2026-11-21T09:00:00.000Z","voltage_v":51.2,"current_a":-12.5,"temperature_c":31.4,"soc_pct":78.5,"soh_pct":97.0}`)

// BenchmarkDecodeBattery is the hot-path figure: decode plus validation of
// one battery reading, on one core. The target is >= 1,000,000 events/s.
func BenchmarkDecodeBattery(b *testing.B) {
	d := NewDecoder(DefaultLimits())
	var ev Event
	b.SetBytes(int64(len(benchBattery)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if rej := d.Decode(TopicBattery, benchKey, benchBattery, recTime, &ev); !rej.OK() {
			b.Fatal(rej)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkDecodeBatteryEpochMS(b *testing.B) {
	msg := []byte(`{"battery_id":"B-00042","ts":1795251600000,"voltage_v":51.2,"current_a":-12.5,"temperature_c":31.4,"soc_pct":78.5}`)
	d := NewDecoder(DefaultLimits())
	var ev Event
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if rej := d.Decode(TopicBattery, benchKey, msg, recTime, &ev); !rej.OK() {
			b.Fatal(rej)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
