package main

import (
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/gridlake/gridlake/auth"
)

// tokenClient is an HTTP client that sends token (none when empty).
func tokenClient(token string, timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: bearerTransport{token: token}}
}

type bearerTransport struct{ token string }

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if b.token != "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+b.token)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// getStatus GETs url with token and returns the status code.
func getStatus(t *testing.T, token, url string) int {
	t.Helper()
	resp, err := tokenClient(token, 30*time.Second).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// testUsersFile writes a users file as `gridlake auth` would: a token per
// role, named after it, and the user vera (viewer, password
// "vera-password"). It returns the file and the tokens.
func testUsersFile(t *testing.T) (string, map[auth.Role]string) {
	t.Helper()
	var f auth.File
	tokens := map[auth.Role]string{}
	for _, r := range []auth.Role{auth.Viewer, auth.Analyst, auth.Engineer, auth.Admin} {
		tok, err := auth.NewToken(r.String())
		if err != nil {
			t.Fatal(err)
		}
		e, err := auth.NewEntry(r.String(), r, tok, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		f.Put("token", e)
		tokens[r] = tok
	}
	e, err := auth.NewEntry("vera", auth.Viewer, "vera-password", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	f.Put("user", e)
	path := filepath.Join(t.TempDir(), "users.yaml")
	if err := auth.WriteFile(path, f); err != nil {
		t.Fatal(err)
	}
	return path, tokens
}
