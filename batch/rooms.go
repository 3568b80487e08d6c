package batch

import (
	"context"
	"database/sql"
	"encoding/json"
	"sort"
	"time"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/views"
)

// closedThrough is the last local day that has ended at least the grace
// period ago.
func (r *Recomputer) closedThrough() agg.Day {
	now := r.site.Now().Add(-r.site.CloseGrace)
	d := agg.DayOf(now.UnixMilli(), r.site.Location)
	// d is still running at now; the day before it is the last closed one.
	prev := time.Date(d.Year, d.Month, d.Day-1, 0, 0, 0, 0, time.UTC)
	return agg.Day{Year: prev.Year(), Month: prev.Month(), Day: prev.Day()}
}

// updateRooms (re)closes the days whose room inputs changed. A day's
// report depends on every room event up to its end (states carry over
// midnight), so its fingerprint covers all room files of hours before its
// end: a late event re-closes its day and every closed day after it.
func (r *Recomputer) updateRooms(ctx context.Context, m *lake.Manifest, have map[string]lake.ViewFile, force Scope) (int, error) {
	var files []lake.File
	for _, f := range m.Files {
		if f.Topic == schemas.TopicRoom {
			files = append(files, f)
		}
	}
	if len(files) == 0 {
		return 0, nil
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Hour < files[j].Hour })
	loc := r.site.Location
	first, err := time.Parse("2006-01-02T15", files[0].Hour)
	if err != nil {
		return 0, err
	}
	last := r.closedThrough()
	type dayWork struct {
		day     agg.Day
		sources string
	}
	var todo []dayWork
	sources := func(d agg.Day, loc *time.Location) string {
		_, end := d.Bounds(loc)
		var inputs []lake.File
		for _, f := range files {
			if h, _ := time.Parse("2006-01-02T15", f.Hour); h.UnixMilli() < end {
				inputs = append(inputs, f)
			}
		}
		return fingerprint(inputs)
	}
	for d := agg.DayOf(first.UnixMilli(), loc); !after(d, last); d = d.Next() {
		src := sources(d, loc)
		if v, ok := have[views.RoomDay+"|"+d.String()]; ok && !force(views.RoomDay, d.String()) && v.Logic == views.Logic {
			// A day's inputs are measured in the zone it was closed in: a
			// change of site.timezone applies to days closed from now on,
			// and to older ones only through a backfill (or a late event).
			built := loc
			if v.Zone != "" && v.Zone != loc.String() {
				if l, err := time.LoadLocation(v.Zone); err == nil {
					built = l
				}
			}
			if v.Sources == sources(d, built) {
				continue
			}
		}
		todo = append(todo, dayWork{d, src})
	}
	if !after(agg.DayOf(first.UnixMilli(), loc), last) {
		m.ClosedThrough = last.String()
	}
	if len(todo) == 0 {
		return 0, nil
	}
	events, err := r.reader.RoomEvents(ctx, files)
	if err != nil {
		return 0, err
	}
	conn, err := r.db.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	for _, w := range todo {
		revision := int64(1)
		if v, ok := have[views.RoomDay+"|"+w.day.String()]; ok {
			revision = v.Revision + 1
		}
		rows := dayRows(events, w.day, loc, revision)
		vf, err := r.writeRoomDay(ctx, conn, m.Version, w.day.String(), rows, w.sources)
		if err != nil {
			return 0, err
		}
		vf.Revision = revision
		vf.Zone = loc.String()
		have[views.RoomDay+"|"+w.day.String()] = vf
	}
	r.log.Info("room days closed", "days", len(todo), "closed_through", m.ClosedThrough)
	return len(todo), nil
}

func after(a, b agg.Day) bool { return a.String() > b.String() }

// dayRows integrates every room over one local day.
func dayRows(events map[string][]agg.RoomEvent, day agg.Day, loc *time.Location, revision int64) []views.RoomDayRow {
	from, to := day.Bounds(loc)
	rooms := make([]string, 0, len(events))
	for id := range events {
		rooms = append(rooms, id)
	}
	sort.Strings(rooms)
	var out []views.RoomDayRow
	for _, id := range rooms {
		evs := append([]agg.RoomEvent(nil), events[id]...)
		rep, st := agg.Replay(evs, from, to)
		state, _ := json.Marshal(st)
		base := views.RoomDayRow{RoomID: id, Day: day.String(), OccupiedS: rep.OccupiedS, SoldS: rep.SoldS, StateEnd: string(state), Revision: revision}
		if len(rep.ByType) == 0 {
			out = append(out, base)
			continue
		}
		types := make([]string, 0, len(rep.ByType))
		for t := range rep.ByType {
			types = append(types, t)
		}
		sort.Strings(types)
		for _, t := range types {
			row := base
			row.DeviceType, row.TypeUsage = t, *rep.ByType[t]
			out = append(out, row)
		}
	}
	return out
}

// writeRoomDay stores one day's rows as a view partition.
func (r *Recomputer) writeRoomDay(ctx context.Context, conn *sql.Conn, version int64, day string, rows []views.RoomDayRow, src string) (lake.ViewFile, error) {
	if _, err := conn.ExecContext(ctx, views.TempTableDDL("room_day", views.RoomDaySchema())); err != nil {
		return lake.ViewFile{}, err
	}
	defer conn.ExecContext(context.Background(), "DROP TABLE IF EXISTS room_day")
	stmt, err := conn.PrepareContext(ctx, views.RoomDayInsert("room_day"))
	if err != nil {
		return lake.ViewFile{}, err
	}
	defer stmt.Close()
	for i := range rows {
		if _, err := stmt.ExecContext(ctx, rows[i].Args()...); err != nil {
			return lake.ViewFile{}, err
		}
	}
	return r.writeView(ctx, conn, version, views.RoomDay, day, "SELECT * FROM room_day ORDER BY room_id, device_type", src)
}
