package speed

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzSourceParams sends arbitrary operations and query strings to the
// source interface: every request gets an answer (200, 400, 404, 409 or
// 413), never a panic, and a 200 is a JSON answer.
func FuzzSourceParams(f *testing.F) {
	for _, s := range []string{
		"windows?res=1m&from=0&to=60000&version=0",
		"windows?id=B-00001&res=1h&from=-9223372036854775808&to=9223372036854775807",
		"fleet?res=1d&from=5&to=4",
		"batteries?res=1m&starts=0,60000,120000",
		"batteries?res=1m&starts=,,,",
		"latest?id=../../x",
		"latest?since=3.4&version=0",
		"latest?since=18446744073709551615.18446744073709551615",
		"latest?since=1.2.3",
		"latest?id=B-00001&since=x",
		"roomevents?room=R-1&from=0&to=0&version=3",
		"rooms?version=-1",
		"nope?x=%zz",
	} {
		f.Add(s)
	}
	l, err := New(Options{Brokers: []string{"127.0.0.1:1"}})
	if err != nil {
		f.Fatal(err)
	}
	mux := http.NewServeMux()
	l.RegisterSource(mux, 1000, "speed.source_max_items")
	f.Fuzz(func(t *testing.T, s string) {
		if strings.ContainsAny(s, " \r\n\t#") {
			return // not a request line httptest accepts
		}
		req, err := http.NewRequest(http.MethodGet, "http://speed"+SourcePath+s, nil)
		if err != nil {
			return
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
			if !strings.HasPrefix(rec.Body.String(), `{"ownership":`) {
				t.Fatalf("%s: 200 %s", s, rec.Body)
			}
		case http.StatusBadRequest, http.StatusNotFound, http.StatusConflict, http.StatusRequestEntityTooLarge,
			http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect: // the mux cleans paths
		default:
			t.Fatalf("%s: %d %s", s, rec.Code, rec.Body)
		}
	})
}
