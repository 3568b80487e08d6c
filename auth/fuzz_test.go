package auth

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzAuthInputs drives every parser of outside bytes in auth: the
// Authorization header and token, the session cookie, the route
// classifier and the users file. None may panic; a forged cookie or token
// must never authenticate.
func FuzzAuthInputs(f *testing.F) {
	f.Add("Bearer gl_viewer.abc", "eyJ9.sig", "/v1/status", "GET", "users: []\n")
	f.Add("bearer  gl_a.b", "a.b.c", "/debug/pprof/..%2F..%2Fv1", "POST", "tokens:\n  - name: x\n    role: admin\n")
	f.Add("Basic Zm9vOmJhcg==", strings.Repeat("A", 600), "//v1//sql/", "CONNECT", "{")
	now := time.Now()
	e, _ := NewEntry("vera", Viewer, "vera-password", now)
	path := filepath.Join(f.TempDir(), "users.yaml")
	if err := WriteFile(path, File{Users: []Entry{e}}); err != nil {
		f.Fatal(err)
	}
	dir, err := Open(path, Options{})
	if err != nil {
		f.Fatal(err)
	}
	sessions, _ := NewSessions([]byte("0123456789abcdef0123456789abcdef"), time.Hour, dir, nil)
	f.Fuzz(func(t *testing.T, header, cookie, urlPath, method, users string) {
		_ = RouteRole(method, urlPath)
		if _, err := sessions.Check(cookie); err == nil {
			t.Fatalf("a fuzzed cookie %q authenticated", cookie)
		}
		sessions.Revoke(cookie)
		if name, err := TokenName(header); err == nil && !ValidName(name) {
			t.Fatalf("TokenName(%q) gave an invalid name %q", header, name)
		}
		// A token check only hashes for a known name; "vera" is a user,
		// not a token, so no fuzzed header may authenticate.
		if _, err := dir.Token(context.Background(), strings.TrimPrefix(header, "Bearer ")); err == nil {
			t.Fatalf("fuzzed token %q authenticated", header)
		}
		p := filepath.Join(t.TempDir(), "users.yaml")
		if len(users) < 1<<16 {
			_ = writeRaw(p, users)
			_, _ = ReadFile(p)
		}
		r, err := http.NewRequest(http.MethodGet, "http://x/", nil)
		if err == nil {
			r.Header.Set("Cookie", cookie)
			_, _ = r.Cookie(SessionCookie)
		}
	})
}
