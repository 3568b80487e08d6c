package batch

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/gridlake/gridlake/internal/testenv"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/objstore"
	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/simulate"
	"github.com/gridlake/gridlake/views"
)

var errCrash = errors.New("injected crash")

type coord struct {
	topic     string
	partition int
	offset    int64
}

// TestCompact_CrashesLeaveNoTrace aborts compaction at random points many
// times against real MinIO while data keeps arriving; after a final clean
// run the lake holds every valid record exactly once, read back by DuckDB,
// and the manifests tell a consistent history.
func TestCompact_CrashesLeaveNoTrace(t *testing.T) {
	ctx := context.Background()
	const partitions = 3
	addr, store, w, _ := lakeTest(t, partitions)
	sim := simulate.New(simulate.Options{Batteries: 30, Rooms: 8, Rate: 1, Seed: 5,
		Start:  time.Date(2026, 11, 20, 22, 50, 0, 0, time.UTC),
		Faults: simulate.Faults{Duplicate: 0.02, Late: 0.01, LateDelay: 2 * time.Hour, Malformed: 0.01, Reorder: 5 * time.Second}})
	r := rand.New(rand.NewPCG(8, 9))
	crashes, commits := 0, 0
	for round := 0; round < 25; round++ {
		if err := sim.Run(ctx, w, simulate.RunOptions{Duration: time.Minute, Fast: true}); err != nil {
			t.Fatal(err)
		}
		steps, crashAt := 0, r.IntN(12)
		c := NewCompactor(CompactOptions{Brokers: []string{addr}, Store: store, Limits: schemas.DefaultLimits(),
			MaxRecords: int64(200 + r.IntN(800)), Concurrency: 2,
			Fault: func(step string) error {
				steps++
				if steps == crashAt {
					return errCrash
				}
				return nil
			}})
		_, err := c.Run(ctx)
		switch {
		case errors.Is(err, errCrash):
			crashes++
		case err == nil:
			commits++
		default:
			t.Fatalf("round %d: %v", round, err)
		}
	}
	if crashes < 5 || commits < 5 {
		t.Fatalf("%d crashes and %d commits: the test needs both", crashes, commits)
	}
	final := NewCompactor(CompactOptions{Brokers: []string{addr}, Store: store, Limits: schemas.DefaultLimits()})
	var m *lake.Manifest
	for {
		next, err := final.Run(ctx)
		if errors.Is(err, ErrNothingToDo) {
			m = next
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}

	// Every valid record is in the lake exactly once.
	all := testenv.ReadAll(t, addr, schemas.TopicBattery, schemas.TopicRoom)
	want := map[coord]bool{}
	for _, msg := range all {
		if _, rej := schemas.Validate(schemas.DefaultLimits(), msg.Topic, msg.Key, msg.Value, msg.Time); rej.OK() {
			want[coord{msg.Topic, msg.Partition, msg.Offset}] = true
		}
	}
	got := lakeRecords(t, ctx, store, m)
	if len(got) != len(want) {
		t.Fatalf("lake holds %d rows, %d valid records were sent", len(got), len(want))
	}
	seen := map[coord]bool{}
	for _, c := range got {
		if seen[c] || !want[c] {
			t.Fatalf("record %+v is in the lake twice or should not be there", c)
		}
		seen[c] = true
	}
	checkHistory(t, ctx, store, m.Version)
}

// lakeRecords reads the (topic, partition, offset) of every row of the
// manifest's files with DuckDB's read_parquet.
func lakeRecords(t *testing.T, ctx context.Context, store *objstore.Store, m *lake.Manifest) []coord {
	t.Helper()
	cache, err := views.NewCache(t.TempDir(), store)
	if err != nil {
		t.Fatal(err)
	}
	db, err := views.OpenDuckDB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out []coord
	for _, topic := range []string{schemas.TopicBattery, schemas.TopicRoom} {
		var files []lake.File
		for _, f := range m.Files {
			if f.Topic == topic {
				files = append(files, f)
			}
		}
		paths, err := cache.Files(ctx, files)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := db.QueryContext(ctx, "SELECT kafka_partition, kafka_offset FROM read_parquet("+views.ParquetList(paths)+")")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			c := coord{topic: topic}
			if err := rows.Scan(&c.partition, &c.offset); err != nil {
				t.Fatal(err)
			}
			out = append(out, c)
		}
		rows.Close()
	}
	return out
}

// checkHistory checks every manifest version: contiguous versions, cuts
// that never move back, files that are only ever added, and file offset
// ranges that tile each partition from 0 to its cut.
func checkHistory(t *testing.T, ctx context.Context, store *objstore.Store, newest int64) {
	t.Helper()
	var prev *lake.Manifest
	for v := int64(1); v <= newest; v++ {
		m, err := lake.Read(ctx, store, v)
		if err != nil {
			t.Fatalf("version %d missing from history: %v", v, err)
		}
		if m.Run.Previous != v-1 {
			t.Fatalf("version %d says it follows %d", v, m.Run.Previous)
		}
		if prev != nil {
			for topic, offs := range prev.Cut {
				for p, o := range offs {
					if m.Cut.Offset(topic, p) < o {
						t.Fatalf("version %d moves the cut of %s/%d back", v, topic, p)
					}
				}
			}
			for i, f := range prev.Files {
				if i >= len(m.Files) || m.Files[i].Key != f.Key {
					t.Fatalf("version %d dropped file %s", v, f.Key)
				}
			}
		}
		// Ranges tile [0, cut) per partition (several hour files may share
		// one range).
		type tp struct {
			topic     string
			partition int
		}
		ranges := map[tp][][2]int64{}
		for _, f := range m.Files {
			k := tp{f.Topic, f.Partition}
			rs := ranges[k]
			if n := len(rs); n == 0 || rs[n-1] != [2]int64{f.FirstOffset, f.LastOffset} {
				ranges[k] = append(rs, [2]int64{f.FirstOffset, f.LastOffset})
			}
		}
		for k, rs := range ranges {
			sort.Slice(rs, func(i, j int) bool { return rs[i][0] < rs[j][0] })
			next := int64(0)
			for _, r := range rs {
				if r[0] != next {
					t.Fatalf("version %d: %v ranges leave a gap or overlap at %d (%v)", v, k, next, rs)
				}
				next = r[1] + 1
			}
			if next > m.Cut.Offset(k.topic, k.partition) {
				t.Fatalf("version %d: %v files reach %d beyond the cut %d", v, k, next, m.Cut.Offset(k.topic, k.partition))
			}
		}
		prev = m
	}
}

// TestCompact_DuckDBReadsTypesAndHiveLayout: DuckDB's own read_parquet sees
// the expected column types, and the keys are Hive-style partitions.
func TestCompact_DuckDBReadsTypesAndHiveLayout(t *testing.T) {
	ctx := context.Background()
	addr, store, w, _ := lakeTest(t, 2)
	sim := simulate.New(simulate.Options{Batteries: 10, Rooms: 4, Rate: 1, Seed: 3, Start: time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)})
	if err := sim.Run(ctx, w, simulate.RunOptions{Duration: 30 * time.Minute, Fast: true}); err != nil {
		t.Fatal(err)
	}
	m, err := NewCompactor(CompactOptions{Brokers: []string{addr}, Store: store, Limits: schemas.DefaultLimits()}).Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cache, _ := views.NewCache(t.TempDir(), store)
	db, err := views.OpenDuckDB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	want := map[string]map[string]string{
		schemas.TopicBattery: {"battery_id": "VARCHAR", "ts": "TIMESTAMP WITH TIME ZONE", "voltage_v": "DOUBLE", "soh_pct": "DOUBLE",
			"cycle_count": "BIGINT", "kafka_partition": "INTEGER", "kafka_offset": "BIGINT", "kafka_ts": "TIMESTAMP WITH TIME ZONE"},
		schemas.TopicRoom: {"type": "VARCHAR", "room_id": "VARCHAR", "ts": "TIMESTAMP WITH TIME ZONE", "occupied": "BOOLEAN", "power_w": "DOUBLE"},
	}
	for topic, cols := range want {
		var f lake.File
		for _, x := range m.Files {
			if x.Topic == topic {
				f = x
			}
		}
		var dt, hour string
		if _, err := fmt.Sscanf(f.Key[len("raw/"+topic+"/"):], "dt=%10s", &dt); err != nil || f.Hour[:10] != dt {
			t.Fatalf("key %s is not Hive-style dt=YYYY-MM-DD", f.Key)
		}
		hour = fmt.Sprintf("hour=%s/", f.Hour[11:13])
		if !strings.Contains(f.Key, "/"+hour) {
			t.Fatalf("key %s lacks %s", f.Key, hour)
		}
		path, err := cache.Path(ctx, f.Key, f.ETag)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := db.QueryContext(ctx, "DESCRIBE SELECT * FROM read_parquet('"+path+"')")
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for rows.Next() {
			var name, typ string
			var null, key, def, extra any
			if err := rows.Scan(&name, &typ, &null, &key, &def, &extra); err != nil {
				t.Fatal(err)
			}
			got[name] = typ
		}
		rows.Close()
		for c, ty := range cols {
			if got[c] != ty {
				t.Errorf("%s.%s is %q, want %q", topic, c, got[c], ty)
			}
		}
		// Rows are sorted by key then ts.
		var unsorted int
		key := "battery_id"
		if topic == schemas.TopicRoom {
			key = "room_id"
		}
		q := fmt.Sprintf(`SELECT count(*) FROM (SELECT %[1]s, ts, lag(%[1]s) OVER () AS pk, lag(ts) OVER () AS pts FROM read_parquet('%[2]s'))
			WHERE pk > %[1]s OR (pk = %[1]s AND pts > ts)`, key, path)
		if err := db.QueryRowContext(ctx, q).Scan(&unsorted); err != nil {
			t.Fatal(err)
		}
		if unsorted != 0 {
			t.Fatalf("%s: %d rows out of key/ts order", f.Key, unsorted)
		}
	}
}

// lakeTest starts what a batch test runs against: the embedded broker with
// the gridlake topics, a real MinIO server, a producer and a recomputer
// (UTC, a one-hour close grace, the wall clock), all closed when the test
// ends.
func lakeTest(t *testing.T, partitions int) (string, *objstore.Store, *kafka.Writer, *Recomputer) {
	t.Helper()
	return lakeTestAt(t, partitions, Site{CloseGrace: time.Hour})
}

// lakeTestAt is lakeTest with the recomputer on site.
func lakeTestAt(t *testing.T, partitions int, site Site) (string, *objstore.Store, *kafka.Writer, *Recomputer) {
	t.Helper()
	addr := testenv.Kafka(t, partitions)
	store := testenv.Store(t)
	w := kafkaio.NewWriter([]string{addr})
	t.Cleanup(func() { w.Close() })
	rc, err := OpenRecomputer(context.Background(), RecomputeOptions{Store: store, Dir: t.TempDir(), Site: site})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	return addr, store, w, rc
}
