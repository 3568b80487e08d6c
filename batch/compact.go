// Package batch is gridlake's batch layer: compaction of Kafka into
// immutable raw Parquet in the lake, committed by manifests that define
// cuts, and the recomputation of statistics from the raw files.
package batch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/metrics"
	"github.com/gridlake/gridlake/objstore"
	"github.com/gridlake/gridlake/schemas"
)

// CompactOptions configure compaction.
type CompactOptions struct {
	Brokers []string
	Store   objstore.Bucket
	Limits  schemas.Limits
	// SpeedGroup is the speed layer's consumer group, whose published
	// generation boundaries the cut is aligned to (default lake.SpeedGroup).
	SpeedGroup string
	// MaxRecords bounds the records taken per partition in one run (0: all
	// up to the high watermark), so a long backlog compacts in steps.
	MaxRecords int64
	// Concurrency is how many partitions are read at once (default
	// DefaultConcurrency).
	Concurrency int
	// MaxRecordsPerSecond caps the Kafka records read per second across
	// all partitions (0: no cap), so a long backlog or a backfill cannot
	// take the broker and the cores from the speed layer.
	MaxRecordsPerSecond float64
	// Fault, when set, is called at each step of a run; an error aborts the
	// run there, as a crash would. Crash tests use it.
	Fault func(step string) error
	// Views, when set, brings the batch views up to date in the same
	// commit, so every manifest's views match its files exactly.
	Views *Recomputer
	// Progress, when set, receives the records read so far and the total.
	Progress Progress
	// DeadLetters, when set, receives the rejected records (nil: they are
	// only counted). The speed layer forwards the same records; letters
	// are keyed by their source, so the copies are recognisable.
	DeadLetters *kafkaio.DeadLetters
	// LetterValueBytes bounds how much of a dead letter's value and key
	// the dead_letters table keeps (default DefaultLetterValueBytes).
	LetterValueBytes int
	// MaxLetterBytes bounds the dead letters a run holds in memory per
	// dlq partition (default DefaultMaxLetterBytes): past it the run cuts
	// that partition there and the next run goes on.
	MaxLetterBytes int64
	// Metrics, when set, counts refusals to compact a partition that ends
	// below the cut (lake.BehindCutMetric).
	Metrics *metrics.Registry
	Log     *slog.Logger
	Now     func() time.Time
}

// DefaultConcurrency is how many partitions a compaction reads at once
// unless told otherwise. config's batch.concurrency defaults to the same
// value (config cannot import batch; a test holds the two together).
const DefaultConcurrency = 2

// Compactor moves Kafka records below a new cut into raw Parquet files and
// commits them with a manifest.
type Compactor struct{ o CompactOptions }

// NewCompactor returns a compactor.
func NewCompactor(o CompactOptions) *Compactor {
	if o.SpeedGroup == "" {
		o.SpeedGroup = lake.SpeedGroup
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.LetterValueBytes <= 0 {
		o.LetterValueBytes = DefaultLetterValueBytes
	}
	if o.MaxLetterBytes <= 0 {
		o.MaxLetterBytes = DefaultMaxLetterBytes
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Compactor{o: o}
}

// ErrNothingToDo means no partition has records beyond the current cut.
var ErrNothingToDo = errors.New("nothing new to compact")

// task is one partition's range [from, to) in this run.
type task struct {
	topic     string
	partition int
	from, to  int64
}

func (c *Compactor) fault(step string) error {
	if c.o.Fault != nil {
		return c.o.Fault(step)
	}
	return nil
}

// Run compacts one step: it chooses a cut, writes the raw files of the
// records between the previous cut and the new one, and commits a manifest.
// Until the manifest commits nothing is visible; a run that dies leaves
// only unreferenced objects, which a re-run of the same range overwrites
// with identical ones (file names derive from offsets).
func (c *Compactor) Run(ctx context.Context) (*lake.Manifest, error) {
	started := c.o.Now()
	prev, err := lake.Latest(ctx, c.o.Store)
	if err != nil {
		return nil, fmt.Errorf("read newest manifest: %w", err)
	}
	if prev == nil {
		prev = &lake.Manifest{Cut: lake.Cut{}}
	}
	tasks, err := c.plan(ctx, prev)
	if err != nil {
		return nil, err
	}
	if len(tasks) == 0 {
		return prev, ErrNothingToDo
	}
	var total int64
	for _, t := range tasks {
		total += t.to - t.from
	}
	c.o.Log.Info("compaction planned", "partitions", len(tasks), "records", total, "from_version", prev.Version)

	results := make([]taskResult, len(tasks))
	pace := newPacer(c.o.MaxRecordsPerSecond, time.Now())
	var done int64
	var mu sync.Mutex
	sem := make(chan struct{}, c.o.Concurrency)
	var wg sync.WaitGroup
	for i, t := range tasks {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			progress := func(n int64) {
				if c.o.Progress == nil {
					return
				}
				mu.Lock()
				done += n
				c.o.Progress(done, total)
				mu.Unlock()
			}
			if t.topic == schemas.TopicDLQ {
				results[i] = c.compactLetters(ctx, t, prev, pace, progress)
			} else {
				results[i] = c.compactTask(ctx, t, pace, progress)
			}
		}()
	}
	wg.Wait()

	next := prev.Next("compact", started)
	for i, r := range results {
		if r.err != nil {
			return nil, r.err
		}
		t := tasks[i]
		setCut(next.Cut, t.topic, t.partition, r.end)
		next.Files = append(next.Files, r.files...)
		if t.topic == schemas.TopicDLQ {
			next.Run.DeadLetters += r.rows
		} else {
			next.Run.Rows += r.rows
		}
		next.Run.Invalid += r.invalid
		for _, f := range r.files {
			next.Run.Bytes += f.Bytes
		}
		if t.topic == schemas.TopicBattery && r.maxRecord.After(next.CutTime) {
			next.CutTime = r.maxRecord
		}
	}
	if c.o.Views != nil {
		if err := c.fault("recompute"); err != nil {
			return nil, err
		}
		n, err := c.o.Views.Update(ctx, next, false, nil)
		if err != nil {
			return nil, err
		}
		c.o.Log.Info("views recomputed", "partitions", n)
	}
	if err := c.fault("commit"); err != nil {
		return nil, err
	}
	next.CommittedAt = c.o.Now()
	if err := lake.Commit(ctx, c.o.Store, next); err != nil {
		return nil, err
	}
	c.o.Log.Info("compaction committed", "version", next.Version, "rows", next.Run.Rows, "files", len(next.Files))
	return next, nil
}

// plan chooses the new cut. Dead-letter partitions go to the high
// watermark (a missing gridlake.dlq topic is skipped). Battery partitions stop at the newest
// generation boundary the speed layer published, so the speed layer can
// drop what batch now covers without a rebuild; without published
// boundaries (no speed layer) they go to the high watermark. A partition
// that ends below the previous cut (the topic was re-created) fails the
// plan with a *lake.BehindCutError rather than waiting, silently, for its
// offsets to pass the cut.
func (c *Compactor) plan(ctx context.Context, prev *lake.Manifest) ([]task, error) {
	var tasks []task
	for _, topic := range []string{schemas.TopicBattery, schemas.TopicRoom, schemas.TopicDLQ} {
		n, err := kafkaio.Partitions(ctx, c.o.Brokers, topic)
		if topic == schemas.TopicDLQ && errors.Is(err, kafkaio.ErrNoTopic) {
			c.o.Log.Warn("no dead-letter topic: dead letters are not compacted", "topic", topic)
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := lake.CheckPartitions("batch", prev, topic, n); err != nil {
			return nil, c.refuse(err)
		}
		for p := 0; p < n; p++ {
			from := prev.Cut.Offset(topic, p)
			first, end, err := c.offsets(ctx, topic, p)
			if err != nil {
				return nil, err
			}
			if err := lake.CheckBehind("batch", prev, topic, p, end); err != nil {
				return nil, c.refuse(err)
			}
			if from < first {
				c.o.Log.Error("records between the last cut and the first retained offset were deleted by Kafka retention before batch took them",
					"topic", topic, "partition", p, "cut", from, "first", first)
				from = first
			}
			to := end
			if c.o.MaxRecords > 0 {
				to = min(to, from+c.o.MaxRecords)
			}
			if topic == schemas.TopicBattery {
				b, err := lake.ReadBoundaries(ctx, c.o.Store, c.o.SpeedGroup, topic, p)
				if err != nil {
					return nil, fmt.Errorf("read speed boundaries: %w", err)
				}
				if len(b.Offsets) > 0 {
					to = alignDown(b.Offsets, from, to)
				}
			}
			if to > from {
				tasks = append(tasks, task{topic: topic, partition: p, from: from, to: to})
			}
		}
	}
	return tasks, nil
}

// refuse logs and counts a *lake.BehindCutError and returns it.
func (c *Compactor) refuse(err error) error {
	var bc *lake.BehindCutError
	if errors.As(err, &bc) {
		c.o.Log.Error("compaction refused: a topic partition ends below the lake's cut", "topic", bc.Topic, "partition", bc.Partition,
			"cut", bc.Cut, "newest", bc.Newest, "version", bc.Version)
		if c.o.Metrics != nil {
			c.o.Metrics.Counter(lake.BehindCutMetric, "refusals to go on because a Kafka partition ends below the lake's cut (topic re-created)",
				"layer", bc.Layer, "topic", bc.Topic, "partition", fmt.Sprint(bc.Partition)).Add(1)
		}
	}
	return err
}

// alignDown returns the greatest boundary in (from, to], or from when none.
func alignDown(bounds []int64, from, to int64) int64 {
	best := from
	for _, b := range bounds {
		if b > best && b <= to {
			best = b
		}
	}
	return best
}

func (c *Compactor) offsets(ctx context.Context, topic string, p int) (int64, int64, error) {
	conn, err := c.dial(ctx, topic, p)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close()
	return conn.ReadOffsets()
}

func (c *Compactor) dial(ctx context.Context, topic string, p int) (*kafka.Conn, error) {
	return kafkaio.DialLeader(ctx, c.o.Brokers, topic, p)
}

type taskResult struct {
	end       int64 // the partition's new cut
	files     []lake.File
	rows      int64
	invalid   int64
	maxRecord time.Time
	err       error
}

// compactTask reads one partition range, splits its valid records by UTC
// event hour and writes one sorted Parquet file per hour.
func (c *Compactor) compactTask(ctx context.Context, t task, pace *pacer, progress func(int64)) taskResult {
	res := taskResult{end: t.to}
	dec := schemas.NewDecoder(c.o.Limits)
	byHour := map[int64]*rows{}
	var ev schemas.Event
	var letters []kafka.Message
	_, err := c.readRange(ctx, t, pace, progress, func(m kafka.Message) bool {
		if m.Time.After(res.maxRecord) {
			res.maxRecord = m.Time
		}
		if rej := dec.Decode(t.topic, m.Key, m.Value, m.Time, &ev); !rej.OK() {
			res.invalid++
			if c.o.DeadLetters != nil {
				letters = append(letters, kafkaio.Letter(m, rej))
			}
			return true
		}
		rec := schemas.Record{Partition: int32(m.Partition), Offset: m.Offset, TimeMS: m.Time.UnixMilli()}
		h := ev.TS() / 3_600_000
		rs := byHour[h]
		if rs == nil {
			rs = &rows{}
			byHour[h] = rs
		}
		if ev.Kind == schemas.KindBattery {
			rs.bats = append(rs.bats, batRow{ev.Battery, rec})
		} else {
			rs.rooms = append(rs.rooms, roomRow{ev, rec})
		}
		return true
	}, func() error {
		// A failed send fails the task: the re-run sends the letters again
		// rather than dropping them. (letters is empty without DeadLetters.)
		if len(letters) > 0 {
			if err := c.o.DeadLetters.Send(ctx, letters...); err != nil {
				return fmt.Errorf("dead-letter rejects of %s/%d: %w", t.topic, t.partition, err)
			}
		}
		letters = letters[:0]
		return nil
	})
	if err != nil {
		return taskResult{err: err}
	}
	hours := make([]int64, 0, len(byHour))
	for h := range byHour {
		hours = append(hours, h)
	}
	sort.Slice(hours, func(i, j int) bool { return hours[i] < hours[j] })
	for _, h := range hours {
		rs := byHour[h]
		data, err := encodeParquet(t.topic, rs)
		if err != nil {
			return taskResult{err: err}
		}
		hour := time.UnixMilli(h * 3_600_000).UTC()
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
			Rows: int64(rs.len()), Bytes: int64(len(data)), ETag: etag})
		res.rows += int64(rs.len())
	}
	return res
}

// readRange reads one partition range [t.from, t.to) in fetches, calling
// each for every record and flush after every fetch, before the fetch is
// counted as done and paced. It stops early after a record for which each
// returns false, and returns the offset it stopped at.
func (c *Compactor) readRange(ctx context.Context, t task, pace *pacer, progress func(int64), each func(kafka.Message) bool, flush func() error) (int64, error) {
	conn, err := c.dial(ctx, t.topic, t.partition)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if _, err := conn.Seek(t.from, kafka.SeekAbsolute); err != nil {
		return 0, fmt.Errorf("seek %s/%d to %d: %w", t.topic, t.partition, t.from, err)
	}
	next := t.from
	for next < t.to {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		batch := conn.ReadBatch(1, 8<<20)
		n := int64(0)
		more := true
		for more && next < t.to {
			m, err := batch.ReadMessage()
			if err != nil {
				break
			}
			next = m.Offset + 1
			n++
			more = each(m)
		}
		if err := batch.Close(); err != nil && next < t.to && !kafkaio.IsTimeout(err) {
			return 0, fmt.Errorf("read %s/%d at %d: %w", t.topic, t.partition, next, err)
		}
		if err := flush(); err != nil {
			return 0, err
		}
		progress(n)
		if err := pace.wait(ctx, n); err != nil {
			return 0, err
		}
		if !more {
			break
		}
	}
	return next, nil
}

// RawKey is the Hive-style object key of a raw file: the UTC date and hour
// of its events, then its partition and Kafka offset range.
func RawKey(topic string, hour time.Time, partition int, first, last int64) string {
	return fmt.Sprintf("raw/%s/dt=%s/hour=%02d/p%d-%d-%d.parquet", topic, hour.Format("2006-01-02"), hour.Hour(), partition, first, last)
}

func setCut(c lake.Cut, topic string, p int, off int64) {
	for len(c[topic]) <= p {
		c[topic] = append(c[topic], 0)
	}
	c[topic][p] = off
}

// WithProgress returns a compactor like c that reports progress to p.
func (c *Compactor) WithProgress(p Progress) *Compactor {
	cp := *c
	cp.o.Progress = p
	return &cp
}
