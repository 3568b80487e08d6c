package serving

import (
	"context"

	"github.com/gridlake/gridlake/agg"
)

// Source is one side of the merge at one manifest version: the batch views
// of that version (batchSource), or the speed state above its cut
// (speedSource). The merge is written once over a list of sources, batch
// first (merge_battery.go, merge_fleet.go, merge_rooms.go), as Prometheus
// merges its queriers; a new side (another speed process, one reached over
// HTTP) is a new Source, not a new copy of the merge.
//
// The sides hold disjoint records: batch the records below the cut, each
// speed process those at or above it of the partitions it owns. Every
// callback runs before its method returns, in no particular order.
type Source interface {
	// Windows calls fn with battery id's windows of res starting in
	// [from, to), or every battery's when id is "". found says whether
	// the side knows the battery.
	Windows(ctx context.Context, id string, res agg.Res, from, to int64, fn func(id string, w agg.Window)) (found bool, err error)
	// FleetWindows calls fn with the side's fleet windows of res starting
	// in [from, to): its batteries folded per window.
	FleetWindows(ctx context.Context, res agg.Res, from, to int64, fn func(agg.FleetWindow)) error
	// Batteries calls fn with every battery that has a window of res
	// starting at one of starts, so the fleet merge counts a battery both
	// sides hold once.
	Batteries(ctx context.Context, res agg.Res, starts []int64, fn func(start int64, id string)) error
	// Latest calls fn with battery id's reading with the greatest ts, or
	// every battery's when id is "". found says whether the side has one.
	Latest(ctx context.Context, id string, fn func(id string, r agg.Reading)) (found bool, err error)

	// ClosedThrough is the last local day the side closed: its reports of
	// that day and every day before it are final, but for late events
	// (RoomEvents' untaken). ok is false when it closed none; the speed
	// side closes no day.
	ClosedThrough() (last agg.Day, ok bool)
	// ClosedDay calls fn with the report of room (every room when room
	// is "") for a day the side closed, as it closed it.
	ClosedDay(ctx context.Context, room string, day agg.Day, fn func(RoomDay)) error
	// Rooms lists the rooms the side holds state or events of.
	Rooms(ctx context.Context) ([]string, error)
	// RoomStart calls fn with the state of room (every room when room is
	// "") at the start of local day, as the side closed the day before it.
	RoomStart(ctx context.Context, room string, day agg.Day, fn func(room string, st agg.RoomState)) error
	// RoomEvents calls fn with the de-duplicated events of room (every
	// room when room is "") the side holds with ts in [from, to), and with
	// untaken: the earliest ts among the room's events that no closed day
	// has taken in (math.MaxInt64 when none). The batch side holds the
	// lake's raw events of the days it closed and took all of them in; the
	// speed side holds every event of the open days, and the late ones
	// for closed days until batch closes those days again.
	RoomEvents(ctx context.Context, room string, from, to int64, fn func(room string, evs []agg.RoomEvent, untaken int64)) error
}

// disjointSides is implemented by sides that hold disjoint sets of
// batteries within one group: the speed processes of one owner set each
// hold the partitions they own, and all of a battery's records lie in one
// partition (the producers key them by battery id). The fleet merge adds
// their distinct-battery counts as they are and reads batteries back only
// for windows sides of different groups share. A group is compared with
// ==; sides that do not implement it are each a group of their own.
type disjointSides interface {
	disjointGroup() any
}
