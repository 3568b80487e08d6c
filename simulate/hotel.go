package simulate

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"
)

// device of a room, with its rated power.
type device struct {
	id, kind string
	powerW   float64
	on       bool
}

// room is one simulated hotel room with its guest and devices.
type room struct {
	id        string
	devices   []device
	checkedIn bool
	occupied  bool
	stay      int
	stayUntil int64 // check-out time of the current stay, Unix ms
	next      int64 // time of the room's next action, Unix ms
}

func roomID(i int) string {
	// Twenty rooms a floor: R-0101 .. R-0120, R-0201, ...
	return fmt.Sprintf("R-%02d%02d", i/20+1, i%20+1)
}

func newRoom(i int, startMS int64, r *rand.Rand) room {
	id := roomID(i)
	rm := room{id: id, next: startMS + int64(r.IntN(300_000))}
	add := func(kind string, n int, watts float64) {
		for k := 1; k <= n; k++ {
			rm.devices = append(rm.devices, device{id: id + "-" + kind + "-" + strconv.Itoa(k), kind: kind, powerW: watts})
		}
	}
	add("light", 2+r.IntN(2), 8+float64(r.IntN(8)))
	add("hvac", 1, 700+float64(r.IntN(600)))
	add("tv", 1, 80+float64(r.IntN(60)))
	return rm
}

// roomEvent is one event a room emits, rendered by appendRoomEvent.
type roomEvent struct {
	kind     byte // 'd' device, 'o' occupancy, 's' stay
	dev      *device
	occupied bool
	checkIn  bool
	stayID   string
}

// act performs the room's next action at time nowMS and schedules the one
// after. Guests check in, come and go, switch devices and sometimes leave
// them on in an empty room; rooms without a guest are sometimes cleaned.
// Actions come every few simulated minutes so that short runs see every
// kind of event.
func (rm *room) act(nowMS int64, r *rand.Rand, emit func(roomEvent)) {
	rm.next = nowMS + 60_000 + int64(r.IntN(540_000))
	switch {
	case !rm.checkedIn && r.Float64() < 0.35:
		rm.stay++
		rm.checkedIn = true
		rm.stayUntil = nowMS + int64(2+r.IntN(10))*3_600_000
		emit(roomEvent{kind: 's', checkIn: true, stayID: rm.stayName()})
		rm.setOccupied(true, emit)
		rm.switchOn(r, emit)
	case !rm.checkedIn:
		// Housekeeping: in, lights on, everything off, out; or nobody comes.
		if r.Float64() < 0.3 {
			rm.setOccupied(true, emit)
			rm.allOff(emit, 1)
			rm.setOccupied(false, emit)
		}
	case nowMS >= rm.stayUntil:
		if r.Float64() < 0.7 {
			rm.allOff(emit, 1)
		}
		rm.setOccupied(false, emit)
		emit(roomEvent{kind: 's', checkIn: false, stayID: rm.stayName()})
		rm.checkedIn = false
	case rm.occupied && r.Float64() < 0.4:
		// The guest goes out; a third of guests leave something on.
		if r.Float64() < 0.66 {
			rm.allOff(emit, 1)
		} else {
			rm.allOff(emit, 0.5)
		}
		rm.setOccupied(false, emit)
	case rm.occupied:
		d := &rm.devices[r.IntN(len(rm.devices))]
		d.on = !d.on
		emit(roomEvent{kind: 'd', dev: d})
	default:
		rm.setOccupied(true, emit)
		rm.switchOn(r, emit)
	}
}

func (rm *room) stayName() string { return fmt.Sprintf("S-%s-%d", rm.id[2:], rm.stay) }

func (rm *room) setOccupied(v bool, emit func(roomEvent)) {
	rm.occupied = v
	emit(roomEvent{kind: 'o', occupied: v})
}

func (rm *room) switchOn(r *rand.Rand, emit func(roomEvent)) {
	for i := range rm.devices {
		d := &rm.devices[i]
		if !d.on && (d.kind == "light" || r.Float64() < 0.5) {
			d.on = true
			emit(roomEvent{kind: 'd', dev: d})
		}
	}
}

// allOff switches devices off, each with probability p.
func (rm *room) allOff(emit func(roomEvent), p float64) {
	for i := range rm.devices {
		d := &rm.devices[i]
		if d.on && (p >= 1 || float64(i%2) < p*2) {
			d.on = false
			emit(roomEvent{kind: 'd', dev: d})
		}
	}
}

func appendRoomEvent(b []byte, roomID string, e roomEvent, tsMS int64) []byte {
	switch e.kind {
	case 'd':
		b = append(b, `{"type":"device","room_id":"`...)
		b = append(b, roomID...)
		b = append(b, `","device_id":"`...)
		b = append(b, e.dev.id...)
		b = append(b, `","device_type":"`...)
		b = append(b, e.dev.kind...)
		if e.dev.on {
			b = append(b, `","state":"on","power_w":`...)
			b = strconv.AppendFloat(b, e.dev.powerW, 'f', -1, 64)
		} else {
			b = append(b, `","state":"off"`...)
		}
	case 'o':
		b = append(b, `{"type":"occupancy","room_id":"`...)
		b = append(b, roomID...)
		b = append(b, `","occupied":`...)
		b = strconv.AppendBool(b, e.occupied)
	case 's':
		b = append(b, `{"type":"stay","room_id":"`...)
		b = append(b, roomID...)
		if e.checkIn {
			b = append(b, `","action":"check_in","stay_id":"`...)
		} else {
			b = append(b, `","action":"check_out","stay_id":"`...)
		}
		b = append(b, e.stayID...)
		b = append(b, '"')
	}
	b = append(b, `,"ts":`...)
	b = appendTS(b, tsMS, false)
	return append(b, '}')
}

func appendTS(b []byte, ms int64, epoch bool) []byte {
	if epoch {
		return strconv.AppendInt(b, ms, 10)
	}
	b = append(b, '"')
	b = time.UnixMilli(ms).UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	return append(b, '"')
}
