package serving

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gridlake/gridlake/alertd"
	"github.com/gridlake/gridlake/alerts"
	"github.com/gridlake/gridlake/batch"
	"github.com/gridlake/gridlake/internal/testenv"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/simulate"
	"github.com/gridlake/gridlake/speed"
)

// paramEnv is a small real stack for parameter tests: the embedded broker,
// MinIO, a speed layer and one batch commit, with the /v1 API and the speed
// layer's /speed/v1 on one handler. 50 batteries (B-00000..B-00049) have
// sent five minutes of readings, and room R-0102 events (R-0101 none).
func paramEnv(t testing.TB) http.Handler {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	const partitions = 2
	seoul, _ := time.LoadLocation("Asia/Seoul")
	addr := testenv.Kafka(t, partitions)
	store := testenv.Store(t)
	w := kafkaio.NewWriter([]string{addr})
	t.Cleanup(func() { w.Close() })
	sim := simulate.New(simulate.Options{Batteries: 50, Rooms: 2, Rate: 1, Seed: 7,
		Start: time.Date(2026, 11, 21, 14, 50, 0, 0, time.UTC)})
	if err := sim.Run(ctx, w, simulate.RunOptions{Duration: 5 * time.Minute, Fast: true}); err != nil {
		t.Fatal(err)
	}
	sp, err := speed.New(speed.Options{Brokers: []string{addr}, Limits: schemas.DefaultLimits(), Store: store, Location: seoul,
		GenEvery: 50 * time.Millisecond, CutPoll: 50 * time.Millisecond, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sp.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitSpeed(t, sp, addr, partitions)
	rc, err := batch.OpenRecomputer(ctx, batch.RecomputeOptions{Store: store, Dir: t.TempDir(), Site: batch.Site{Location: seoul, CloseGrace: 10 * time.Minute, Now: sim.Now}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	m, err := batch.NewCompactor(batch.CompactOptions{Brokers: []string{addr}, Store: store, Limits: schemas.DefaultLimits(), Views: rc}).Run(ctx)
	if err != nil && !errors.Is(err, batch.ErrNothingToDo) {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); m != nil && sp.ManifestVersion() != m.Version; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("speed layer did not apply version %d", m.Version)
		}
	}
	mux := http.NewServeMux()
	NewAPI(NewMerger(store, rc.Reader(), sp, seoul, sim.Now), nil).WithAlerts(&Alerts{Book: alertd.NewBook(100, nil),
		Silences: alertd.NewSilences(store, 10, nil), Rules: alerts.Defaults, CaughtUp: func() bool { return true }, MaxSilence: time.Hour, Now: time.Now}).Register(mux)
	sp.Register(mux)
	return mux
}

// TestAPI_BadParamsAnswerClearly replays hostile query parameters and path
// ids against every /v1 and /speed/v1 route: each is answered quickly with
// the documented status and a message, never a 500, a hang or a 200 with
// an empty body.
func TestAPI_BadParamsAnswerClearly(t *testing.T) {
	h := paramEnv(t)
	manyIDs := strings.Repeat("B-00001,", 1000) + "B-00002"
	long := strings.Repeat("x", 129)
	cases := []struct {
		path string
		code int
		want string // in the error message; for 200, in the body
	}{
		// Issue 12 item 2: an overflowing window count (the endless day
		// loop is the last case).
		{"/v1/batteries/B-00042/stats?res=1m&from=-9223372036854775808&to=9223372036854775807", 400, "years 1 to 9999"},
		{"/v1/fleet/stats?res=1m&from=-9223372036854775808&to=9223372036854775807", 400, "years 1 to 9999"},
		{"/v1/fleet/stats?res=1d&from=0001-01-01T00:00:00Z&to=9999-12-31T23:59:59Z", 400, "http.max_windows (100000)"},
		{"/v1/batteries/B-00042/stats?res=1m&from=0&to=253402300799999", 400, "http.max_windows"},
		{"/v1/batteries/B-00042/stats?to=253402300800000", 400, "years 1 to 9999"},
		{"/v1/batteries/B-00042/stats?to=-62135596800001", 400, "years 1 to 9999"},
		{"/v1/batteries/B-00042/stats?from=0001-01-01T00:00:00%2B01:00&to=0001-01-02T00:00:00Z", 400, "years 1 to 9999"},
		{"/v1/batteries/B-00042/stats?from=9999-12-31T23:00:00Z&to=9999-12-31T23:59:59-01:00", 400, "years 1 to 9999"},
		{"/v1/batteries/B-00042/stats?res=1d&from=-62135596800000&to=-62134732800000", 200, `"windows":[]`},
		{"/v1/batteries/B-00042/stats?res=2m", 400, "res: send 1m, 1h or 1d"},
		{"/v1/batteries/B-00042/stats?from=2026-11-21T15:00:00Z&to=2026-11-21T15:00:00Z", 400, "to must be after from"},
		{"/v1/rooms/R-0102/days?from=2026-01-01&to=2027-12-31", 400, "http.max_days (366)"},
		{"/v1/rooms/R-0102/days?from=0000-01-01", 400, "0001-01-01 to 9999-12-31"},
		{"/v1/rooms/R-0102/days?from=2026-11-22&to=2026-11-21", 400, "to must not be before from"},
		{"/v1/rooms/R-0102/timeline?day=0000-12-31", 400, "0001-01-01 to 9999-12-31"},
		{"/v1/hotel/days/0000-01-01", 400, "0001-01-01 to 9999-12-31"},
		{"/v1/hotel/days/9999-12-31", 200, `"day":"9999-12-31"`},
		{"/v1/hotel/days/today?by=floor", 400, "by: send room or device_type"},
		{"/v1/hotel/days/today?limit=10001", 400, "http.max_page"},
		{"/v1/hotel/days/today?offset=-1", 400, "offset"},
		{"/v1/batteries?ids=" + manyIDs, 400, "http.max_ids (1000)"},
		{"/v1/batteries?ids=B-00001," + long, 400, "ids: send an id of 1 to 128"},
		{"/v1/batteries?ids=B-00001,B%00", 400, "ids: send an id"},
		{"/v1/batteries?ids=B-00001,,B-00002", 400, "ids: send an id"},
		{"/v1/batteries?soc_below=Inf", 400, "soc_below: send a finite number"},
		{"/v1/batteries?temp_above=-Infinity", 400, "temp_above: send a finite number"},
		{"/v1/batteries?voltage_below=NaN", 400, "voltage_below: send a finite number"},
		{"/v1/batteries?current_above=1e999", 400, "current_above: send a finite number"},
		{"/v1/batteries?limit=99999999999999999999", 400, "limit"},
		{"/v1/batteries?after=" + long, 400, "after: send an id"},
		{"/v1/batteries/" + long, 400, "battery id: send an id"},
		{"/v1/batteries/B%00X/stats", 400, "battery id: send an id"},
		{"/v1/batteries/B%20X/stats", 400, "battery id: send an id"},
		{"/v1/batteries/%C3%A9/stats", 404, "has sent no valid reading"}, // letters of any script are ids (DESIGN §3)
		{"/v1/rooms/%20/days", 400, "room id: send an id"},
		{"/v1/rooms/" + long + "/timeline", 400, "room id: send an id"},
		{"/v1/fleet/now?stale_after=-1s", 400, "stale_after"},
		{"/v1/fleet/now?stale_after=NaN", 400, "stale_after"},
		// Issue 12 item 9 and the other /speed/v1 parameters.
		{"/speed/v1/batteries/B-00042/latest?version=99999999", 404, "no batch manifest has that version"},
		{"/speed/v1/batteries/B-00042/latest?version=9223372036854775807", 404, "no batch manifest has that version"},
		{"/speed/v1/batteries/B-00042/windows?res=1m&from=0&to=1&version=99999999", 404, "no batch manifest has that version"},
		{"/speed/v1/fleet?res=1m&from=0&to=1&version=99999999", 404, "no batch manifest has that version"},
		{"/speed/v1/batteries/B-00042/latest?version=-1", 400, "version"},
		{"/speed/v1/batteries/B-00042/windows?res=1m&from=-9223372036854775808&to=9223372036854775807", 400, "years 1 to 9999"},
		{"/speed/v1/fleet?res=1m&from=0&to=253402300800000", 400, "years 1 to 9999"},
		{"/speed/v1/batteries/" + long + "/latest", 400, "id: send 1 to 128"},
		{"/speed/v1/rooms/R-0102/days/0000-01-01", 400, "0001-01-01 to 9999-12-31"},
		{"/speed/v1/rooms/R-0102/days/2026-11-21?as_of=-9223372036854775808", 400, "years 1 to 9999"},
		{"/speed/v1/rooms/R%00/days/2026-11-21", 400, "id: send 1 to 128"},
		// Last: on the old code it never returns and eats memory.
		{"/v1/rooms/R-0102/days?from=9999-12-30&to=9999-12-31", 200, `"day":"9999-12-31"`},
	}
	for _, c := range cases {
		t.Run(c.path[:min(len(c.path), 90)], func(t *testing.T) {
			code, body := getWithin(t, h, c.path, 5*time.Second)
			if code != c.code {
				t.Fatalf("HTTP %d, want %d: %s", code, c.code, body)
			}
			var out map[string]any
			if err := json.Unmarshal(body, &out); err != nil {
				t.Fatalf("body is not a JSON object (%v): %q", err, body)
			}
			if code != 200 {
				if msg, _ := out["error"].(string); !strings.Contains(msg, c.want) {
					t.Fatalf("error %q does not say %q", msg, c.want)
				}
			} else if !strings.Contains(string(body), c.want) {
				t.Fatalf("body does not hold %s: %.300s", c.want, body)
			}
		})
	}
}

// getWithin serves one GET, failing the test if the handler has not
// answered within d (the old day loop never did).
func getWithin(t testing.TB, h http.Handler, path string, d time.Duration) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, path, nil)
	rec := httptest.NewRecorder()
	served := make(chan struct{})
	go func() { defer close(served); h.ServeHTTP(rec, req) }()
	select {
	case <-served:
		return rec.Code, rec.Body.Bytes()
	case <-ctx.Done():
		// Show where the handler is stuck.
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("GET %.120s: no answer within %s; goroutines:\n%s", path, d, buf)
		return 0, nil
	}
}
