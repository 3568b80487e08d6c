package pgwire

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"testing"
	"time"

	"github.com/gridlake/gridlake/batch"
	"github.com/gridlake/gridlake/internal/testenv"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/serving"
	"github.com/gridlake/gridlake/simulate"
	"github.com/gridlake/gridlake/speed"
)

// lakeServer starts the real SQL engine over a lake with one committed
// batch run (real broker and MinIO) and a PostgreSQL server in front of
// it, with testDirectory's users; it returns the server's address.
func lakeServer(t *testing.T) string {
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
	sim := simulate.New(simulate.Options{Batteries: 5, Rooms: 2, Rate: 1, Seed: 11, Start: time.Now().UTC().Add(-30 * time.Minute).Truncate(time.Minute)})
	if err := sim.Run(ctx, w, simulate.RunOptions{Duration: 10 * time.Minute, Fast: true}); err != nil {
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
	q, err := serving.NewSQL(ctx, serving.NewMerger(store, rc.Reader(), sp, time.UTC, nil), serving.SQLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return serve(t, &Server{Q: q})
}

// libpq is a libpq connection string for the analyst.
func libpq(addr string) string {
	host, port, _ := splitHostPort(addr)
	return fmt.Sprintf("host=%s port=%s user=analyst dbname=gridlake sslmode=disable", host, port)
}

func splitHostPort(addr string) (string, string, error) {
	u, err := url.Parse("//" + addr)
	if err != nil {
		return "", "", err
	}
	return u.Hostname(), u.Port(), nil
}
