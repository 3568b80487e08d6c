package schemas

import (
	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
)

// Column positions of DeadLetterSchema; AppendDeadLetter writes in this
// order.
const (
	DLQColReason = iota
	DLQColError
	DLQColField
	DLQColSourceTopic
	DLQColSourcePartition
	DLQColSourceOffset
	DLQColRecordTime
	DLQColKey
	DLQColValue
	DLQColValueBytes
	DLQColPartition
	DLQColOffset
	DLQColDuplicate
)

// DeadLetterSchema is the Arrow schema of raw/gridlake.dlq: one row per
// dead letter, with the coordinates of the rejected message it carries.
// record_time has no time zone (it is UTC), so that SQL without ICU can
// truncate it to hours.
var DeadLetterSchema = arrow.NewSchema([]arrow.Field{
	{Name: "reason", Type: arrow.BinaryTypes.String},
	{Name: "error", Type: arrow.BinaryTypes.String},
	{Name: "field", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "source_topic", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "source_partition", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: "source_offset", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "record_time", Type: &arrow.TimestampType{Unit: arrow.Microsecond}},
	{Name: "key", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "value", Type: arrow.BinaryTypes.String},
	{Name: "value_bytes", Type: arrow.PrimitiveTypes.Int64},
	{Name: "dlq_partition", Type: arrow.PrimitiveTypes.Int32},
	{Name: "dlq_offset", Type: arrow.PrimitiveTypes.Int64},
	{Name: "duplicate", Type: arrow.FixedWidthTypes.Boolean},
}, nil)

// DeadLetter is one row of DeadLetterSchema. Texts are valid UTF-8 and
// already bounded by whoever built the row.
type DeadLetter struct {
	Reason, Error, Field string
	HasSource            bool
	SourceTopic          string
	SourcePartition      int32
	SourceOffset         int64
	RecordTimeMS         int64
	Key                  string
	HasKey               bool
	Value                string
	ValueBytes           int64
	Partition            int32 // where the letter sits in gridlake.dlq
	Offset               int64
	Duplicate            bool
}

// AppendDeadLetter appends one letter to a builder of DeadLetterSchema.
func AppendDeadLetter(b *array.RecordBuilder, d *DeadLetter) {
	str := func(col int, s string, ok bool) {
		if ok {
			b.Field(col).(*array.StringBuilder).Append(s)
		} else {
			b.Field(col).AppendNull()
		}
	}
	str(DLQColReason, d.Reason, true)
	str(DLQColError, d.Error, true)
	str(DLQColField, d.Field, d.Field != "")
	str(DLQColSourceTopic, d.SourceTopic, d.HasSource)
	if d.HasSource {
		b.Field(DLQColSourcePartition).(*array.Int32Builder).Append(d.SourcePartition)
		b.Field(DLQColSourceOffset).(*array.Int64Builder).Append(d.SourceOffset)
	} else {
		b.Field(DLQColSourcePartition).AppendNull()
		b.Field(DLQColSourceOffset).AppendNull()
	}
	b.Field(DLQColRecordTime).(*array.TimestampBuilder).Append(micros(d.RecordTimeMS))
	str(DLQColKey, d.Key, d.HasKey)
	str(DLQColValue, d.Value, true)
	b.Field(DLQColValueBytes).(*array.Int64Builder).Append(d.ValueBytes)
	b.Field(DLQColPartition).(*array.Int32Builder).Append(d.Partition)
	b.Field(DLQColOffset).(*array.Int64Builder).Append(d.Offset)
	b.Field(DLQColDuplicate).(*array.BooleanBuilder).Append(d.Duplicate)
}
