package batch

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"

	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/objstore"
	"github.com/gridlake/gridlake/schemas"
)

// GenerateOptions say what GenerateHour writes.
type GenerateOptions struct {
	Store      objstore.Bucket
	Hour       time.Time // the UTC hour of the readings
	Batteries  int
	Partitions int
	// Dir holds each partition's file until it is uploaded.
	Dir string
}

// GenerateHour writes one UTC hour of fleet readings (batteries × one per
// second) straight to raw Parquet files in the lake, one file per partition,
// as compaction would have, and returns the manifest files. Benchmarks of
// the recompute use it to skip filling Kafka with 108M messages.
func GenerateHour(ctx context.Context, o GenerateOptions) ([]lake.File, error) {
	store, batteries, partitions, tmpDir := o.Store, o.Batteries, o.Partitions, o.Dir
	hour := o.Hour.UTC().Truncate(time.Hour)
	var files []lake.File
	for p := 0; p < partitions; p++ {
		path := fmt.Sprintf("%s/gen-p%d.parquet", tmpDir, p)
		rows, err := generatePartition(path, hour, batteries, partitions, p)
		if err != nil {
			return nil, err
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		st, _ := f.Stat()
		key := RawKey(schemas.TopicBattery, hour, p, 0, rows-1)
		etag, err := store.PutReader(ctx, key, f, st.Size()) // streamed, not read into memory
		f.Close()
		os.Remove(path)
		if err != nil {
			return nil, err
		}
		files = append(files, lake.File{Key: key, Topic: schemas.TopicBattery, Partition: p, FirstOffset: 0, LastOffset: rows - 1,
			Hour: hour.Format("2006-01-02T15"), Rows: rows, Bytes: st.Size(), ETag: etag})
	}
	return files, nil
}

func generatePartition(path string, hour time.Time, batteries, partitions, p int) (int64, error) {
	out, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer out.Close()
	fw, err := pqarrow.NewFileWriter(schemas.BatterySchema, out, writerProps(),
		pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema(), pqarrow.WithCoerceTimestamps(arrow.Microsecond)))
	if err != nil {
		return 0, err
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, schemas.BatterySchema)
	defer b.Release()
	r := rand.New(rand.NewPCG(uint64(p), 7))
	start := hour.UnixMilli()
	var offset int64
	flush := func() error {
		rec := b.NewRecord()
		defer rec.Release()
		return fw.Write(rec)
	}
	for i := p; i < batteries; i += partitions {
		soc, temp := 20+70*r.Float64(), 20+10*r.Float64()
		bat := schemas.Battery{BatteryID: fmt.Sprintf("B-%05d", i), HasSOH: true, SOHPct: 90 + 10*r.Float64()}
		for s := 0; s < 3600; s++ {
			cur := -40 + 80*math.Sin(float64(s)/600) + r.NormFloat64()
			soc = math.Min(100, math.Max(0, soc+cur/360000*100))
			temp += (25 - temp) / 1200
			bat.TS = start + int64(s)*1000
			bat.CurrentA = math.Round(cur*100) / 100
			bat.SOCPct = math.Round(soc*100) / 100
			bat.TemperatureC = math.Round(temp*100) / 100
			bat.VoltageV = math.Round((48+6.4*soc/100+r.NormFloat64()*0.02)*1000) / 1000
			schemas.AppendBattery(b, &bat, schemas.Record{Partition: int32(p), Offset: offset, TimeMS: bat.TS + 20})
			offset++
			if b.Field(0).Len() >= 1<<20 {
				if err := flush(); err != nil {
					return 0, err
				}
			}
		}
	}
	if b.Field(0).Len() > 0 {
		if err := flush(); err != nil {
			return 0, err
		}
	}
	return offset, fw.Close()
}
