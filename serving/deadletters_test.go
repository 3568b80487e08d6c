package serving

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/gridlake/gridlake/batch"
	"github.com/gridlake/gridlake/internal/testenv"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/speed"
)

// dlqReport is the README's "DLQ reasons per hour" report.
func dlqReport(t *testing.T) string {
	t.Helper()
	for _, rep := range readmeReports(t) {
		if strings.Contains(rep, "FROM dead_letters") {
			return rep
		}
	}
	t.Fatal("the README's section has no report over dead_letters")
	return ""
}

// TestDeadLetters_ReportCountsEachRejectionOnce sends good and bad
// messages through the real broker, lets the speed layer and batch both
// forward the bad ones (so gridlake.dlq holds two copies of each), adds
// letters no layer could have written, and compacts into real MinIO over
// several runs, one of them dying before its commit and run again, then a
// merge: at every step the README's report counts each rejected message
// once per reason and hour, and the unreadable letters are kept.
func TestDeadLetters_ReportCountsEachRejectionOnce(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	addr := testenv.Kafka(t, 2)
	store := testenv.Store(t)
	brokers := []string{addr}
	w := kafkaio.NewWriter(brokers)
	defer w.Close()
	dw := kafkaio.NewWriter(brokers)
	defer dw.Close()
	sp, err := speed.New(speed.Options{Brokers: brokers, Limits: schemas.DefaultLimits(), Store: store, Location: time.UTC,
		GenEvery: 100 * time.Millisecond, CutPoll: 100 * time.Millisecond, DeadLetters: kafkaio.NewDeadLetters(dw),
		Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sp.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	h10 := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	h11 := h10.Add(time.Hour)
	want := map[string]int{} // "hour|reason" -> rejected messages
	var msgs []kafka.Message
	reading := func(key, id string, rec, ts time.Time, volts float64) kafka.Message {
		return kafka.Message{Topic: schemas.TopicBattery, Key: []byte(key), Time: rec,
			Value: fmt.Appendf(nil, `{"battery_id":%q,"ts":%d,"voltage_v":%g,"current_a":-2,"temperature_c":30,"soc_pct":70}`, id, ts.UnixMilli(), volts)}
	}
	bad := func(reason string, m kafka.Message) {
		want[m.Time.UTC().Format("2006-01-02T15")+"|"+reason]++
		msgs = append(msgs, m)
	}
	for i := 0; i < 40; i++ { // good readings over both hours
		rec := h10.Add(time.Duration(i) * 3 * time.Minute)
		id := fmt.Sprintf("B-%02d", i%4)
		msgs = append(msgs, reading(id, id, rec, rec, 51))
	}
	for i, h := range []time.Time{h10, h10, h10, h11} {
		bad("not_json", kafka.Message{Topic: schemas.TopicBattery, Key: []byte("B-00"), Time: h.Add(time.Duration(i) * time.Minute),
			Value: []byte(`{"battery_id":"B-00",`)})
	}
	long := bytes.Repeat([]byte("é"), 5000) // 10,000 bytes, cut at 64 between characters
	bad("not_json", kafka.Message{Topic: schemas.TopicBattery, Key: []byte("B-01"), Time: h11.Add(7 * time.Minute), Value: long})
	for i := 0; i < 2; i++ {
		rec := h10.Add(time.Duration(20+i) * time.Minute)
		bad("unknown_type", kafka.Message{Topic: schemas.TopicRoom, Key: []byte("R-0101"), Time: rec,
			Value: fmt.Appendf(nil, `{"type":"fridge","room_id":"R-0101","ts":%d}`, rec.UnixMilli())})
	}
	for _, h := range []time.Time{h10, h11, h11} {
		rec := h.Add(30 * time.Minute)
		bad("from_future", reading("B-02", "B-02", rec, rec.Add(10*time.Minute), 51)) // ts 10 minutes ahead of its record
	}
	for i := 0; i < 2; i++ {
		rec := h11.Add(time.Duration(40+i) * time.Minute)
		bad("key_mismatch", reading("B-09", "B-03", rec, rec, 51))
	}
	bad("out_of_range", reading("B-03", "B-03", h11.Add(50*time.Minute), h11.Add(50*time.Minute), 9999))
	rejected := 0
	for _, c := range want {
		rejected += c
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	// Letters no layer wrote: no headers at all, and a forged partition.
	unreadable := []kafka.Message{
		{Topic: schemas.TopicDLQ, Key: []byte("x"), Value: []byte("garbage"), Time: h10.Add(time.Minute)},
		{Topic: schemas.TopicDLQ, Key: []byte("y"), Value: []byte("{}"), Time: h11.Add(time.Minute), Headers: []kafka.Header{
			{Key: kafkaio.HeaderReason, Value: []byte("not_json")}, {Key: kafkaio.HeaderTopic, Value: []byte(schemas.TopicBattery)},
			{Key: kafkaio.HeaderPartition, Value: []byte("-1")}, {Key: kafkaio.HeaderOffset, Value: []byte("3")}}},
	}
	want[h10.Format("2006-01-02T15")+"|unreadable_letter"]++
	want[h11.Format("2006-01-02T15")+"|unreadable_letter"]++
	if err := w.WriteMessages(ctx, unreadable...); err != nil {
		t.Fatal(err)
	}
	dlqSize := func() int { return len(testenv.ReadAll(t, addr, schemas.TopicDLQ)) }
	// The speed layer's copies are in before the first run: batch's own
	// copies then come in a later file, and must be recognised there.
	testenv.WaitUntil(t, 30*time.Second, "the speed layer forwards every reject", func() bool { return dlqSize() == rejected+2 }, dlqCount{t, addr})

	rc, err := batch.OpenRecomputer(ctx, batch.RecomputeOptions{Store: store, Dir: t.TempDir(), Site: batch.Site{CloseGrace: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	var mu sync.Mutex // tasks upload concurrently
	var uploads []string
	failCommit := false
	c := batch.NewCompactor(batch.CompactOptions{Brokers: brokers, Store: store, Limits: schemas.DefaultLimits(), Views: rc,
		LetterValueBytes: 64, DeadLetters: kafkaio.NewDeadLetters(dw), Fault: func(step string) error {
			if strings.HasPrefix(step, "upload raw/"+schemas.TopicDLQ) {
				mu.Lock()
				uploads = append(uploads, strings.TrimPrefix(step, "upload "))
				mu.Unlock()
			}
			if step == "commit" && failCommit {
				return errors.New("injected crash before commit")
			}
			return nil
		}})
	q, err := NewSQL(ctx, NewMerger(store, rc.Reader(), sp, time.UTC, nil), SQLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	applied := func(m *lake.Manifest) {
		t.Helper()
		testenv.WaitUntil(t, 30*time.Second, fmt.Sprintf("the speed layer applies version %d", m.Version),
			func() bool { return sp.ManifestVersion() == m.Version }, nil)
	}
	check := func(when string) {
		t.Helper()
		res, err := q.Query(ctx, dlqReport(t))
		if err != nil {
			t.Fatalf("%s: the README's DLQ report: %v", when, err)
		}
		got := map[string]int{}
		for _, r := range res.Rows {
			got[r[0].(time.Time).UTC().Format("2006-01-02T15")+"|"+fmt.Sprint(r[1])] = int(r[2].(int64))
		}
		if fmt.Sprint(sorted(got)) != fmt.Sprint(sorted(want)) {
			t.Errorf("%s: the report counts\n%v\nwant\n%v", when, sorted(got), sorted(want))
		}
		res, err = q.Query(ctx, `SELECT count(*), count(*) FILTER (WHERE duplicate), max(strlen(value)), max(length(value)) FILTER (WHERE value_bytes = 10000),
			count(*) FILTER (WHERE reason = 'unreadable_letter' AND error LIKE 'unreadable letter: %' AND source_offset IS NULL)
			FROM dead_letters`)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := fmt.Sprint(res.Rows[0]), fmt.Sprint([]any{int64(2*rejected + 2), int64(rejected), int64(64), int64(64 / 2), int64(2)}); got != want {
			t.Errorf("%s: rows, duplicates, longest value (bytes), characters kept of the 10,000-byte value, unreadable = %s, want %s", when, got, want)
		}
	}

	// Batch runs until it has read (and forwarded) every reject: battery
	// cuts fall on the speed layer's generation boundaries, so one run may
	// stop short. Each run also compacts the letters already in the topic.
	compacted := int64(0)
	for deadline := time.Now().Add(60 * time.Second); dlqSize() < 2*rejected+2; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("batch did not forward every reject within 60 s: %s", dlqCount{t, addr})
		}
		m, err := c.Run(ctx)
		if errors.Is(err, batch.ErrNothingToDo) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		compacted += m.Run.DeadLetters
	}
	// The copies forwarded by the last run are compacted by a run that
	// dies before it commits and by its re-run, which writes the same
	// objects.
	uploads, failCommit = nil, true
	if _, err := c.Run(ctx); err == nil {
		t.Fatal("the run with a crash before commit committed")
	}
	sort.Strings(uploads)
	first := append([]string(nil), uploads...)
	before := map[string][]byte{}
	for _, k := range first {
		data, _, err := store.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		before[k] = data
	}
	uploads, failCommit = nil, false
	m2, err := c.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(uploads)
	if len(first) == 0 || fmt.Sprint(uploads) != fmt.Sprint(first) {
		t.Errorf("the re-run wrote %v, the dead run %v", uploads, first)
	}
	for k, data := range before {
		if again, _, err := store.Get(ctx, k); err != nil || !bytes.Equal(again, data) {
			t.Errorf("the re-run rewrote %s differently (%v)", k, err)
		}
	}
	compacted += m2.Run.DeadLetters
	if compacted != int64(2*rejected+2) {
		t.Errorf("the runs compacted %d dead letters, want %d", compacted, 2*rejected+2)
	}
	applied(m2)
	check("after the runs and a re-run")
	if _, err := c.Run(ctx); !errors.Is(err, batch.ErrNothingToDo) {
		t.Errorf("a third run: %v, want nothing to do", err)
	}

	// Merging an hour's files keeps every copy and marks the same ones.
	hk := batch.NewHousekeeper(batch.HousekeepOptions{Store: store, Views: rc, Grace: time.Hour})
	m3, err := hk.Merge(ctx)
	if err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	for _, f := range m3.Files {
		if f.Topic == schemas.TopicDLQ {
			per[fmt.Sprintf("%s|%d", f.Hour, f.Partition)]++
		}
	}
	for g, n := range per {
		if n != 1 {
			t.Errorf("after merge, dead letters of %s are in %d files", g, n)
		}
	}
	applied(m3)
	check("after merge")
}

// dlqCount says, when a wait times out, what gridlake.dlq holds.
type dlqCount struct {
	t    *testing.T
	addr string
}

func (d dlqCount) String() string {
	n := map[string]int{}
	for _, m := range testenv.ReadAll(d.t, d.addr, schemas.TopicDLQ) {
		n[kafkaio.HeaderValue(m, kafkaio.HeaderReason)]++
	}
	return fmt.Sprintf("gridlake.dlq holds %v", n)
}

func sorted(m map[string]int) []string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(out)
	return out
}
