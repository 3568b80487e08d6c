package httpx

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestWriteJSON_BodiesAndStatus pins the bytes every API answers with:
// one line of compact JSON, or indented by two spaces exactly as the
// indenting json.Encoder /v1/jobs used, and a 500 naming the cause for a
// value JSON cannot carry.
func TestWriteJSON_BodiesAndStatus(t *testing.T) {
	values := []any{
		map[string]any{"job": "compact", "number": 7, "runs": "/v1/jobs/compact/runs"},
		map[string]string{"error": `a <b> & "c"`},
		[]int{},
		map[string]any{"nested": []map[string]int{{"a": 1}, {"b": 2}}},
	}
	for _, v := range values {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		WriteIndentedJSON(rec, http.StatusAccepted, v)
		if rec.Code != http.StatusAccepted || rec.Body.String() != want.String() || rec.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("indented %v: %d %q, want 202 %q", v, rec.Code, rec.Body.String(), want.String())
		}
		compact, _ := json.Marshal(v)
		rec = httptest.NewRecorder()
		WriteJSON(rec, http.StatusOK, v)
		if rec.Code != http.StatusOK || rec.Body.String() != string(compact)+"\n" {
			t.Fatalf("compact %v: %d %q, want 200 %q", v, rec.Code, rec.Body.String(), compact)
		}
	}
	rec := httptest.NewRecorder()
	Error(rec, http.StatusNotFound, "no such job")
	if rec.Code != http.StatusNotFound || rec.Body.String() != `{"error":"no such job"}`+"\n" {
		t.Fatalf("Error: %d %q", rec.Code, rec.Body.String())
	}
	for _, bad := range []any{math.NaN(), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)} {
		rec := httptest.NewRecorder()
		WriteIndentedJSON(rec, http.StatusOK, map[string]any{"v": bad})
		if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), `"error":"encode the answer: `) {
			t.Fatalf("%v: %d %q, want a 500 naming the encoding failure", bad, rec.Code, rec.Body.String())
		}
	}
}
