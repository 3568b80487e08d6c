package serving

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/internal/reference"
	"github.com/gridlake/gridlake/internal/testenv"
	"github.com/gridlake/gridlake/schemas"
	"github.com/segmentio/kafka-go"
)

// roomStream writes random room events: ties on a coarse grid and at
// local midnight, duplicates (again, later), reordering within a step, and
// late events for days that may be closed already.
type roomStream struct {
	r     *rand.Rand
	loc   *time.Location
	rooms int
	sent  []kafka.Message // for duplicates of older messages
	stays int
}

var propDevices = []struct{ id, typ string }{{"L1", "light"}, {"L2", "light"}, {"H1", "hvac"}, {"T1", "tv"}}

// event is one random event of room at ts, as devices send it.
func (g *roomStream) event(room string, ts int64) []byte {
	at := time.UnixMilli(ts).UTC().Format("2006-01-02T15:04:05.000Z")
	switch k := g.r.IntN(10); {
	case k < 6:
		d := propDevices[g.r.IntN(len(propDevices))]
		if g.r.IntN(2) == 0 {
			return fmt.Appendf(nil, `{"type":"device","room_id":%q,"device_id":%q,"device_type":%q,"state":"off","ts":%q}`, room, room+"-"+d.id, d.typ, at)
		}
		power := []float64{8, 12.5, 60, 950}[g.r.IntN(4)]
		return fmt.Appendf(nil, `{"type":"device","room_id":%q,"device_id":%q,"device_type":%q,"state":"on","power_w":%g,"ts":%q}`, room, room+"-"+d.id, d.typ, power, at)
	case k < 8:
		return fmt.Appendf(nil, `{"type":"occupancy","room_id":%q,"occupied":%t,"ts":%q}`, room, g.r.IntN(2) == 0, at)
	default:
		g.stays++
		action := []string{"check_in", "check_out"}[g.r.IntN(2)]
		return fmt.Appendf(nil, `{"type":"stay","room_id":%q,"action":%q,"stay_id":"S%d","ts":%q}`, room, action, g.stays, at)
	}
}

// ts is a random time in [from, to): on a ten-minute grid half the time,
// so events of a room tie, and now and then at a local midnight.
func (g *roomStream) ts(from, to int64) int64 {
	ts := from + g.r.Int64N(to-from)
	switch g.r.IntN(4) {
	case 0, 1:
		ts -= ts % 600_000
	case 2:
		d := agg.DayOf(ts, g.loc)
		ts, _ = d.Bounds(g.loc)
	}
	return max(ts, from)
}

// step returns the messages of [now, now+d): each room's events, a few
// late ones for the days before, and duplicates, in shuffled order with
// record times at most a few minutes after their ts.
func (g *roomStream) step(now time.Time, d time.Duration) []kafka.Message {
	from, to := now.UnixMilli(), now.Add(d).UnixMilli()
	var out []kafka.Message
	add := func(room string, ts, rec int64) {
		out = append(out, kafka.Message{Topic: schemas.TopicRoom, Key: []byte(room), Value: g.event(room, ts), Time: time.UnixMilli(rec)})
	}
	for i := range g.rooms {
		room := "R-" + strconv.Itoa(100+i)
		for range g.r.IntN(5) {
			ts := g.ts(from, to)
			add(room, ts, min(ts+g.r.Int64N(180_000), to))
		}
		if g.r.IntN(3) == 0 { // late: up to three days ago, sent now
			add(room, g.ts(from-72*3_600_000, from), to)
		}
	}
	for range g.r.IntN(4) {
		if len(g.sent) > 0 {
			m := g.sent[g.r.IntN(len(g.sent))]
			m.Time = time.UnixMilli(to)
			out = append(out, m)
		}
	}
	g.r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	g.sent = append(g.sent, out...)
	return out
}

// TestRooms_Property: random room streams across several local midnights,
// with the close job held back 0 to 3 days and batch run at random
// moments. At every sample, every room's report and timeline of every day
// and the hotel's totals equal the reference over every event so far.
func TestRooms_Property(t *testing.T) {
	for hold := range 4 {
		t.Run(fmt.Sprintf("held_back_%dd", hold), func(t *testing.T) {
			// 21:00 in Seoul.
			propertyRun(t, "Asia/Seoul", time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC), hold, uint64(hold+1))
		})
	}
}

// TestRooms_PropertyDST: the same in a zone with daylight saving, over
// both 2026 changes in America/New_York: days of 23 and 25 hours.
func TestRooms_PropertyDST(t *testing.T) {
	for _, c := range []struct {
		name  string
		start time.Time
	}{
		{"spring_forward", time.Date(2026, 3, 7, 2, 0, 0, 0, time.UTC)}, // 21:00 EST the day before the 23-hour day
		{"fall_back", time.Date(2026, 10, 31, 1, 0, 0, 0, time.UTC)},    // 21:00 EDT the day before the 25-hour day
	} {
		t.Run(c.name, func(t *testing.T) { propertyRun(t, "America/New_York", c.start, 1+int(c.start.Month())%3, 11) })
	}
}

func propertyRun(t *testing.T, zone string, start time.Time, holdDays int, seed uint64) {
	r := newRoomsRigIn(t, start, zone)
	r.hold = time.Duration(holdDays) * 24 * time.Hour
	g := &roomStream{r: rand.New(rand.NewPCG(seed, 42)), loc: r.loc, rooms: 4}
	// Late events reach up to three days back.
	first := agg.DayOf(start.Add(-72*time.Hour).UnixMilli(), r.loc)
	samples := 0
	for r.now.Before(start.Add(80 * time.Hour)) {
		d := time.Duration(60+g.r.IntN(300)) * time.Minute
		msgs := g.step(r.now, d)
		if err := r.w.WriteMessages(r.ctx, msgs...); err != nil {
			t.Fatal(err)
		}
		r.now = r.now.Add(d)
		waitSpeed(t, r.sp, r.addr, r.parts)
		if g.r.IntN(2) == 0 {
			r.compact()
		}
		r.checkAll(first)
		samples++
	}
	t.Logf("%d samples over %s to %s, close held back %d days", samples, first, agg.DayOf(r.now.UnixMilli(), r.loc), holdDays)
}

// checkAll compares every room's days and timelines, and the hotel's
// totals of every day since first, with the reference as of now.
func (r *roomsRig) checkAll(first agg.Day) {
	r.t.Helper()
	ref := reference.Build(schemas.DefaultLimits(), testenv.ReadAll(r.t, r.addr, schemas.TopicRoom))
	today, asOf := agg.DayOf(r.now.UnixMilli(), r.loc), r.now.UnixMilli()
	for room := range ref.Rooms {
		var got struct{ Days []RoomDay }
		r.get(fmt.Sprintf("/v1/rooms/%s/days?from=%s&to=%s", room, first, today), &got)
		seen := map[string]bool{}
		for _, g := range got.Days {
			d, err := agg.ParseDay(g.Day)
			if err != nil {
				r.t.Fatal(err)
			}
			if want := ref.RoomDay(room, d, r.loc, asOf); !reference.SameRoomDay(g.RoomDay, want) {
				r.t.Fatalf("at %s room %s day %s (closed %v rev %d):\n got %+v\nwant %+v", r.now.In(r.loc), room, g.Day, g.Closed, g.Revision, g.RoomDay, want)
			}
			seen[g.Day] = true
		}
		days := ref.Days(room, r.loc)
		for d := days[0]; d.Compare(today) <= 0; d = d.Next() {
			if !seen[d.String()] {
				r.t.Fatalf("at %s room %s: day %s missing from %d days", r.now.In(r.loc), room, d, len(got.Days))
			}
			r.checkTimeline(ref, room, d)
		}
	}
	for d := first; d.Compare(today) <= 0; d = d.Next() {
		var h struct {
			Total agg.TypeUsage
		}
		r.get(fmt.Sprintf("/v1/hotel/days/%s", d), &h)
		var want agg.TypeUsage
		for room := range ref.Rooms {
			for _, u := range ref.RoomDay(room, d, r.loc, asOf).ByType {
				want.Add(*u)
			}
		}
		if !reference.Close(h.Total.EnergyWh, want.EnergyWh) || !reference.Close(h.Total.WasteWh, want.WasteWh) ||
			!reference.Close(h.Total.OnS, want.OnS) || !reference.Close(h.Total.OnVacantS, want.OnVacantS) {
			r.t.Fatalf("at %s hotel %s total:\n got %+v\nwant %+v", r.now.In(r.loc), d, h.Total, want)
		}
	}
}
