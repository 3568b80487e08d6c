package batch

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/objstore"
	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/views"
)

// HousekeepOptions configure housekeeping.
type HousekeepOptions struct {
	// Store is the lake's bucket; housekeeping is the only part of
	// gridlake that lists and deletes in it.
	Store objstore.Bucket
	// Views recomputes the views of merged hours and reads the raw files.
	Views *Recomputer
	// MergeAfter: an hour's files are merged once the hour ended this long
	// ago (it is then rarely written; a late event adds a file, merged on
	// the next pass).
	MergeAfter time.Duration
	// Retention drops raw files and views of hours older than this.
	Retention time.Duration
	// Grace is how long a replaced object stays readable.
	Grace time.Duration
	Now   func() time.Time
	Log   *slog.Logger
}

// Housekeeper merges small files, applies retention and deletes replaced
// objects after a grace period.
type Housekeeper struct{ o HousekeepOptions }

// NewHousekeeper returns a housekeeper (default: the wall clock, no log).
func NewHousekeeper(o HousekeepOptions) *Housekeeper {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Housekeeper{o: o}
}

// Merge rewrites, for every topic, hour and partition with several raw
// files, one file holding the same rows sorted by key and time, with the
// duplicate marks recomputed across them, and commits it with the views of
// those hours. It returns ErrNothingToDo when nothing needed merging.
func (h *Housekeeper) Merge(ctx context.Context) (*lake.Manifest, error) {
	prev, err := lake.Latest(ctx, h.o.Store)
	if err != nil {
		return nil, fmt.Errorf("merge: read newest manifest: %w", err) // an outage is not "nothing to do"
	}
	if prev == nil {
		return nil, ErrNothingToDo
	}
	now := h.o.Now()
	groups := map[string][]lake.File{}
	for _, f := range prev.Files {
		hour, err := time.Parse("2006-01-02T15", f.Hour)
		if err != nil || hour.Add(time.Hour+h.o.MergeAfter).After(now) {
			continue
		}
		k := fmt.Sprintf("%s|%s|%d", f.Topic, f.Hour, f.Partition)
		groups[k] = append(groups[k], f)
	}
	next := prev.Next("merge", now)
	replaced := map[string]bool{}
	var added []lake.File
	keys := make([]string, 0, len(groups))
	for k, fs := range groups {
		if len(fs) > 1 {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return prev, ErrNothingToDo
	}
	sort.Strings(keys)
	for _, k := range keys {
		f, err := h.mergeGroup(ctx, groups[k])
		if err != nil {
			return nil, err
		}
		for _, old := range groups[k] {
			replaced[old.Key] = true
		}
		added = append(added, f)
		next.Run.Rows += f.Rows
	}
	files := next.Files[:0]
	for _, f := range next.Files {
		if replaced[f.Key] {
			next.Garbage = append(next.Garbage, lake.Garbage{Key: f.Key, Since: now})
			continue
		}
		files = append(files, f)
	}
	next.Files = append(files, added...)
	if _, err := h.o.Views.Update(ctx, next, false, nil); err != nil {
		return nil, err
	}
	next.CommittedAt = h.o.Now()
	if err := lake.Commit(ctx, h.o.Store, next); err != nil {
		return nil, err
	}
	h.o.Log.Info("small files merged", "groups", len(keys), "version", next.Version)
	return next, nil
}

// mergeGroup merges the raw files of one topic, hour and partition.
func (h *Housekeeper) mergeGroup(ctx context.Context, files []lake.File) (lake.File, error) {
	paths, err := h.o.Views.cache.Files(ctx, files)
	if err != nil {
		return lake.File{}, err
	}
	first, last := files[0].FirstOffset, files[0].LastOffset
	for _, f := range files {
		first, last = min(first, f.FirstOffset), max(last, f.LastOffset)
	}
	topic := files[0].Topic
	hour, _ := time.Parse("2006-01-02T15", files[0].Hour)
	key := RawKey(topic, hour, files[0].Partition, first, last)
	identity := "battery_id, ts"
	keep := "kafka_partition, kafka_offset"
	sortBy := "battery_id, ts, kafka_partition, kafka_offset"
	switch topic {
	case schemas.TopicRoom:
		identity = "type, coalesce(device_id, room_id), ts, coalesce(state = 'on', occupied, action = 'check_in')"
		sortBy = "room_id, ts, kafka_partition, kafka_offset"
	case schemas.TopicDLQ:
		// A letter without source coordinates is its own identity.
		identity = "source_topic, source_partition, source_offset, CASE WHEN source_offset IS NULL THEN dlq_offset END"
		keep = "dlq_partition, dlq_offset"
		sortBy = "reason, record_time, dlq_offset"
	}
	q := fmt.Sprintf(`SELECT * REPLACE (row_number() OVER (PARTITION BY %s ORDER BY %s) > 1 AS duplicate)
		FROM read_parquet(%s) ORDER BY %s`, identity, keep, views.ParquetList(paths), sortBy)
	conn, err := h.o.Views.db.Conn(ctx)
	if err != nil {
		return lake.File{}, err
	}
	defer conn.Close()
	vf, err := h.o.Views.writeQuery(ctx, conn, key, q)
	if err != nil {
		return lake.File{}, fmt.Errorf("merge into %s: %w", key, err)
	}
	return lake.File{Key: key, Topic: topic, Partition: files[0].Partition, FirstOffset: first, LastOffset: last,
		Hour: files[0].Hour, Rows: vf.Rows, Bytes: vf.bytes, ETag: vf.ETag}, nil
}

// Retain drops raw files and views of hours older than the retention
// horizon from the manifest; they become garbage.
func (h *Housekeeper) Retain(ctx context.Context) (*lake.Manifest, error) {
	prev, err := lake.Latest(ctx, h.o.Store)
	if err != nil {
		return nil, fmt.Errorf("retain: read newest manifest: %w", err)
	}
	if prev == nil {
		return nil, ErrNothingToDo
	}
	now := h.o.Now()
	horizon := now.Add(-h.o.Retention).UTC().Format("2006-01-02T15")
	next := prev.Next("retention", now)
	dropped := 0
	files := next.Files[:0]
	for _, f := range next.Files {
		if f.Hour < horizon {
			next.Garbage = append(next.Garbage, lake.Garbage{Key: f.Key, Since: now})
			dropped++
			continue
		}
		files = append(files, f)
	}
	next.Files = files
	views := next.Views[:0]
	for _, v := range next.Views {
		if v.Part != "all" && v.Part < horizon[:len(v.Part)] {
			next.Garbage = append(next.Garbage, lake.Garbage{Key: v.Key, Since: now})
			dropped++
			continue
		}
		views = append(views, v)
	}
	next.Views = views
	if dropped == 0 {
		return prev, ErrNothingToDo
	}
	next.CommittedAt = now
	if err := lake.Commit(ctx, h.o.Store, next); err != nil {
		return nil, err
	}
	h.o.Log.Info("retention applied", "dropped", dropped, "horizon", horizon, "version", next.Version)
	return next, nil
}

// Collect deletes garbage older than the grace period, and objects under
// raw/ and views/ that no manifest references (left by runs that died
// before committing) once they are older than the grace period. The
// deleted garbage leaves the manifest in a new version.
func (h *Housekeeper) Collect(ctx context.Context) (int, error) {
	m, err := lake.Latest(ctx, h.o.Store)
	if err != nil || m == nil {
		return 0, err
	}
	now := h.o.Now()
	live := map[string]bool{}
	for _, f := range m.Files {
		live[f.Key] = true
	}
	for _, v := range m.Views {
		live[v.Key] = true
	}
	pending := map[string]bool{}
	var keep []lake.Garbage
	deleted := 0
	for _, g := range m.Garbage {
		if now.Sub(g.Since) < h.o.Grace || live[g.Key] {
			keep = append(keep, g)
			pending[g.Key] = true
			continue
		}
		if err := h.o.Store.Delete(ctx, g.Key); err != nil {
			return deleted, err
		}
		deleted++
	}
	for _, prefix := range []string{"raw/", "views/"} {
		objs, err := h.o.Store.List(ctx, prefix)
		if err != nil {
			return deleted, err
		}
		for _, o := range objs {
			if live[o.Key] || pending[o.Key] || now.Sub(o.LastModified) < h.o.Grace || !strings.HasSuffix(o.Key, ".parquet") {
				continue
			}
			if err := h.o.Store.Delete(ctx, o.Key); err != nil {
				return deleted, err
			}
			deleted++
		}
	}
	if len(keep) != len(m.Garbage) {
		next := m.Next("collect", now)
		next.Garbage = keep
		next.CommittedAt = now
		if err := lake.Commit(ctx, h.o.Store, next); err != nil {
			return deleted, err
		}
	}
	h.o.Log.Info("garbage collected", "deleted", deleted)
	return deleted, nil
}
