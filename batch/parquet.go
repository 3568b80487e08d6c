package batch

import (
	"bytes"
	"fmt"
	"sort"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet"
	"github.com/apache/arrow/go/v17/parquet/compress"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"

	"github.com/gridlake/gridlake/schemas"
)

// row is one valid record on its way to a raw Parquet file.
type row struct {
	ev  schemas.Event
	rec schemas.Record
}

func (r *row) key() string {
	if r.ev.Kind == schemas.KindBattery {
		return r.ev.Battery.BatteryID
	}
	return r.ev.RoomID()
}

// sortRows orders rows by key, then event time, then offset: the layout
// readers prune and compress best.
func sortRows(rows []row) {
	sort.Slice(rows, func(i, j int) bool {
		a, b := &rows[i], &rows[j]
		if ka, kb := a.key(), b.key(); ka != kb {
			return ka < kb
		}
		if ta, tb := a.ev.TS(), b.ev.TS(); ta != tb {
			return ta < tb
		}
		return a.rec.Offset < b.rec.Offset
	})
}

// writerProps are the Parquet settings of raw files: zstd, dictionaries
// for ids and words, delta encoding for the sorted timestamps and offsets.
func writerProps() *parquet.WriterProperties {
	opts := []parquet.WriterProperty{
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithCompressionLevel(3),
		parquet.WithDictionaryDefault(false),
		parquet.WithMaxRowGroupLength(1 << 20),
		parquet.WithStats(true),
	}
	for _, col := range []string{"battery_id", "room_id", "type", "device_id", "device_type", "state", "action", "stay_id"} {
		opts = append(opts, parquet.WithDictionaryFor(col, true))
	}
	for _, col := range []string{"ts", "kafka_ts", "kafka_offset", "cycle_count"} {
		opts = append(opts, parquet.WithEncodingFor(col, parquet.Encodings.DeltaBinaryPacked))
	}
	return parquet.NewWriterProperties(opts...)
}

// encodeParquet writes sorted rows of one topic as a Parquet file.
func encodeParquet(topic string, rows []row) ([]byte, error) {
	schema := schemas.BatterySchema
	if topic == schemas.TopicRoom {
		schema = schemas.RoomSchema
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for i := range rows {
		r := &rows[i]
		if topic == schemas.TopicBattery {
			schemas.AppendBattery(b, &r.ev.Battery, r.rec)
		} else {
			schemas.AppendRoom(b, &r.ev, r.rec)
		}
	}
	rec := b.NewRecord()
	defer rec.Release()
	var buf bytes.Buffer
	fw, err := pqarrow.NewFileWriter(schema, &buf, writerProps(),
		pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema(), pqarrow.WithCoerceTimestamps(arrow.Microsecond)))
	if err != nil {
		return nil, fmt.Errorf("parquet writer: %w", err)
	}
	if err := fw.Write(rec); err != nil {
		return nil, fmt.Errorf("write parquet rows: %w", err)
	}
	if err := fw.Close(); err != nil {
		return nil, fmt.Errorf("close parquet file: %w", err)
	}
	return buf.Bytes(), nil
}
