package schemas

import (
	"strings"
	"testing"
)

// TestDecode_IDRule: ids are 1..128 bytes of letters, digits and -_.:/, in
// every id field; anything else is bad_id, an empty one is missing.
func TestDecode_IDRule(t *testing.T) {
	battery := func(idJSON string) string {
		return `{"battery_id":` + idJSON + `,"ts":1795251600000,"voltage_v":1,"current_a":1,"temperature_c":1,"soc_pct":1}`
	}
	cases := []struct {
		name   string
		idJSON string // the battery_id as JSON
		key    string
		want   Reason
	}{
		{"empty is missing", `""`, "", ReasonMissingField},
		{"one byte", `"B"`, "B", ReasonNone},
		{"128 bytes", `"` + strings.Repeat("b", 128) + `"`, strings.Repeat("b", 128), ReasonNone},
		{"129 bytes", `"` + strings.Repeat("b", 129) + `"`, strings.Repeat("b", 129), ReasonBadID},
		{"128 bytes of two-byte letters", `"` + strings.Repeat("é", 64) + `"`, strings.Repeat("é", 64), ReasonNone},
		{"130 bytes of two-byte letters", `"` + strings.Repeat("é", 65) + `"`, strings.Repeat("é", 65), ReasonBadID},
		{"900 KB", `"` + strings.Repeat("B", 900<<10) + `"`, strings.Repeat("B", 900<<10), ReasonBadID},
		{"NUL", `"B\u0000"`, "B\x00", ReasonBadID},
		{"lone surrogate", `"B\ud800"`, "B\uFFFD", ReasonBadID},
		{"replacement char", `"B\ufffd"`, "B\uFFFD", ReasonBadID},
		{"tab", `"B\t1"`, "B\t1", ReasonBadID},
		{"DEL", "\"B\x7f\"", "B\x7f", ReasonBadID},
		{"C1 control", `"B\u0085"`, "B\u0085", ReasonBadID},
		{"space", `"B 1"`, "B 1", ReasonBadID},
		{"quote", `"B\"1"`, `B"1`, ReasonBadID},
		{"emoji", `"B\ud83d\ude00"`, "B\U0001F600", ReasonBadID},
		{"allowed punctuation", `"site-1_rack.2:bay/3"`, "site-1_rack.2:bay/3", ReasonNone},
		{"other scripts", `"배터리-1"`, "배터리-1", ReasonNone},
		{"combining mark", `"e\u0301"`, "e\u0301", ReasonNone},
		{"escaped letters", `"B-\u0041"`, "B-A", ReasonNone},
	}
	d := NewDecoder(DefaultLimits())
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg := []byte(battery(c.idJSON))
			var ev Event
			rej := d.Decode(TopicBattery, []byte(c.key), msg, recTime, &ev)
			if rej.Reason != c.want {
				t.Fatalf("got %v/%q (%s), want %v", rej.Reason, rej.Field, rej.Error(), c.want)
			}
			if c.want == ReasonBadID && rej.Field != "battery_id" {
				t.Fatalf("bad id names field %q", rej.Field)
			}
			if c.want == ReasonNone && ev.Battery.BatteryID != c.key {
				t.Fatalf("decoded id %q, want %q", ev.Battery.BatteryID, c.key)
			}
			if len(msg) < 4096 {
				if _, refRej := refValidate(DefaultLimits(), TopicBattery, []byte(c.key), msg, recTime); refRej != rej {
					t.Fatalf("reference says %v/%q", refRej.Reason, refRej.Field)
				}
			}
		})
	}
}

// TestDecode_IDRule_EveryIDField: room, device, stay and device type ids
// follow the same rule, and the first bad one in field order is named.
func TestDecode_IDRule_EveryIDField(t *testing.T) {
	cases := []struct {
		msg, field string
	}{
		{`{"type":"device","room_id":"R 1","device_id":"d","device_type":"tv","state":"on","ts":1795251600000}`, "room_id"},
		{`{"type":"device","room_id":"R-1","device_id":"d\u0000","device_type":"tv","state":"on","ts":1795251600000}`, "device_id"},
		{`{"type":"device","room_id":"R-1","device_id":"d","device_type":"mini bar","state":"on","ts":1795251600000}`, "device_type"},
		{`{"type":"stay","room_id":"R-1","action":"check_in","stay_id":"S\ud800","ts":1795251600000}`, "stay_id"},
		{`{"type":"stay","room_id":"R 1","action":"check_in","stay_id":"S\ud800","ts":1795251600000}`, "room_id"},
	}
	d := NewDecoder(DefaultLimits())
	for _, c := range cases {
		var ev Event
		if rej := d.Decode(TopicRoom, []byte("R-1"), []byte(c.msg), recTime, &ev); rej.Reason != ReasonBadID || rej.Field != c.field {
			t.Errorf("%s: got %v/%q, want bad_id/%q", c.msg, rej.Reason, rej.Field, c.field)
		}
	}
}

// TestDecode_IDRule_OnlyFieldsTheEventUses: an id-named field that the
// event's topic and type do not use is an unknown field, ignored
// (DESIGN §3), whatever it holds.
func TestDecode_IDRule_OnlyFieldsTheEventUses(t *testing.T) {
	cases := []struct{ topic, key, msg string }{
		{TopicBattery, "B-7", `{"battery_id":"B-7","device_type":"solar panel","room_id":"R 1","ts":1795251600000,"voltage_v":1,"current_a":1,"temperature_c":1,"soc_pct":1}`},
		{TopicRoom, "R-1", `{"type":"occupancy","room_id":"R-1","occupied":true,"stay_id":"S\u0000","device_id":"a b","ts":1795251600000}`},
		{TopicRoom, "R-1", `{"type":"stay","room_id":"R-1","action":"check_in","stay_id":"S-1","device_type":"mini bar","ts":1795251600000}`},
		{TopicRoom, "R-1", `{"type":"device","room_id":"R-1","device_id":"d","device_type":"tv","state":"on","stay_id":"x y","battery_id":"","ts":1795251600000}`},
	}
	d := NewDecoder(DefaultLimits())
	for _, c := range cases {
		var ev Event
		if rej := d.Decode(c.topic, []byte(c.key), []byte(c.msg), recTime, &ev); !rej.OK() {
			t.Errorf("%s: rejected %v/%q, want it valid", c.msg, rej.Reason, rej.Field)
		}
	}
}

// TestDecode_KeyMustBeTheID: a message keyed by anything but its
// battery_id / room_id, or not keyed, is key_mismatch; the check is exact
// bytes, after the content checks.
func TestDecode_KeyMustBeTheID(t *testing.T) {
	bat := []byte(`{"battery_id":"B-7","ts":1795251600000,"voltage_v":1,"current_a":1,"temperature_c":1,"soc_pct":1}`)
	room := []byte(`{"type":"occupancy","room_id":"R-0101","occupied":true,"ts":1795251600000}`)
	cases := []struct {
		name  string
		topic string
		key   []byte
		msg   []byte
		want  Reason
		field string
	}{
		{"battery keyed by id", TopicBattery, []byte("B-7"), bat, ReasonNone, ""},
		{"battery no key", TopicBattery, nil, bat, ReasonKeyMismatch, "battery_id"},
		{"battery empty key", TopicBattery, []byte{}, bat, ReasonKeyMismatch, "battery_id"},
		{"battery other key", TopicBattery, []byte("B-8"), bat, ReasonKeyMismatch, "battery_id"},
		{"battery key differs in case", TopicBattery, []byte("b-7"), bat, ReasonKeyMismatch, "battery_id"},
		{"battery key with a trailing NUL", TopicBattery, []byte("B-7\x00"), bat, ReasonKeyMismatch, "battery_id"},
		{"room keyed by room", TopicRoom, []byte("R-0101"), room, ReasonNone, ""},
		{"room keyed by device", TopicRoom, []byte("R-0101-light-1"), room, ReasonKeyMismatch, "room_id"},
		{"room no key", TopicRoom, nil, room, ReasonKeyMismatch, "room_id"},
		{"invalid content wins over the key", TopicBattery, nil, []byte(`{"battery_id":"B-7"}`), ReasonMissingField, "ts"},
	}
	d := NewDecoder(DefaultLimits())
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var ev Event
			rej := d.Decode(c.topic, c.key, c.msg, recTime, &ev)
			if rej.Reason != c.want || rej.Field != c.field {
				t.Fatalf("got %v/%q, want %v/%q", rej.Reason, rej.Field, c.want, c.field)
			}
			if _, refRej := refValidate(DefaultLimits(), c.topic, c.key, c.msg, recTime); refRej != rej {
				t.Fatalf("reference says %v/%q", refRej.Reason, refRej.Field)
			}
		})
	}
}

// TestDecode_HugeIDIsNotCopied: a 900 KB id is refused before it is
// interned: decoding it allocates nothing.
func TestDecode_HugeIDIsNotCopied(t *testing.T) {
	msg := []byte(`{"battery_id":"` + strings.Repeat("B", 900<<10) + `","ts":1795251600000,"voltage_v":1,"current_a":1,"temperature_c":1,"soc_pct":1}`)
	d := NewDecoder(DefaultLimits())
	var ev Event
	allocs := testing.AllocsPerRun(20, func() {
		if rej := d.Decode(TopicBattery, nil, msg, recTime, &ev); rej.Reason != ReasonBadID {
			t.Fatalf("got %v", rej.Reason)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per decode of a rejected 900 KB id", allocs)
	}
	if len(d.ids.m) != 0 {
		t.Fatalf("the intern table holds %d ids", len(d.ids.m))
	}
}
