package speed

import (
	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/schemas"
)

// roomPart is the speed state of one partition of gridlake.room: every
// de-duplicated event of each of its rooms since the replay start. Room
// traffic is sparse (a few events per room per hour), so the speed layer
// keeps events, not aggregates, and integrates a day's report when asked;
// that keeps out-of-order and late events exact for free.
type roomPart struct {
	rooms map[string]*roomLog
	// openFrom is the start (Unix ms) of the earliest day batch has not
	// closed; an event before it arrived late for a closed day.
	openFrom int64
}

type roomLog struct {
	events []agg.RoomEvent
	// offsets are the events' Kafka offsets: those at or above a batch
	// cut are records batch has not taken in (a late event for a closed
	// day among them counts at once, see serving's replay).
	offsets []int64
	ids     map[schemas.Identity]struct{}
}

func newRoomPart(openFrom int64) *roomPart {
	return &roomPart{rooms: map[string]*roomLog{}, openFrom: openFrom}
}

// apply adds one room event read at offset; it reports whether it was a
// duplicate and whether it was late for a closed day.
func (p *roomPart) apply(ev *schemas.Event, offset int64) (dup, late bool) {
	roomID := ev.RoomID()
	rl := p.rooms[roomID]
	if rl == nil {
		rl = &roomLog{ids: map[schemas.Identity]struct{}{}}
		p.rooms[roomID] = rl
	}
	e := agg.RoomEventOf(ev)
	id := e.Identity(roomID)
	if _, ok := rl.ids[id]; ok {
		return true, false
	}
	rl.ids[id] = struct{}{}
	rl.events = append(rl.events, e)
	rl.offsets = append(rl.offsets, offset)
	return false, e.TS < p.openFrom
}

func (p *roomPart) size() int {
	n := 0
	for _, rl := range p.rooms {
		n += len(rl.events)
	}
	return n
}
