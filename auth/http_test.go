package auth

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testUsers writes a users file with a token per role and the user alice
// (viewer, password "wonderland"), and returns its directory and tokens.
func testUsers(t *testing.T) (*Directory, map[Role]string) {
	t.Helper()
	now := time.Now()
	var f File
	tokens := map[Role]string{}
	for _, r := range []Role{Viewer, Analyst, Engineer, Admin} {
		tok, err := NewToken(r.String())
		if err != nil {
			t.Fatal(err)
		}
		e, err := NewEntry(r.String(), r, tok, now)
		if err != nil {
			t.Fatal(err)
		}
		f.Put("token", e)
		tokens[r] = tok
	}
	e, err := NewEntry("alice", Viewer, "wonderland", now)
	if err != nil {
		t.Fatal(err)
	}
	f.Put("user", e)
	path := filepath.Join(t.TempDir(), "users.yaml")
	if err := WriteFile(path, f); err != nil {
		t.Fatal(err)
	}
	dir, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return dir, tokens
}

// stubServer serves the route classes behind Protect: each route answers
// 200 with who called it.
func stubServer(t *testing.T, dir *Directory) (*httptest.Server, *Sessions) {
	t.Helper()
	s, err := NewSessions(nil, time.Hour, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	who := func(w http.ResponseWriter, r *http.Request) {
		p, _ := FromContext(r.Context())
		io.WriteString(w, p.String())
	}
	for _, route := range []string{"GET /healthz", "GET /{$}", "GET /v1/status", "POST /v1/sql", "POST /v1/jobs/{name}/run", "GET /metrics", "GET /debug/pprof/", "GET /speed/v1/status", "GET /speed/v1/source/{op}"} {
		mux.HandleFunc(route, who)
	}
	srv := httptest.NewServer(Protect(dir, s, mux))
	t.Cleanup(srv.Close)
	return srv, s
}

func call(t *testing.T, cl *http.Client, method, url, token string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestProtect_EachRoleAgainstEachRouteClass(t *testing.T) {
	dir, tokens := testUsers(t)
	srv, _ := stubServer(t, dir)
	routes := []struct {
		method, path string
		need         Role
	}{
		{"GET", "/v1/status", Viewer},
		{"GET", "/speed/v1/status", Viewer},
		// A speed process's whole state, for serving processes.
		{"GET", "/speed/v1/source/windows", Engineer},
		{"POST", "/v1/sql", Analyst},
		{"POST", "/v1/jobs/compact/run", Engineer},
		{"GET", "/metrics", Admin},
		{"GET", "/debug/pprof/", Admin},
	}
	cl := srv.Client()
	for _, rt := range routes {
		resp, body := call(t, cl, rt.method, srv.URL+rt.path, "")
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `Bearer realm="gridlake"` ||
			!strings.Contains(body, "Authorization: Bearer") || !strings.Contains(body, "gridlake auth add-token") {
			t.Errorf("%s %s without a token: %d %q %s, want 401 saying how to send a token", rt.method, rt.path, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
		}
		for _, r := range []Role{Viewer, Analyst, Engineer, Admin} {
			resp, body := call(t, cl, rt.method, srv.URL+rt.path, tokens[r])
			switch {
			case r < rt.need:
				var e struct{ Error string }
				_ = json.Unmarshal([]byte(body), &e)
				if resp.StatusCode != http.StatusForbidden || !strings.Contains(e.Error, "needs role "+rt.need.String()) || !strings.Contains(e.Error, "has role "+r.String()) {
					t.Errorf("%s %s as %s: %d %s, want 403 naming both roles", rt.method, rt.path, r, resp.StatusCode, body)
				}
			case resp.StatusCode != http.StatusOK || body != "token:"+r.String():
				t.Errorf("%s %s as %s: %d %q, want 200 from token:%s", rt.method, rt.path, r, resp.StatusCode, body, r)
			}
		}
	}
	// Public routes need nothing; a wrong token is refused; an unknown
	// route is admin-only.
	if resp, _ := call(t, cl, "GET", srv.URL+"/healthz", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz: %d, want 200 without a token", resp.StatusCode)
	}
	if resp, body := call(t, cl, "GET", srv.URL+"/v1/status", tokens[Admin]+"x"); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "invalid credentials") {
		t.Errorf("wrong token: %d %s, want 401 invalid credentials", resp.StatusCode, body)
	}
	if resp, _ := call(t, cl, "GET", srv.URL+"/whatever", tokens[Engineer]); resp.StatusCode != http.StatusForbidden {
		t.Errorf("unclassified route as engineer: %d, want 403", resp.StatusCode)
	}
	if resp, body := call(t, cl, "GET", srv.URL+"/v1/whoami", tokens[Analyst]); resp.StatusCode != http.StatusOK ||
		!strings.Contains(body, `"name":"analyst"`) || !strings.Contains(body, `"role":"analyst"`) || !strings.Contains(body, `"kind":"token"`) {
		t.Errorf("/v1/whoami: %d %s", resp.StatusCode, body)
	}
}

func TestRouteRole_UncleanPathsAreClassifiedClean(t *testing.T) {
	for _, c := range []struct {
		method, path string
		want         Role
	}{
		{"GET", "/v1/../metrics", Admin},
		{"GET", "/v1/../debug/pprof/heap", Admin},
		{"GET", "//metrics", Admin},
		{"GET", "/healthz", None},
		{"HEAD", "/v1/status", Viewer},
		{"DELETE", "/v1/jobs/x", Engineer},
		{"POST", "/speed/v1/status", Admin},
		{"GET", "/speed/v1/x/../source/fleet", Engineer},
	} {
		if got := RouteRole(c.method, c.path); got != c.want {
			t.Errorf("RouteRole(%s %s) = %s, want %s", c.method, c.path, got, c.want)
		}
	}
}

func TestSignIn_CookieWorksUntilSignOut(t *testing.T) {
	dir, tokens := testUsers(t)
	srv, _ := stubServer(t, dir)
	jar, _ := cookiejar.New(nil)
	cl := &http.Client{Jar: jar}

	// A browser without a session is sent to the sign-in form.
	resp, body := call(t, cl, "GET", srv.URL+"/", "", "Accept", "text/html")
	if resp.Request.URL.Path != LoginPath || !strings.Contains(body, `<form id="signin"`) {
		t.Fatalf("dashboard without a session: ended at %s, want the sign-in form", resp.Request.URL)
	}
	// A wrong password and an unknown name read the same.
	var fails []string
	for _, form := range []url.Values{{"name": {"alice"}, "secret": {"wrong"}}, {"name": {"nobody"}, "secret": {"wrong"}}} {
		resp, err := cl.PostForm(srv.URL+LoginPath, form)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b), "Wrong name or password") {
			t.Fatalf("failed sign-in: %d %s", resp.StatusCode, b)
		}
		fails = append(fails, strings.ReplaceAll(string(b), form.Get("name"), "NAME"))
	}
	if fails[0] != fails[1] {
		t.Error("a failed sign-in must not tell whether the name exists")
	}

	resp, err := cl.PostForm(srv.URL+LoginPath, url.Values{"name": {"alice"}, "secret": {"wonderland"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var cookie *http.Cookie
	for _, c := range resp.Request.Response.Cookies() {
		if c.Name == SessionCookie {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/" || cookie.Expires.IsZero() || cookie.Secure {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/, an expiry, not Secure on plain HTTP", cookie)
	}
	if resp, body := call(t, cl, "GET", srv.URL+"/v1/status", ""); resp.StatusCode != http.StatusOK || body != "user:alice" {
		t.Fatalf("with the session: %d %q, want 200 as user:alice", resp.StatusCode, body)
	}
	if resp, _ := call(t, cl, "POST", srv.URL+"/v1/sql", ""); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("viewer session on POST /v1/sql: %d, want 403", resp.StatusCode)
	}
	// Sign out: the same cookie, replayed, is refused.
	if resp, _ := call(t, cl, "POST", srv.URL+LogoutPath, ""); resp.Request.URL.Path != LoginPath {
		t.Fatalf("sign-out ended at %s, want the sign-in form", resp.Request.URL)
	}
	resp, body = call(t, http.DefaultClient, "GET", srv.URL+"/v1/status", "", "Cookie", SessionCookie+"="+cookie.Value)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "sign in again") {
		t.Fatalf("signed-out cookie: %d %s, want 401", resp.StatusCode, body)
	}
	// A token signs in on the form too, with its name or alone.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noFollow.PostForm(srv.URL+LoginPath, url.Values{"secret": {tokens[Engineer]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" || len(resp.Cookies()) == 0 {
		t.Fatalf("token sign-in: %d to %q, want 303 to the dashboard with a session cookie", resp.StatusCode, resp.Header.Get("Location"))
	}
}
