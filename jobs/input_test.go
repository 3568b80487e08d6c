package jobs

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gridlake/gridlake/internal/testenv"
)

func TestCheckBackfill(t *testing.T) {
	cases := []struct {
		from, to string
		ok       bool
		says     string
	}{
		{"2026-11-01", "2026-11-07", true, ""},
		{"2026-11-07", "2026-11-07", true, ""},
		{"2024-01-01", "2024-12-31", true, ""}, // 366 days
		{"2026-11-07", "2026-11-01", false, "after"},
		{"2024-01-01", "2025-01-01", false, "jobs.backfill_max_days (366)"},
		{"0001-01-01", "9999-12-31", false, "jobs.backfill_max_days"},
		{"0000-12-31", "0001-01-01", false, "years 1..9999"},
		{"2026-11-01", "10000-01-01", false, "years 1..9999"},
		{"2026-02-30", "2026-03-01", false, "YYYY-MM-DD"},
		{"yesterday", "2026-11-01", false, "from"},
		{"2026-11-01", "", false, "to"},
	}
	for _, c := range cases {
		_, _, err := CheckBackfill(c.from, c.to, DefaultBackfillMaxDays)
		if (err == nil) != c.ok || (err != nil && (!IsInputError(err) || !strings.Contains(err.Error(), c.says))) {
			t.Errorf("%s..%s: %v", c.from, c.to, err)
		}
	}
}

// TestBackfill_BadRangeClaimsNothing: a backfill whose range is backwards
// (or otherwise bad) is refused, by Trigger and over HTTP with 400, before
// any slot, job number or run record is written, and the job never runs.
func TestBackfill_BadRangeClaimsNothing(t *testing.T) {
	ctx := context.Background()
	store := testenv.Store(t)
	ran := 0
	s, err := New(Options{Store: store, Holder: "test"}, &Job{Name: JobBackfill, Run: func(context.Context, Input) (Output, error) {
		ran++
		return Output{}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Trigger(ctx, JobBackfill, "backfill", Input{From: "2026-11-07", To: "2026-11-01"})
	if !IsInputError(err) || !strings.Contains(err.Error(), "after") {
		t.Fatalf("backwards backfill: %v", err)
	}
	mux := http.NewServeMux()
	s.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, body := range []string{`{"from":"2026-11-07","to":"2026-11-01"}`, `{"from":"0000-01-01","to":"0000-01-02"}`, `{"from":"2020-01-01","to":"2026-01-01"}`} {
		resp, err := http.Post(srv.URL+"/v1/jobs/backfill/run", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var answer struct{ Error string }
		json.NewDecoder(resp.Body).Decode(&answer)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(answer.Error, "backfill") {
			t.Fatalf("POST %s: %d %q, want 400 naming the problem", body, resp.StatusCode, answer.Error)
		}
	}
	objs, err := store.List(ctx, jobPrefix(JobBackfill))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 0 || ran != 0 {
		t.Fatalf("a refused backfill left %d objects (%v) and ran %d times", len(objs), objs, ran)
	}
	// A good range still runs.
	if r, err := s.Trigger(ctx, JobBackfill, "backfill", Input{From: "2026-11-01", To: "2026-11-07"}); err != nil || r.Status != StatusOK || ran != 1 {
		t.Fatalf("good backfill: %+v %v (ran %d)", r, err, ran)
	}
}
