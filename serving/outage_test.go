package serving

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/batch"
	"github.com/gridlake/gridlake/internal/httpx"
	"github.com/gridlake/gridlake/internal/reference"
	"github.com/gridlake/gridlake/internal/testenv"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/objstore"
	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/simulate"
	"github.com/gridlake/gridlake/speed"
)

// outageClient gives up long after any bound of the code under test, so
// a hang shows as a slow answer, not a stuck test.
var outageClient = &http.Client{Timeout: 30 * time.Second}

// timedGet fetches url, decodes a JSON answer into out and returns the
// status and how long the answer took.
func timedGet(t *testing.T, url string, out any) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	resp, err := outageClient.Get(url)
	if err != nil {
		t.Fatalf("GET %s after %s: %v", url, time.Since(start).Round(time.Millisecond), err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, time.Since(start)
}

// wireFreshness is the freshness as clients read it from the JSON.
type wireFreshness struct {
	BatchVersion int64      `json:"batch_version"`
	Store        string     `json:"store"`
	StoreError   string     `json:"store_error"`
	StaleSince   *time.Time `json:"stale_since"`
	SpeedVersion int64      `json:"speed_batch_version"`
}

// stoppableListener fails its accepts once stopped, as a listener does
// when the process has run out of descriptors.
type stoppableListener struct {
	net.Listener
	stopped atomic.Bool
}

func (l *stoppableListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil && l.stopped.Load() {
		c.Close()
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return c, err
}

// TestReadyz_ReachesEachDependency checks /readyz against a real MinIO
// and a real broker: with MinIO frozen or killed it answers 503 within
// its check timeout naming the object store, while the broker's check,
// bounded on its own, still says ok; with MinIO back it answers 200. A
// broker whose accept loop ended (kfake's ends at the first EMFILE) while
// its open connections still answer must be reported too: readiness dials
// anew instead of trusting a pooled connection.
func TestReadyz_ReachesEachDependency(t *testing.T) {
	var bl *stoppableListener
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.ListenFn(func(network, address string) (net.Listener, error) {
		ln, err := net.Listen(network, address)
		if err == nil {
			bl = &stoppableListener{Listener: ln}
			return bl, nil
		}
		return nil, err
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	addr := cluster.ListenAddrs()[0]
	srv, opts := testenv.MinIOServer(t)
	opts.Timeout = time.Second
	store, err := objstore.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	h := httpx.NewHealth()
	h.CheckTimeout = 2 * time.Second
	h.Add("object_store", store.Ping)
	h.Add("kafka", func(ctx context.Context) error { return kafkaio.Ping(ctx, []string{addr}) })
	mux := http.NewServeMux()
	h.Register(mux)
	web := httptest.NewServer(mux)
	defer web.Close()

	ready := func(phase string, failing string) {
		t.Helper()
		var got map[string]string
		code, took := timedGet(t, web.URL+"/readyz", &got)
		if took > 4*time.Second {
			t.Fatalf("%s: /readyz took %s", phase, took)
		}
		want := http.StatusOK
		if failing != "" {
			want = http.StatusServiceUnavailable
		}
		if code != want || len(got) != 2 {
			t.Fatalf("%s: /readyz = %d %v, want %d", phase, code, got, want)
		}
		for name, st := range got {
			if (name == failing) == (st == "ok") {
				t.Fatalf("%s: /readyz = %v, want only %q failing", phase, got, failing)
			}
		}
	}
	ready("running", "")
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	ready("MinIO frozen", "object_store")
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	ready("MinIO resumed", "")
	srv.Stop()
	ready("MinIO killed", "object_store")
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	ready("MinIO restarted", "")
	// The broker's accept loop ends; connections opened before still work.
	bl.stopped.Store(true)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break // the listener is closed
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the broker still accepts connections")
		}
	}
	ready("broker refuses new connections", "kafka")
}

// TestAPI_ExactThroughObjectStoreOutage runs the serving layer on a real
// MinIO and the real broker, commits batch runs, and then freezes
// (SIGSTOP) and later kills MinIO while ingest goes on. Throughout, battery
// stats and /v1/status answer within a few seconds (s3.timeout is 1s),
// battery stats equal the reference over every event sent so far, and the
// freshness says the store is unreachable; once MinIO is back, freshness
// is ok again and the next batch run shows. When the speed layer has
// applied a version the serving layer could not load before the outage,
// stats answer 503, not a wrong number, and /v1/status says why.
func TestAPI_ExactThroughObjectStoreOutage(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const partitions = 2
	addr := testenv.Kafka(t, partitions)
	minio, opts := testenv.MinIOServer(t)
	opts.Timeout = time.Second
	store, err := objstore.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	w := kafkaio.NewWriter([]string{addr})
	defer w.Close()
	sim := simulate.New(simulate.Options{Batteries: 6, Rooms: 2, Rate: 1, Seed: 7,
		Start:  time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC),
		Faults: simulate.Faults{Duplicate: 0.05, Reorder: 10 * time.Second}})
	sp, err := speed.New(speed.Options{Brokers: []string{addr}, Limits: schemas.DefaultLimits(), Store: store,
		GenEvery: 100 * time.Millisecond, CutPoll: 100 * time.Millisecond, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	speedDone := make(chan error, 1)
	go func() { speedDone <- sp.Run(ctx) }()
	defer func() { cancel(); <-speedDone }()
	rc, err := batch.OpenRecomputer(ctx, batch.RecomputeOptions{Store: store, Dir: t.TempDir(), Site: batch.Site{CloseGrace: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	c := batch.NewCompactor(batch.CompactOptions{Brokers: []string{addr}, Store: store, Limits: schemas.DefaultLimits(), Views: rc})
	mux := http.NewServeMux()
	NewAPI(NewMerger(store, rc.Reader(), sp, time.UTC, sim.Now), nil).Register(mux)
	web := httptest.NewServer(mux)
	defer web.Close()

	ingest := func(d time.Duration) {
		t.Helper()
		if err := sim.Run(ctx, w, simulate.RunOptions{Duration: d, Fast: true}); err != nil {
			t.Fatal(err)
		}
		waitSpeed(t, sp, addr, partitions)
	}
	commit := func() int64 {
		t.Helper()
		m, err := c.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(20 * time.Second); sp.ManifestVersion() != m.Version; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("speed layer did not apply version %d", m.Version)
			}
		}
		return m.Version
	}
	type statsAnswer struct {
		Windows   []WindowOut
		Freshness wireFreshness
		Error     string
	}
	// exact checks every battery's minute windows against the reference
	// and returns the freshness of the answers.
	exact := func(phase string) wireFreshness {
		t.Helper()
		ref := reference.Build(schemas.DefaultLimits(), testenv.ReadAll(t, addr, schemas.TopicBattery, schemas.TopicRoom))
		lo, hi := sim.Now().Add(-2*time.Hour).UnixMilli(), sim.Now().Add(time.Hour).UnixMilli()
		var fr wireFreshness
		for id := range ref.Readings {
			var got statsAnswer
			code, took := timedGet(t, fmt.Sprintf("%s/v1/batteries/%s/stats?res=1m&from=%d&to=%d", web.URL, id, lo, hi), &got)
			if code != http.StatusOK || took > 5*time.Second {
				t.Fatalf("%s: battery %s stats: HTTP %d after %s: %s", phase, id, code, took, got.Error)
			}
			want := ref.Windows(id, agg.Minutely)
			if len(got.Windows) != len(want) {
				t.Fatalf("%s (batch v%d): battery %s: %d windows, reference %d", phase, got.Freshness.BatchVersion, id, len(got.Windows), len(want))
			}
			for _, g := range got.Windows {
				if !sameWindow(g, want[g.StartMS]) {
					t.Fatalf("%s (batch v%d): battery %s window %s:\n got %+v\nwant %+v", phase, got.Freshness.BatchVersion, id, g.Start, g, want[g.StartMS])
				}
			}
			fr = got.Freshness
		}
		return fr
	}
	// status waits until /v1/status says the store is want, each answer
	// within a few seconds.
	status := func(phase, want string) wireFreshness {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			var got struct {
				Freshness wireFreshness
				Error     string
			}
			code, took := timedGet(t, web.URL+"/v1/status", &got)
			if code != http.StatusOK || took > 5*time.Second {
				t.Fatalf("%s: /v1/status: HTTP %d after %s: %s", phase, code, took, got.Error)
			}
			if got.Freshness.Store == want {
				return got.Freshness
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: /v1/status freshness %+v, want store %q", phase, got.Freshness, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	ingest(20 * time.Minute)
	v1 := commit()
	ingest(5 * time.Minute)
	if fr := exact("before the outage"); fr.BatchVersion != v1 || fr.Store != "ok" {
		t.Fatalf("before the outage: freshness %+v, want batch v%d and store ok", fr, v1)
	}

	for _, outage := range []struct {
		name       string
		stop, back func() error
	}{
		{"frozen", minio.Pause, minio.Resume},
		{"killed", func() error { minio.Stop(); return nil }, minio.Restart},
	} {
		if err := outage.stop(); err != nil {
			t.Fatal(err)
		}
		fr := status("MinIO "+outage.name, "unreachable")
		if fr.StaleSince == nil || fr.StoreError == "" {
			t.Fatalf("MinIO %s: freshness %+v, want stale_since and store_error", outage.name, fr)
		}
		ingest(3 * time.Minute) // Kafka still takes events; the speed layer counts them
		if fr := exact("MinIO " + outage.name); fr.Store != "unreachable" || fr.BatchVersion < v1 {
			t.Fatalf("MinIO %s: freshness %+v, want store unreachable", outage.name, fr)
		}
		if err := outage.back(); err != nil {
			t.Fatal(err)
		}
		status("MinIO back after "+outage.name, "ok")
		v := commit()
		if fr := exact("after MinIO " + outage.name); fr.BatchVersion != v || fr.Store != "ok" {
			t.Fatalf("after MinIO %s: freshness %+v, want batch v%d and store ok", outage.name, fr, v)
		}
	}

	// The speed layer applies a version and the store freezes before the
	// serving layer loaded it: the older version no longer splits with the
	// speed layer, so stats answer 503 quickly; status says what happened.
	ingest(3 * time.Minute)
	v := commit()
	if err := minio.Pause(); err != nil {
		t.Fatal(err)
	}
	id := ""
	ref := reference.Build(schemas.DefaultLimits(), testenv.ReadAll(t, addr, schemas.TopicBattery))
	for b := range ref.Readings {
		id = b
		break
	}
	var got statsAnswer
	code, took := timedGet(t, fmt.Sprintf("%s/v1/batteries/%s/stats?res=1m&from=%d&to=%d", web.URL, id,
		sim.Now().Add(-2*time.Hour).UnixMilli(), sim.Now().UnixMilli()), &got)
	if code != http.StatusServiceUnavailable || took > 5*time.Second || !strings.Contains(got.Error, fmt.Sprintf("batch version %d", v)) {
		t.Fatalf("speed layer past the loaded version: stats HTTP %d after %s: %+v; want a quick 503 naming version %d", code, took, got, v)
	}
	// Room reports too: the speed layer's room events are not kept per
	// version, so the older snapshot cannot be met with them exactly.
	var days struct{ Error string }
	code, took = timedGet(t, web.URL+"/v1/rooms/R-0101/days?from=today&to=today", &days)
	if code != http.StatusServiceUnavailable || took > 5*time.Second || !strings.Contains(days.Error, fmt.Sprintf("batch version %d", v)) {
		t.Fatalf("speed layer past the loaded version: room days HTTP %d after %s: %+v; want a quick 503 naming version %d", code, took, days, v)
	}
	fr := status("speed layer past the loaded version", "unreachable")
	if fr.SpeedVersion != v || fr.BatchVersion >= v {
		t.Fatalf("freshness %+v, want batch version below %d and speed_batch_version %d", fr, v, v)
	}
	if err := minio.Resume(); err != nil {
		t.Fatal(err)
	}
	status("MinIO resumed", "ok")
	if fr := exact("after the last outage"); fr.BatchVersion != v {
		t.Fatalf("after the last outage: freshness %+v, want batch v%d", fr, v)
	}
}
