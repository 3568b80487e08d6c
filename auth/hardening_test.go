package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The guard classifies the route the mux serves: "%2F" inside a segment
// must not turn an admin route into a viewer one.
func TestProtect_EncodedPathsClassifiedAsTheMuxRoutesThem(t *testing.T) {
	dir, tokens := testUsers(t)
	srv, _ := stubServer(t, dir)
	for _, p := range []string{"/debug/pprof/..%2F..%2Fv1%2Fx", "/debug/pprof/%2e%2e/%2e%2e/v1/x"} {
		resp, body := call(t, http.DefaultClient, "GET", srv.URL+p, tokens[Viewer])
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("viewer GET %s: %d %s, want 403 (the mux serves it under /debug/pprof/)", p, resp.StatusCode, body)
		}
	}
	if resp, _ := call(t, http.DefaultClient, "CONNECT", srv.URL+"/v1/status", tokens[Admin]); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("CONNECT: %d, want 405", resp.StatusCode)
	}
	resp, _ := call(t, http.DefaultClient, "GET", srv.URL+"/v1/status", tokens[Viewer])
	if resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Error("answers must not be framable (X-Frame-Options: DENY)")
	}
}

// A cross-site page must not ride on the session cookie; programs with a
// Bearer token are not browsers and are not checked.
func TestProtect_CrossOriginCookieRequestsRefused(t *testing.T) {
	dir, tokens := testUsers(t)
	srv, _ := stubServer(t, dir)
	jar, _ := cookiejar.New(nil)
	cl := &http.Client{Jar: jar}
	resp, err := cl.PostForm(srv.URL+LoginPath, url.Values{"secret": {tokens[Analyst]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if r, body := call(t, cl, "POST", srv.URL+"/v1/sql", "", "Sec-Fetch-Site", "cross-site"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site POST with the cookie: %d %s, want 403", r.StatusCode, body)
	}
	if r, _ := call(t, cl, "POST", srv.URL+"/v1/sql", "", "Sec-Fetch-Site", "same-origin"); r.StatusCode != http.StatusOK {
		t.Fatalf("same-origin POST with the cookie: %d, want 200", r.StatusCode)
	}
	if r, _ := call(t, http.DefaultClient, "POST", srv.URL+"/v1/sql", tokens[Analyst], "Sec-Fetch-Site", "cross-site"); r.StatusCode != http.StatusOK {
		t.Fatalf("Bearer POST: %d, want 200", r.StatusCode)
	}
	if r, _ := call(t, http.DefaultClient, "POST", srv.URL+LoginPath, "", "Sec-Fetch-Site", "cross-site"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site sign-in: %d, want 403", r.StatusCode)
	}
}

// Guessing costs the guesser: past the failure budget an address gets 429
// without any hash being computed.
func TestProtect_FailureBudgetPerAddress(t *testing.T) {
	dir, tokens := testUsers(t)
	srv, _ := stubServer(t, dir)
	bad := tokens[Viewer][:len(tokens[Viewer])-4] + "aaaa"
	codes := map[int]int{}
	for range 22 {
		r, _ := call(t, http.DefaultClient, "GET", srv.URL+"/v1/status", bad)
		codes[r.StatusCode]++
	}
	if codes[http.StatusUnauthorized] != 20 || codes[http.StatusTooManyRequests] != 2 {
		t.Fatalf("22 bad tokens: %v, want 20 × 401 then 429", codes)
	}
	if r, _ := call(t, http.DefaultClient, "GET", srv.URL+"/healthz", ""); r.StatusCode != http.StatusOK {
		t.Fatalf("public routes stay open: %d", r.StatusCode)
	}
}

// Replacing a password (or token) ends the sessions signed in with it.
func TestSessions_EndWhenTheSecretIsReplaced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.yaml")
	e, _ := NewEntry("vera", Viewer, "first-password", time.Now())
	if err := WriteFile(path, File{Users: []Entry{e}}); err != nil {
		t.Fatal(err)
	}
	d, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := NewSessions(nil, time.Hour, d, nil)
	v, _, err := s.Issue(Principal{Name: "vera", Role: Viewer, Kind: "user"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Check(v); err != nil {
		t.Fatal(err)
	}
	e2, _ := NewEntry("vera", Viewer, "second-password", time.Now())
	if err := WriteFile(path, File{Users: []Entry{e2}}); err != nil {
		t.Fatal(err)
	}
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Check(v); err == nil {
		t.Fatal("a session outlived the replacement of its password")
	}
}

// A flood waits a bounded time for a check slot, then hears "busy".
func TestDirectory_BusyInsteadOfQueueingForever(t *testing.T) {
	dir, tokens := testUsers(t)
	dir.maxWait = 20 * time.Millisecond
	for range cap(dir.sem) {
		dir.sem <- struct{}{}
	}
	if _, err := dir.Token(context.Background(), tokens[Viewer]); !errors.Is(err, ErrBusy) {
		t.Fatalf("all slots held: %v, want ErrBusy", err)
	}
}

// gridlake auth keeps the mode an operator gave the file, and a rewrite
// (a rename: new inode) is noticed even at the same size and time.
func TestWriteFile_KeepsModeAndReloadSeesRename(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.yaml")
	a, _ := NewEntry("aaaa", Viewer, "password-one", time.Unix(0, 0))
	if err := WriteFile(path, File{Tokens: []Entry{a}}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	b, _ := NewEntry("bbbb", Viewer, "password-two", time.Unix(0, 0))
	if err := WriteFile(path, File{Tokens: []Entry{b}}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	st2, _ := os.Stat(path)
	if st2.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v after gridlake auth, want 0644 kept", st2.Mode().Perm())
	}
	if st2.Size() != st.Size() {
		t.Fatalf("sizes differ (%d, %d): the entries must make same-size files", st.Size(), st2.Size())
	}
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Lookup("bbbb"); !ok {
		t.Fatal("a same-size, same-time rewrite was not reloaded")
	}
}
