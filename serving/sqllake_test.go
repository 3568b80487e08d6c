package serving

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/gridlake/gridlake/batch"
	"github.com/gridlake/gridlake/internal/testenv"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/simulate"
	"github.com/gridlake/gridlake/speed"
)

// sqlLake is a lake with one committed batch run on the real broker and
// MinIO, its speed layer, and a canary file outside the lake cache whose
// contents no SQL answer may ever show.
type sqlLake struct {
	m      *Merger
	cache  string // the lake cache folder
	canary string // a file outside the cache holding secret
	secret string
}

func newSQLLake(t testing.TB) *sqlLake {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	addr := testenv.Kafka(t, 1)
	store := testenv.Store(t)
	w := kafkaio.NewWriter([]string{addr})
	defer w.Close()
	sp, err := speed.New(speed.Options{Brokers: []string{addr}, Limits: schemas.DefaultLimits(), Store: store, Location: time.UTC,
		GenEvery: 100 * time.Millisecond, CutPoll: 100 * time.Millisecond, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sp.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	sim := simulate.New(simulate.Options{Batteries: 5, Rooms: 2, Rate: 1, Seed: 11, Start: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)})
	if err := sim.Run(ctx, w, simulate.RunOptions{Duration: 10 * time.Minute, Fast: true}); err != nil {
		t.Fatal(err)
	}
	// A few dead letters, as the layers write them, so dead_letters has rows.
	var letters []kafka.Message
	for i, rej := range []schemas.Rejection{{Reason: schemas.ReasonNotJSON}, {Reason: schemas.ReasonOutOfRange, Field: "voltage_v"}} {
		src := kafka.Message{Topic: schemas.TopicBattery, Partition: 0, Offset: int64(1_000_000 + i), Key: []byte("B-00001"),
			Value: []byte(`{"battery_id":"B-00001"`), Time: time.Date(2026, 11, 21, 10, 5, 0, 0, time.UTC)}
		letters = append(letters, kafkaio.Letter(src, rej))
	}
	if err := w.WriteMessages(ctx, letters...); err != nil {
		t.Fatal(err)
	}
	rc, err := batch.OpenRecomputer(ctx, batch.RecomputeOptions{Store: store, Dir: t.TempDir(), Site: batch.Site{CloseGrace: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	c := batch.NewCompactor(batch.CompactOptions{Brokers: []string{addr}, Store: store, Limits: schemas.DefaultLimits(), Views: rc})
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no batch commit within 60 s")
		}
		m, err := c.Run(ctx)
		if errors.Is(err, batch.ErrNothingToDo) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for sp.ManifestVersion() != m.Version {
			if time.Now().After(deadline) {
				t.Fatalf("speed layer did not apply version %d", m.Version)
			}
			time.Sleep(20 * time.Millisecond)
		}
		break
	}
	l := &sqlLake{m: NewMerger(store, rc.Reader(), sp, time.UTC, nil), cache: rc.Reader().Cache().Dir(), secret: fmt.Sprintf("canary-%d", time.Now().UnixNano())}
	l.canary = filepath.Join(t.TempDir(), "canary.csv")
	if err := os.WriteFile(l.canary, []byte("name,secret\nx,"+l.secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return l
}

// sql opens a SQL engine on the lake.
func (l *sqlLake) sql(t testing.TB, o SQLOptions) *SQL {
	t.Helper()
	q, err := NewSQL(context.Background(), l.m, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

// leaks says what of the canary, its folder or the lake cache's path an
// answer or error shows that the statement did not itself contain.
func (l *sqlLake) leaks(stmt, answer string) string {
	if strings.Contains(answer, l.secret) {
		return "the canary's secret"
	}
	for _, p := range []string{l.canary, filepath.Dir(l.canary), l.cache} {
		if strings.Contains(answer, p) && !strings.Contains(stmt, p) {
			return "the path " + p
		}
	}
	return ""
}

// answer renders a result or error as text for leak checks.
func answer(res *Result, err error) string {
	if err != nil {
		return err.Error()
	}
	if res == nil {
		return ""
	}
	var b strings.Builder
	for _, c := range res.Columns {
		b.WriteString(c.Name + " ")
	}
	for _, row := range res.Rows {
		for _, v := range row {
			s, _ := TextValue(v)
			b.WriteString(s + " ")
		}
	}
	return b.String()
}

func kindOf(err error) string {
	var qe *QueryError
	if errors.As(err, &qe) {
		return string(qe.Kind)
	}
	return ""
}
