package batch

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/schemas"
)

// ViewRoomDay is the closed-day room energy report: one row per room, day
// and device type, with the room's occupied and sold seconds, its state at
// the end of the day (carried into the next) and a revision that rises each
// time late events re-close the day.
const ViewRoomDay = "room_day"

// RoomDayRow is one row of the room_day view.
type RoomDayRow struct {
	RoomID     string
	Day        string
	DeviceType string // "" for a room without device events that day
	agg.TypeUsage
	OccupiedS float64
	SoldS     float64
	StateEnd  string // JSON of agg.RoomState at the end of the day
	Revision  int64
}

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
		if v, ok := have[ViewRoomDay+"|"+d.String()]; ok && !force(ViewRoomDay, d.String()) && v.Logic == Logic {
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
	events, err := r.RoomEvents(ctx, files)
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
		if v, ok := have[ViewRoomDay+"|"+w.day.String()]; ok {
			revision = v.Revision + 1
		}
		rows := dayRows(events, w.day, loc, revision)
		vf, err := r.writeRoomDay(ctx, conn, m.Version, w.day.String(), rows, w.sources)
		if err != nil {
			return 0, err
		}
		vf.Revision = revision
		vf.Zone = loc.String()
		have[ViewRoomDay+"|"+w.day.String()] = vf
	}
	r.log.Info("room days closed", "days", len(todo), "closed_through", m.ClosedThrough)
	return len(todo), nil
}

func after(a, b agg.Day) bool { return a.String() > b.String() }

// RoomEvents loads every room event of the files, de-duplicated by
// identity (the lowest partition and offset wins), grouped by room.
func (r *Recomputer) RoomEvents(ctx context.Context, files []lake.File) (map[string][]agg.RoomEvent, error) {
	paths, err := r.cache.Files(ctx, files)
	if err != nil {
		return nil, err
	}
	order := "(kafka_partition::BIGINT << 40) | kafka_offset"
	q := `SELECT room_id, type, epoch_ms(ts), arg_min(device_id, ` + order + `), arg_min(device_type, ` + order + `),
			coalesce(state = 'on', occupied, action = 'check_in') AS flag, arg_min(power_w, ` + order + `)
		FROM read_parquet(` + ParquetList(paths) + `)
		GROUP BY room_id, type, coalesce(device_id, room_id), ts, flag`
	rows, err := r.db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("read room events: %w", err)
	}
	defer rows.Close()
	out := map[string][]agg.RoomEvent{}
	for rows.Next() {
		var room, typ string
		var e agg.RoomEvent
		var dev, devType sql.NullString
		var power sql.NullFloat64
		if err := rows.Scan(&room, &typ, &e.TS, &dev, &devType, &e.Flag, &power); err != nil {
			return nil, err
		}
		switch typ {
		case "device":
			e.Kind, e.DeviceID, e.DeviceType, e.PowerW = schemas.KindDevice, dev.String, devType.String, power.Float64
		case "occupancy":
			e.Kind = schemas.KindOccupancy
		default:
			e.Kind = schemas.KindStay
		}
		out[room] = append(out[room], e)
	}
	return out, rows.Err()
}

// dayRows integrates every room over one local day.
func dayRows(events map[string][]agg.RoomEvent, day agg.Day, loc *time.Location, revision int64) []RoomDayRow {
	from, to := day.Bounds(loc)
	rooms := make([]string, 0, len(events))
	for id := range events {
		rooms = append(rooms, id)
	}
	sort.Strings(rooms)
	var out []RoomDayRow
	for _, id := range rooms {
		evs := append([]agg.RoomEvent(nil), events[id]...)
		rep, st := agg.Replay(evs, from, to)
		state, _ := json.Marshal(st)
		base := RoomDayRow{RoomID: id, Day: day.String(), OccupiedS: rep.OccupiedS, SoldS: rep.SoldS, StateEnd: string(state), Revision: revision}
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
func (r *Recomputer) writeRoomDay(ctx context.Context, conn *sql.Conn, version int64, day string, rows []RoomDayRow, src string) (lake.ViewFile, error) {
	if _, err := conn.ExecContext(ctx, `CREATE OR REPLACE TEMP TABLE room_day (room_id VARCHAR, day DATE, device_type VARCHAR,
		on_s DOUBLE, on_vacant_s DOUBLE, on_unsold_s DOUBLE, energy_wh DOUBLE, waste_wh DOUBLE,
		occupied_s DOUBLE, sold_s DOUBLE, state_at_end VARCHAR, revision BIGINT)`); err != nil {
		return lake.ViewFile{}, err
	}
	defer conn.ExecContext(context.Background(), "DROP TABLE IF EXISTS room_day")
	stmt, err := conn.PrepareContext(ctx, "INSERT INTO room_day VALUES (?, ?::DATE, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
	if err != nil {
		return lake.ViewFile{}, err
	}
	defer stmt.Close()
	for _, x := range rows {
		if _, err := stmt.ExecContext(ctx, x.RoomID, x.Day, x.DeviceType, x.OnS, x.OnVacantS, x.OnUnsoldS,
			x.EnergyWh, x.WasteWh, x.OccupiedS, x.SoldS, x.StateEnd, x.Revision); err != nil {
			return lake.ViewFile{}, err
		}
	}
	return r.writeView(ctx, conn, version, ViewRoomDay, day, "SELECT * FROM room_day ORDER BY room_id, device_type", src)
}

// ReadRoomDays reads room_day partitions.
func (r *Recomputer) ReadRoomDays(ctx context.Context, files []lake.ViewFile, fn func(RoomDayRow)) error {
	paths, err := r.cache.Views(ctx, files)
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		return nil
	}
	rows, err := r.db.QueryContext(ctx, `SELECT room_id, strftime(day, '%Y-%m-%d'), device_type, on_s, on_vacant_s, on_unsold_s,
		energy_wh, waste_wh, occupied_s, sold_s, state_at_end, revision FROM read_parquet(`+ParquetList(paths)+`)`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var x RoomDayRow
		if err := rows.Scan(&x.RoomID, &x.Day, &x.DeviceType, &x.OnS, &x.OnVacantS, &x.OnUnsoldS,
			&x.EnergyWh, &x.WasteWh, &x.OccupiedS, &x.SoldS, &x.StateEnd, &x.Revision); err != nil {
			return err
		}
		fn(x)
	}
	return rows.Err()
}

// RoomDayReports reads room_day partitions as reports keyed "room|day".
func (r *Recomputer) RoomDayReports(ctx context.Context, files []lake.ViewFile) (map[string]agg.RoomDay, error) {
	out := map[string]agg.RoomDay{}
	err := r.ReadRoomDays(ctx, files, func(x RoomDayRow) {
		k := x.RoomID + "|" + x.Day
		d, ok := out[k]
		if !ok {
			d = agg.RoomDay{OccupiedS: x.OccupiedS, SoldS: x.SoldS, ByType: map[string]*agg.TypeUsage{}}
		}
		if x.DeviceType != "" {
			u := x.TypeUsage
			d.ByType[x.DeviceType] = &u
		}
		out[k] = d
	})
	return out, err
}
