package httpx

import (
	"net/url"
	"strings"
	"testing"
)

func TestIntParams_RangeAndMessages(t *testing.T) {
	for _, tc := range []struct {
		query, want string
		got         int
	}{
		{"", "", 20},
		{"limit=1", "", 1},
		{"limit=500", "", 500},
		{"limit=0", "limit: send a whole number from 1 to 500 (http.max_page) (got \"0\")", 0},
		{"limit=501", "limit: send a whole number from 1 to 500 (http.max_page) (got \"501\")", 0},
		{"limit=" + strings.Repeat("9", 70), "(got \"" + strings.Repeat("9", 64) + "…\")", 0},
	} {
		q, _ := url.ParseQuery(tc.query)
		v, err := IntParam(q, "limit", 20, 1, 500, "http.max_page")
		if tc.want == "" && (err != nil || v != tc.got) || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Fatalf("%q: %d %v, want %d %q", tc.query, v, err, tc.got, tc.want)
		}
	}
	for _, tc := range []struct {
		query string
		got   int64
		ok    bool
	}{{"", 3, true}, {"version=0", 0, true}, {"version=42", 42, true}, {"version=-1", 0, false}, {"version=x", 0, false}} {
		q, _ := url.ParseQuery(tc.query)
		v, err := NonNegativeParam(q, "version", 3)
		if (err == nil) != tc.ok || v != tc.got || err != nil && err.Error() != "version: send a non-negative whole number" {
			t.Fatalf("%q: %d %v", tc.query, v, err)
		}
	}
}
