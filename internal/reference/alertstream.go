package reference

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/segmentio/kafka-go"
)

// StreamOptions shape a random stream for the alert property tests.
type StreamOptions struct {
	Seed      uint64
	Batteries int
	Rooms     int
	Start     time.Time
	Duration  time.Duration
	Every     time.Duration // a battery's reading interval
	Lateness  time.Duration // the evaluator's: delays are drawn within and beyond it
}

// AlertStream returns random battery and room messages in the order a
// producer sends them (by record time, set in Time): readings that cross
// thresholds both ways, batteries that stop and resume, a stretch where
// most of the fleet is silent, rooms whose devices stay on while vacant or
// unsold, reordering within and beyond the lateness, duplicates (sent
// again later) and a few malformed messages.
func AlertStream(o StreamOptions) []kafka.Message {
	r := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	type sent struct {
		m   kafka.Message
		rec time.Time
	}
	var out []sent
	lat := o.Lateness
	delay := func() time.Duration {
		switch x := r.Float64(); {
		case x < 0.70:
			return time.Duration(r.IntN(2000)) * time.Millisecond
		case x < 0.90: // reordered within the lateness
			return time.Duration(r.Int64N(int64(lat)))
		case x < 0.95: // device clock ahead of the broker
			return -time.Duration(r.IntN(60)) * time.Second
		default: // late: beyond the lateness
			return lat + time.Duration(r.Int64N(int64(3*lat)))
		}
	}
	send := func(topic, key, value string, ts time.Time) {
		rec := ts.Add(delay())
		out = append(out, sent{kafka.Message{Topic: topic, Key: []byte(key), Value: []byte(value)}, rec})
		if r.Float64() < 0.04 { // a duplicate, sent again later
			out = append(out, sent{kafka.Message{Topic: topic, Key: []byte(key), Value: []byte(value)}, rec.Add(time.Duration(r.Int64N(int64(2 * lat))))})
		}
	}
	end := o.Start.Add(o.Duration)
	// The whole fleet mostly silent for a stretch in the middle.
	quietFrom := o.Start.Add(o.Duration * 2 / 5)
	quietTo := quietFrom.Add(4 * time.Minute)
	// A quarter of the fleet silent for a long stretch, so that alerts are
	// under way wherever a test restarts its consumer.
	longFrom, longTo := o.Start.Add(o.Duration*3/10), o.Start.Add(o.Duration*3/4)
	for b := 0; b < o.Batteries; b++ {
		id := fmt.Sprintf("B-%05d", b)
		temp, soc := 30+r.Float64()*10, 20+r.Float64()*60
		var silentUntil time.Time
		for ts := o.Start.Add(time.Duration(r.Int64N(int64(o.Every)))); ts.Before(end); ts = ts.Add(o.Every) {
			if ts.Before(silentUntil) || (!ts.Before(quietFrom) && ts.Before(quietTo) && b%5 != 0) ||
				(!ts.Before(longFrom) && ts.Before(longTo) && b%4 == 1) {
				continue
			}
			if r.Float64() < 0.004 { // stops, then resumes
				silentUntil = ts.Add(time.Duration(30+r.IntN(400)) * time.Second)
			}
			temp = min(80, max(10, temp+(r.Float64()-0.45)*2.5))
			soc = min(100, max(0, soc+(r.Float64()-0.52)*2))
			ts := ts.Add(time.Duration(r.IntN(1000)) * time.Millisecond)
			if r.Float64() < 0.003 {
				send("gridlake.battery", id, `{"battery_id":"`+id+`","ts":`+fmt.Sprint(ts.UnixMilli())+`,"voltage_v":"x"}`, ts)
				continue
			}
			send("gridlake.battery", id, fmt.Sprintf(`{"battery_id":%q,"ts":%d,"voltage_v":%.2f,"current_a":%.2f,"temperature_c":%.2f,"soc_pct":%.2f}`,
				id, ts.UnixMilli(), 48+r.Float64()*6, (r.Float64()-0.5)*40, temp, soc), ts)
		}
	}
	for k := 0; k < o.Rooms; k++ {
		room := fmt.Sprintf("R-%04d", 101+k)
		for ts := o.Start.Add(time.Duration(r.Int64N(int64(time.Minute)))); ts.Before(end); ts = ts.Add(time.Duration(20+r.IntN(240)) * time.Second) {
			ts := ts.Add(time.Duration(r.IntN(1000)) * time.Millisecond)
			ms := ts.UnixMilli()
			switch x := r.IntN(10); {
			case x < 6:
				dev := []string{"light-1", "hvac"}[r.IntN(2)]
				state := []string{"on", "off"}[r.IntN(2)]
				send("gridlake.room", room, fmt.Sprintf(`{"type":"device","room_id":%q,"device_id":"%s-%s","device_type":"%s","state":%q,"power_w":20,"ts":%d}`,
					room, room, dev, dev[:min(len(dev), 5)], state, ms), ts)
			case x < 8:
				send("gridlake.room", room, fmt.Sprintf(`{"type":"occupancy","room_id":%q,"occupied":%t,"ts":%d}`, room, r.IntN(2) == 0, ms), ts)
			default:
				action := []string{"check_in", "check_out"}[r.IntN(2)]
				send("gridlake.room", room, fmt.Sprintf(`{"type":"stay","room_id":%q,"action":%q,"stay_id":"S-%d","ts":%d}`, room, action, k, ms), ts)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].rec.Before(out[j].rec) })
	msgs := make([]kafka.Message, len(out))
	for i, s := range out {
		msgs[i] = s.m
		msgs[i].Time = s.rec
	}
	return msgs
}
