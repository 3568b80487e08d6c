package schemas

import (
	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
)

// The raw tables hold every valid event with where it came from in Kafka.
// Timestamps are microseconds in UTC, which DuckDB, Spark, Trino and Athena
// all read as a timestamp with time zone. Optional event fields are nullable.

var tsUTC = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}

// Column positions of BatterySchema; AppendBattery writes in this order.
const (
	BatColBatteryID = iota
	BatColTS
	BatColVoltage
	BatColCurrent
	BatColTemperature
	BatColSOC
	BatColSOH
	BatColCycles
	BatColPartition
	BatColOffset
	BatColRecordTS
	BatColDuplicate
)

// BatterySchema is the Arrow schema of raw/gridlake.battery.
var BatterySchema = arrow.NewSchema([]arrow.Field{
	{Name: "battery_id", Type: arrow.BinaryTypes.String},
	{Name: "ts", Type: tsUTC},
	{Name: "voltage_v", Type: arrow.PrimitiveTypes.Float64},
	{Name: "current_a", Type: arrow.PrimitiveTypes.Float64},
	{Name: "temperature_c", Type: arrow.PrimitiveTypes.Float64},
	{Name: "soc_pct", Type: arrow.PrimitiveTypes.Float64},
	{Name: "soh_pct", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "cycle_count", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "kafka_partition", Type: arrow.PrimitiveTypes.Int32},
	{Name: "kafka_offset", Type: arrow.PrimitiveTypes.Int64},
	{Name: "kafka_ts", Type: tsUTC},
	{Name: "duplicate", Type: arrow.FixedWidthTypes.Boolean},
}, nil)

// Column positions of RoomSchema; AppendRoom writes in this order.
const (
	RoomColType = iota
	RoomColRoomID
	RoomColTS
	RoomColDeviceID
	RoomColDeviceType
	RoomColState
	RoomColPower
	RoomColOccupied
	RoomColAction
	RoomColStayID
	RoomColPartition
	RoomColOffset
	RoomColRecordTS
	RoomColDuplicate
)

// RoomSchema is the Arrow schema of raw/gridlake.room: one table for the
// three room event kinds, told apart by "type", with the fields of the other
// kinds null.
var RoomSchema = arrow.NewSchema([]arrow.Field{
	{Name: "type", Type: arrow.BinaryTypes.String},
	{Name: "room_id", Type: arrow.BinaryTypes.String},
	{Name: "ts", Type: tsUTC},
	{Name: "device_id", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "device_type", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "state", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "power_w", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "occupied", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	{Name: "action", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "stay_id", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "kafka_partition", Type: arrow.PrimitiveTypes.Int32},
	{Name: "kafka_offset", Type: arrow.PrimitiveTypes.Int64},
	{Name: "kafka_ts", Type: tsUTC},
	{Name: "duplicate", Type: arrow.FixedWidthTypes.Boolean},
}, nil)

// Record says where a message sat in Kafka.
type Record struct {
	Partition int32
	Offset    int64
	TimeMS    int64 // Kafka record timestamp, Unix milliseconds
	// Duplicate marks a copy of an identity whose lower-offset copy is in
	// the same raw file. Raw keeps every valid record; readers that skip
	// duplicates need not de-duplicate what one file holds.
	Duplicate bool
}

func micros(ms int64) arrow.Timestamp { return arrow.Timestamp(ms * 1000) }

// AppendBattery appends one reading to a builder of BatterySchema.
func AppendBattery(b *array.RecordBuilder, ev *Battery, rec Record) {
	b.Field(BatColBatteryID).(*array.StringBuilder).Append(ev.BatteryID)
	b.Field(BatColTS).(*array.TimestampBuilder).Append(micros(ev.TS))
	b.Field(BatColVoltage).(*array.Float64Builder).Append(ev.VoltageV)
	b.Field(BatColCurrent).(*array.Float64Builder).Append(ev.CurrentA)
	b.Field(BatColTemperature).(*array.Float64Builder).Append(ev.TemperatureC)
	b.Field(BatColSOC).(*array.Float64Builder).Append(ev.SOCPct)
	appendOptFloat(b.Field(BatColSOH).(*array.Float64Builder), ev.SOHPct, ev.HasSOH)
	if ev.HasCycles {
		b.Field(BatColCycles).(*array.Int64Builder).Append(ev.CycleCount)
	} else {
		b.Field(BatColCycles).AppendNull()
	}
	appendRecord(b, BatColPartition, rec)
}

// AppendRoom appends one room event (device, occupancy or stay) to a builder
// of RoomSchema; the columns of the other kinds are null.
func AppendRoom(b *array.RecordBuilder, ev *Event, rec Record) {
	str := func(col int, s string, ok bool) {
		if ok {
			b.Field(col).(*array.StringBuilder).Append(s)
		} else {
			b.Field(col).AppendNull()
		}
	}
	d, o, s := &ev.Device, &ev.Occupancy, &ev.Stay
	isDev, isOcc, isStay := ev.Kind == KindDevice, ev.Kind == KindOccupancy, ev.Kind == KindStay
	str(RoomColType, ev.Kind.String(), true)
	str(RoomColRoomID, ev.RoomID(), true)
	b.Field(RoomColTS).(*array.TimestampBuilder).Append(micros(ev.TS()))
	str(RoomColDeviceID, d.DeviceID, isDev)
	str(RoomColDeviceType, d.DeviceType, isDev)
	str(RoomColState, StateWord(d.On), isDev)
	appendOptFloat(b.Field(RoomColPower).(*array.Float64Builder), d.PowerW, isDev && d.HasPower)
	if isOcc {
		b.Field(RoomColOccupied).(*array.BooleanBuilder).Append(o.Occupied)
	} else {
		b.Field(RoomColOccupied).AppendNull()
	}
	str(RoomColAction, ActionWord(s.CheckIn), isStay)
	str(RoomColStayID, s.StayID, isStay)
	appendRecord(b, RoomColPartition, rec)
}

func appendOptFloat(b *array.Float64Builder, v float64, ok bool) {
	if ok {
		b.Append(v)
	} else {
		b.AppendNull()
	}
}

func appendRecord(b *array.RecordBuilder, first int, rec Record) {
	b.Field(first).(*array.Int32Builder).Append(rec.Partition)
	b.Field(first + 1).(*array.Int64Builder).Append(rec.Offset)
	b.Field(first + 2).(*array.TimestampBuilder).Append(micros(rec.TimeMS))
	b.Field(first + 3).(*array.BooleanBuilder).Append(rec.Duplicate)
}

// StateWord is the wire word of a device state.
func StateWord(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// ActionWord is the wire word of a stay action.
func ActionWord(checkIn bool) string {
	if checkIn {
		return "check_in"
	}
	return "check_out"
}
