package batch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet"
	"github.com/apache/arrow/go/v17/parquet/compress"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
	"github.com/segmentio/kafka-go"

	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/schemas"
)

// Dead letters go to the lake like the event topics: raw/gridlake.dlq
// files by UTC hour of the record time, cut offsets in the manifest, so
// each letter is in the lake exactly once and SQL can count rejections.
// The speed and batch layers both forward a rejected message, and either
// may forward it again after a restart; the copies carry the same source
// coordinates, the same key (so the same dlq partition) and the same
// record time (so the same hour). The first copy by dlq offset is kept;
// later ones, in this run or in a committed file of the same hour and
// partition, are marked duplicate, as merge marks them again.

// DefaultLetterValueBytes is how much of a dead letter's value (and key)
// the lake keeps unless told otherwise; config's batch.dlq_max_value_bytes
// defaults to the same value.
const DefaultLetterValueBytes = 4096

// DefaultMaxLetterBytes is how many bytes of dead letters a compaction
// holds per dlq partition before it cuts the partition there; config's
// batch.dlq_max_run_bytes defaults to the same value.
const DefaultMaxLetterBytes = 64 << 20

// letterBytes is about what a letter row holds in memory.
func letterBytes(d *schemas.DeadLetter) int64 {
	const fixed = 160 // the struct and its string headers
	return fixed + int64(len(d.Reason)+len(d.Error)+len(d.Field)+len(d.SourceTopic)+len(d.Key)+len(d.Value))
}

// maxRecordTimeMS is the greatest record time a lake hour can be named
// after (9999-12-31T23:59:59.999Z).
const maxRecordTimeMS = 253402300799999

// letterIdentity is the rejected message a letter carries.
type letterIdentity struct {
	topic     string
	partition int32
	offset    int64
}

// letterRow turns one message of gridlake.dlq into a row, bounding every
// text before it is copied.
func letterRow(m kafka.Message, maxValue int) schemas.DeadLetter {
	li := kafkaio.ReadLetter(m.Headers)
	d := schemas.DeadLetter{
		Reason: li.Reason, Error: li.Error, Field: li.Field,
		HasSource: li.HasSource, SourceTopic: li.Topic, SourcePartition: li.Partition, SourceOffset: li.Offset,
		RecordTimeMS: m.Time.UnixMilli(),
		Value:        kafkaio.TruncateText(m.Value, maxValue), ValueBytes: int64(len(m.Value)),
		Partition: int32(m.Partition), Offset: m.Offset,
	}
	if li.Key != nil {
		d.Key, d.HasKey = kafkaio.TruncateText(li.Key, maxValue), true
	}
	if m.Time.IsZero() || d.RecordTimeMS < 0 || d.RecordTimeMS > maxRecordTimeMS {
		li.Problem = "its record time cannot name a lake hour"
		d.RecordTimeMS = 0
	}
	if li.Problem != "" {
		d.Reason = kafkaio.ReasonUnreadable
		d.Error = "unreadable letter: " + li.Problem
	}
	return d
}

// compactLetters reads one partition range of gridlake.dlq and writes one
// Parquet file per UTC hour of record time.
func (c *Compactor) compactLetters(ctx context.Context, t task, prev *lake.Manifest, pace *pacer, progress func(int64)) taskResult {
	var res taskResult
	maxValue := c.o.LetterValueBytes
	byHour := map[int64][]schemas.DeadLetter{}
	held := int64(0)
	end, err := c.readRange(ctx, t, pace, progress, func(m kafka.Message) bool {
		d := letterRow(m, maxValue)
		h := d.RecordTimeMS / 3_600_000
		byHour[h] = append(byHour[h], d)
		held += letterBytes(&d)
		return held < c.o.MaxLetterBytes
	}, func() error { return nil })
	if err != nil {
		return taskResult{err: err}
	}
	// The range may end early (MaxLetterBytes): files and cut say where.
	t.to, res.end = end, end
	hours := make([]int64, 0, len(byHour))
	for h := range byHour {
		hours = append(hours, h)
	}
	sort.Slice(hours, func(i, j int) bool { return hours[i] < hours[j] })
	for _, h := range hours {
		hour := time.UnixMilli(h * 3_600_000).UTC()
		seen, err := c.committedLetters(ctx, prev, t.partition, hour.Format("2006-01-02T15"))
		if err != nil {
			return taskResult{err: err}
		}
		ls := byHour[h]
		markCopies(ls, seen)
		data, err := encodeLetters(ls)
		if err != nil {
			return taskResult{err: err}
		}
		key := RawKey(t.topic, hour, t.partition, t.from, t.to-1)
		if err := c.fault("upload " + key); err != nil {
			return taskResult{err: err}
		}
		etag, err := c.o.Store.Put(ctx, key, data)
		if err != nil {
			return taskResult{err: err}
		}
		res.files = append(res.files, lake.File{Key: key, Topic: t.topic, Partition: t.partition,
			FirstOffset: t.from, LastOffset: t.to - 1, Hour: hour.Format("2006-01-02T15"),
			Rows: int64(len(ls)), Bytes: int64(len(data)), ETag: etag})
		res.rows += int64(len(ls))
	}
	return res
}

// markCopies marks, in dlq offset order, every letter whose rejected
// message an earlier letter (here or in seen) already carries.
func markCopies(ls []schemas.DeadLetter, seen map[letterIdentity]bool) {
	for i := range ls {
		d := &ls[i]
		if !d.HasSource {
			continue // nothing to recognise a copy by: each is its own
		}
		id := letterIdentity{d.SourceTopic, d.SourcePartition, d.SourceOffset}
		d.Duplicate = seen[id]
		seen[id] = true
	}
}

// committedLetters are the rejected messages the committed letters of one
// dlq partition and hour carry.
func (c *Compactor) committedLetters(ctx context.Context, prev *lake.Manifest, partition int, hour string) (map[letterIdentity]bool, error) {
	seen := map[letterIdentity]bool{}
	for _, f := range prev.Files {
		if f.Topic != schemas.TopicDLQ || f.Partition != partition || f.Hour != hour {
			continue
		}
		data, _, err := c.o.Store.Get(ctx, f.Key)
		if err != nil {
			return nil, fmt.Errorf("read committed dead letters %s: %w", f.Key, err)
		}
		if err := readLetterIdentities(ctx, data, seen); err != nil {
			return nil, fmt.Errorf("read committed dead letters %s: %w", f.Key, err)
		}
	}
	return seen, nil
}

// readLetterIdentities adds the source coordinates of a dead-letter file's
// rows to seen.
func readLetterIdentities(ctx context.Context, data []byte, seen map[letterIdentity]bool) error {
	pf, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		return err
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 64 << 10}, memory.DefaultAllocator)
	if err != nil {
		return err
	}
	cols := []int{schemas.DLQColSourceTopic, schemas.DLQColSourcePartition, schemas.DLQColSourceOffset}
	rr, err := fr.GetRecordReader(ctx, cols, nil)
	if err != nil {
		return err
	}
	defer rr.Release()
	for rr.Next() {
		rec := rr.Record()
		topics, ok1 := rec.Column(0).(*array.String)
		parts, ok2 := rec.Column(1).(*array.Int32)
		offs, ok3 := rec.Column(2).(*array.Int64)
		if !ok1 || !ok2 || !ok3 {
			return fmt.Errorf("not a dead-letter file: columns %v", rec.Schema())
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			if topics.IsNull(i) || parts.IsNull(i) || offs.IsNull(i) {
				continue
			}
			seen[letterIdentity{topics.Value(i), parts.Value(i), offs.Value(i)}] = true
		}
	}
	if err := rr.Err(); err != nil && !errors.Is(err, io.EOF) { // pqarrow ends with io.EOF
		return err
	}
	return nil
}

// encodeLetters writes one hour's letters as a Parquet file, sorted by
// reason, record time and dlq offset: reports group by reason and hour.
func encodeLetters(ls []schemas.DeadLetter) ([]byte, error) {
	sort.SliceStable(ls, func(i, j int) bool {
		a, b := &ls[i], &ls[j]
		if a.Reason != b.Reason {
			return a.Reason < b.Reason
		}
		if a.RecordTimeMS != b.RecordTimeMS {
			return a.RecordTimeMS < b.RecordTimeMS
		}
		return a.Offset < b.Offset
	})
	b := array.NewRecordBuilder(memory.DefaultAllocator, schemas.DeadLetterSchema)
	defer b.Release()
	for i := range ls {
		schemas.AppendDeadLetter(b, &ls[i])
	}
	rec := b.NewRecord()
	defer rec.Release()
	props := parquet.NewWriterProperties(
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithCompressionLevel(3),
		parquet.WithDictionaryDefault(false),
		parquet.WithDictionaryFor("reason", true),
		parquet.WithDictionaryFor("error", true),
		parquet.WithDictionaryFor("field", true),
		parquet.WithDictionaryFor("source_topic", true),
		parquet.WithMaxRowGroupLength(1<<20),
		parquet.WithStats(true),
	)
	var buf bytes.Buffer
	fw, err := pqarrow.NewFileWriter(schemas.DeadLetterSchema, &buf, props,
		pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema(), pqarrow.WithCoerceTimestamps(arrow.Microsecond)))
	if err != nil {
		return nil, fmt.Errorf("parquet writer: %w", err)
	}
	if err := fw.Write(rec); err != nil {
		return nil, fmt.Errorf("write dead letters: %w", err)
	}
	if err := fw.Close(); err != nil {
		return nil, fmt.Errorf("close dead-letter file: %w", err)
	}
	return buf.Bytes(), nil
}
