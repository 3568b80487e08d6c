package serving

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"math"
	"time"

	"github.com/gridlake/gridlake/agg"
)

// roomTables are the merged room tables: room_day_live is every room's
// report of every local day, closed or open, as the API answers it (one
// row per room, day and device type; a room with no device that day has
// one row with an empty device_type and zero device figures, as in room_day);
// hotel_day sums it per day and device type, as /v1/hotel/days does.
var roomTables = []string{"room_day_live", "hotel_day"}

const roomDayLiveDDL = `CREATE OR REPLACE TEMP TABLE room_day_live (room_id VARCHAR, day DATE, device_type VARCHAR,
on_s DOUBLE, on_vacant_s DOUBLE, on_unsold_s DOUBLE, energy_wh DOUBLE, waste_wh DOUBLE,
occupied_s DOUBLE, sold_s DOUBLE, closed BOOLEAN, revision BIGINT, local_day DATE)`

const hotelDayView = `CREATE OR REPLACE TEMP VIEW hotel_day AS
SELECT day, day AS local_day, device_type, count(*) AS rooms, sum(on_s) AS on_s, sum(on_vacant_s) AS on_vacant_s,
	sum(on_unsold_s) AS on_unsold_s, sum(energy_wh) AS energy_wh, sum(waste_wh) AS waste_wh, bool_and(closed) AS closed
FROM room_day_live WHERE device_type <> '' GROUP BY day, device_type`

// needsRooms reports whether a query reads the merged room tables.
func needsRooms(refs map[string]bool) bool {
	for _, t := range roomTables {
		if refs[t] {
			return true
		}
	}
	return false
}

// roomViews fills room_day_live and defines hotel_day in this connection.
// The reports are computed off the engine thread: a late event's day
// replays the lake's raw events, which may fetch objects into the cache.
func (q *SQL) roomViews(ctx context.Context, conn *sql.Conn, srcs []Source) error {
	var days [][]RoomDay
	if err := outside(func() (err error) { days, err = q.liveRoomDays(ctx, srcs); return err }); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, roomDayLiveDDL); err != nil {
		return err
	}
	err := appendRows(conn, "room_day_live", func(add func(...driver.Value)) error {
		for _, rooms := range days {
			for i := range rooms {
				d := &rooms[i]
				day, err := time.Parse("2006-01-02", d.Day)
				if err != nil {
					return err
				}
				row := func(typ string, u agg.TypeUsage) {
					add(d.RoomID, day, typ, u.OnS, u.OnVacantS, u.OnUnsoldS, u.EnergyWh, u.WasteWh, d.OccupiedS, d.SoldS, d.Closed, d.Revision, day)
				}
				if len(d.ByType) == 0 {
					row("", agg.TypeUsage{})
				}
				for typ, u := range d.ByType {
					row(typ, *u)
				}
			}
		}
		return nil
	})
	if err != nil {
		return speedErr(err)
	}
	_, err = conn.ExecContext(ctx, hotelDayView)
	return err
}

// liveRoomDays is every room's report of every local day from the first
// one any side holds through today, per day, from one snapshot's sources:
// the same reports /v1/rooms/{id}/days and /v1/hotel/days answer.
func (q *SQL) liveRoomDays(ctx context.Context, srcs []Source) ([][]RoomDay, error) {
	today := agg.DayOf(q.m.now().UnixMilli(), q.m.loc)
	first, ok, err := firstRoomDay(ctx, srcs, q.m.loc)
	if err != nil || !ok {
		return nil, err
	}
	if first.Compare(today) > 0 {
		return nil, nil // events only ahead of the clock: no day has begun
	}
	if n := today.DaysSince(first) + 1; n > int64(q.o.MaxRoomDays) {
		return nil, queryErr(KindTooLarge, "room_day_live and hotel_day would span %d local days (%s to %s), more than serve.sql_max_room_days (%d): raise it, or read closed days before %s from room_day",
			n, first, today, q.o.MaxRoomDays, time.Date(today.Year, today.Month, today.Day-q.o.MaxRoomDays+1, 0, 0, 0, 0, time.UTC).Format("2006-01-02"))
	}
	var out [][]RoomDay
	for d := first; d.Compare(today) <= 0; d = d.Next() {
		rooms, err := q.m.hotelAt(ctx, srcs, d)
		if err != nil {
			return nil, err
		}
		out = append(out, rooms)
	}
	return out, nil
}

// firstRoomDay is the first local day any side holds a room report or
// event of: the first day batch closed, the day of any event no closed
// day has taken in (a late one may be older), and, while no day is
// closed, the day of the first event.
func firstRoomDay(ctx context.Context, srcs []Source, loc *time.Location) (first agg.Day, ok bool, err error) {
	take := func(d agg.Day) {
		if !ok || d.Compare(first) < 0 {
			first, ok = d, true
		}
	}
	_, anyClosed := closedThrough(srcs)
	for _, src := range srcs {
		if b, isBatch := src.(*batchSource); isBatch {
			for day := range b.s.roomDays {
				if d, err := agg.ParseDay(day); err == nil {
					take(d)
				}
			}
		}
		from, to := int64(0), int64(0) // an empty span: only untaken
		if !anyClosed {
			from, to = math.MinInt64/2, math.MaxInt64/2
		}
		err := src.RoomEvents(ctx, "", from, to, func(_ string, evs []agg.RoomEvent, untaken int64) {
			if untaken != math.MaxInt64 {
				take(agg.DayOf(untaken, loc))
			}
			for _, e := range evs {
				take(agg.DayOf(e.TS, loc))
			}
		})
		if err != nil {
			return first, false, err
		}
	}
	return first, ok, nil
}
