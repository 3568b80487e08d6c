package views

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/schemas"
)

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

// RoomDayInsert is the statement that inserts one RoomDayRow, with the
// arguments of Args, into a table created by
// TempTableDDL(table, RoomDaySchema()).
func RoomDayInsert(table string) string {
	marks := make([]string, RoomDaySchema().NumFields())
	for i := range marks {
		marks[i] = "?"
	}
	marks[1] = "?::DATE" // day
	return "INSERT INTO " + table + " VALUES (" + strings.Join(marks, ", ") + ")"
}

// Args are the row's values in the columns of RoomDaySchema.
func (x *RoomDayRow) Args() []any {
	return []any{x.RoomID, x.Day, x.DeviceType, x.OnS, x.OnVacantS, x.OnUnsoldS,
		x.EnergyWh, x.WasteWh, x.OccupiedS, x.SoldS, x.StateEnd, x.Revision}
}

// ReadRoomDays reads room_day partitions.
func (r *Reader) ReadRoomDays(ctx context.Context, files []lake.ViewFile, fn func(RoomDayRow)) error {
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
func (r *Reader) RoomDayReports(ctx context.Context, files []lake.ViewFile) (map[string]agg.RoomDay, error) {
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

// RoomEvents loads every room event of raw room files, de-duplicated by
// identity (the lowest partition and offset wins), grouped by room.
func (r *Reader) RoomEvents(ctx context.Context, files []lake.File) (map[string][]agg.RoomEvent, error) {
	if len(files) == 0 {
		// A quiet day has no raw files: no events (read_parquet([]) is a binder error).
		return map[string][]agg.RoomEvent{}, nil
	}
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
