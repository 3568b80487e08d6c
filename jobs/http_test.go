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

// TestHTTP_RunsLimitIsBounded: each run listed by GET /v1/jobs/{name}/runs
// is one store read, so ?limit= past http.max_page (default 10000) is a
// 400 naming the setting, and a limit within it pages the history.
func TestHTTP_RunsLimitIsBounded(t *testing.T) {
	ctx := context.Background()
	ok := func(context.Context, Input) (Output, error) { return Output{Rows: 1}, nil }
	s, err := New(Options{Store: testenv.Store(t), Holder: "test"}, &Job{Name: "ok", Run: ok})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := s.Trigger(ctx, "ok", "manual", Input{}); err != nil {
			t.Fatal(err)
		}
	}
	mux := http.NewServeMux()
	s.Register(mux)
	for _, c := range []struct {
		query string
		code  int
		want  string
	}{
		{"?limit=2", 200, ""},
		{"?limit=10001", 400, "from 1 to 10000 (http.max_page)"},
		{"?limit=9223372036854775807", 400, "http.max_page"},
		{"?limit=0", 400, "http.max_page"},
	} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/jobs/ok/runs"+c.query, nil))
		var out struct {
			Runs  []Run
			Error string
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || rec.Code != c.code {
			t.Fatalf("%s: HTTP %d (%v): %s", c.query, rec.Code, err, rec.Body)
		}
		if c.code == 200 && len(out.Runs) != 2 {
			t.Fatalf("%s: %d runs, want 2", c.query, len(out.Runs))
		}
		if !strings.Contains(out.Error, c.want) {
			t.Fatalf("%s: error %q does not say %q", c.query, out.Error, c.want)
		}
	}
}
