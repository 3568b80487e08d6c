package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gridlake/gridlake/config"
)

// TestHealth_ExitsByReadiness: gridlake health succeeds on a 200 and fails
// on anything else or no answer, and without --url finds the process at
// the port of http.addr on loopback.
func TestHealth_ExitsByReadiness(t *testing.T) {
	code := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(code)
		w.Write([]byte(`{"kafka":"ok"}`))
	}))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	health := func(getenv map[string]string, args ...string) (string, error) {
		var out, errs syncBuffer
		e := &env{stdout: &out, stderr: &errs, getenv: func(k string) string { return getenv[k] }}
		err := run(context.Background(), e, append([]string{"health"}, args...))
		return out.String(), err
	}
	if out, err := health(nil, "--url", srv.URL+"/readyz"); err != nil || !strings.Contains(out, `"kafka":"ok"`) {
		t.Fatalf("ready: %v %q", err, out)
	}
	if _, err := health(map[string]string{"GRIDLAKE_HTTP_ADDR": "0.0.0.0:" + port}); err != nil {
		t.Fatalf("--url from GRIDLAKE_HTTP_ADDR 0.0.0.0:%s: %v", port, err)
	}
	code = http.StatusServiceUnavailable
	if _, err := health(nil, "--url", srv.URL+"/readyz"); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("not ready: %v, want an error saying 503", err)
	}
	srv.Close()
	if _, err := health(nil, "--url", srv.URL+"/readyz"); err == nil {
		t.Fatal("no answer: want an error")
	}
	for addr, want := range map[string]string{":8080": "127.0.0.1:8080", "0.0.0.0:8082": "127.0.0.1:8082",
		"[::]:8080": "[::1]:8080", "127.0.0.2:9": "127.0.0.2:9"} {
		if got := loopbackOf(config.HTTP{Addr: addr}); got != want {
			t.Errorf("loopbackOf(%s) = %s, want %s", addr, got, want)
		}
	}
}
