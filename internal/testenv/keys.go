package testenv

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/schemas"
)

// The ids of KeyMessages' well-keyed events.
const (
	KeyedBattery = "B-1"
	KeyedRoom    = "R-0101"
)

// KeyMessages is DESIGN §3's key and id rule as a stream, recorded at rec:
// one battery reading sent under its own key and seven others (none, empty,
// another battery's, wrong case, trailing space or NUL, a room's), one
// occupancy event under its room key and a device's key, and messages
// whose ids break the id rule while keyed by them. Every layer must count
// the reading and the occupancy once and reject the rest with the reasons
// in want (reason code -> messages).
func KeyMessages(rec time.Time) (msgs []kafka.Message, want map[string]int) {
	ts := rec.Add(-30 * time.Second).UTC().Format(time.RFC3339Nano)
	reading := func(id string) []byte {
		quoted, _ := json.Marshal(id) // JSON escapes: NUL becomes \u0000
		return fmt.Appendf(nil, `{"battery_id":%s,"ts":%q,"voltage_v":51.2,"current_a":-12.5,"temperature_c":31.4,"soc_pct":78.5}`, quoted, ts)
	}
	add := func(topic string, key, value []byte) {
		msgs = append(msgs, kafka.Message{Topic: topic, Key: key, Value: value, Time: rec})
	}
	for _, key := range [][]byte{[]byte(KeyedBattery), nil, {}, []byte("B-2"), []byte("b-1"), []byte("B-1 "), []byte("B-1\x00"), []byte(KeyedRoom)} {
		add(schemas.TopicBattery, key, reading(KeyedBattery))
	}
	occupancy := fmt.Appendf(nil, `{"type":"occupancy","room_id":%q,"occupied":true,"ts":%q}`, KeyedRoom, ts)
	add(schemas.TopicRoom, []byte(KeyedRoom), occupancy)
	add(schemas.TopicRoom, []byte(KeyedRoom+"-light-1"), occupancy)
	for _, id := range []string{"B 1", "B\x00", strings.Repeat("B", 129), strings.Repeat("B", 900<<10)} {
		add(schemas.TopicBattery, []byte(id), reading(id))
	}
	// A lone surrogate decodes to U+FFFD, whatever the key says.
	add(schemas.TopicBattery, []byte("B-\uFFFD"), fmt.Appendf(nil, `{"battery_id":"B-\ud800","ts":%q,"voltage_v":1,"current_a":1,"temperature_c":1,"soc_pct":1}`, ts))
	return msgs, map[string]int{"key_mismatch": 7 + 1, "bad_id": 5}
}

// CheckLetters waits for the dead letters of the event topics and checks
// their count by reason (reason code -> letters), and that each is its
// source message unchanged: value, key and coordinates.
func CheckLetters(t testing.TB, addr string, want map[string]int) {
	t.Helper()
	sources := ReadAll(t, addr, schemas.TopicBattery, schemas.TopicRoom)
	total := 0
	for _, n := range want {
		total += n
	}
	var letters []kafka.Message
	for deadline := time.Now().Add(20 * time.Second); ; {
		letters = ReadAll(t, addr, schemas.TopicDLQ)
		if len(letters) >= total || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	bySource := map[string]kafka.Message{}
	for _, m := range sources {
		bySource[m.Topic+"/"+strconv.Itoa(m.Partition)+"/"+strconv.FormatInt(m.Offset, 10)] = m
	}
	got := map[string]int{}
	for _, l := range letters {
		reason := kafkaio.HeaderValue(l, kafkaio.HeaderReason)
		got[reason]++
		coords := kafkaio.HeaderValue(l, kafkaio.HeaderTopic) + "/" + kafkaio.HeaderValue(l, kafkaio.HeaderPartition) + "/" +
			kafkaio.HeaderValue(l, kafkaio.HeaderOffset)
		src, ok := bySource[coords]
		if !ok || string(l.Key) != coords {
			t.Fatalf("%s letter keyed %q names no source message (%s)", reason, l.Key, coords)
		}
		if string(l.Value) != string(src.Value) || kafkaio.HeaderValue(l, kafkaio.HeaderKey) != string(src.Key) {
			t.Fatalf("%s letter of %s does not carry the original key %q and value", reason, coords, src.Key)
		}
		if reason == "bad_id" && kafkaio.HeaderValue(l, kafkaio.HeaderField) != "battery_id" {
			t.Fatalf("bad_id letter names field %q", kafkaio.HeaderValue(l, kafkaio.HeaderField))
		}
	}
	if len(letters) != total || len(got) != len(want) {
		t.Fatalf("dead letters by reason %v, want %v", got, want)
	}
	for r, n := range want {
		if got[r] != n {
			t.Fatalf("dead letters by reason %v, want %v", got, want)
		}
	}
}
