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

// rows are the valid records of one topic and event hour on their way to a
// raw Parquet file. Battery rows keep only the reading, not the whole
// decoded event, because they are most of the data and get copied around.
type rows struct {
	bats  []batRow
	rooms []roomRow
}

type batRow struct {
	b   schemas.Battery
	rec schemas.Record
}

type roomRow struct {
	ev  schemas.Event
	rec schemas.Record
}

func (r *rows) len() int { return len(r.bats) + len(r.rooms) }

// sortKey orders rows by key, then event time, then offset: the layout
// readers prune and compress best. Sorting these small keys instead of the
// rows avoids moving the wide row structs.
type sortKey struct {
	key    string
	ts     int64
	offset int64
	i      int32
}

func (r *rows) order() []int32 {
	keys := make([]sortKey, 0, r.len())
	for i := range r.bats {
		x := &r.bats[i]
		keys = append(keys, sortKey{x.b.BatteryID, x.b.TS, x.rec.Offset, int32(i)})
	}
	for i := range r.rooms {
		x := &r.rooms[i]
		keys = append(keys, sortKey{x.ev.RoomID(), x.ev.TS(), x.rec.Offset, int32(i)})
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := &keys[i], &keys[j]
		if a.key != b.key {
			return a.key < b.key
		}
		if a.ts != b.ts {
			return a.ts < b.ts
		}
		return a.offset < b.offset
	})
	out := make([]int32, len(keys))
	for i, k := range keys {
		out[i] = k.i
	}
	return out
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

// encodeParquet writes the rows of one topic, sorted, as a Parquet file.
func encodeParquet(topic string, rs *rows) ([]byte, error) {
	schema := schemas.BatterySchema
	if topic == schemas.TopicRoom {
		schema = schemas.RoomSchema
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	// In key, ts, offset order a battery reading's copies are adjacent and
	// the first is the lowest offset; room identities are tracked per file.
	var prev *schemas.Battery
	roomIDs := map[schemas.Identity]bool{}
	for _, i := range rs.order() {
		if topic == schemas.TopicBattery {
			x := &rs.bats[i]
			x.rec.Duplicate = prev != nil && prev.BatteryID == x.b.BatteryID && prev.TS == x.b.TS
			prev = &x.b
			schemas.AppendBattery(b, &x.b, x.rec)
		} else {
			x := &rs.rooms[i]
			id := x.ev.Identity()
			x.rec.Duplicate = roomIDs[id]
			roomIDs[id] = true
			schemas.AppendRoom(b, &x.ev, x.rec)
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
