package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gridlake/gridlake/auth"
	"github.com/gridlake/gridlake/config"
	"github.com/gridlake/gridlake/internal/testca"
	"github.com/gridlake/gridlake/internal/testenv"
	"github.com/gridlake/gridlake/jobs"
)

// TestAuth_EachRoleAgainstEachRouteClassOnUp runs `gridlake up` with a
// users file on a non-loopback address (allowed: users are configured)
// and asks every route class as every role: 401 without a token, 403
// below the route's role, 2xx at or above it. A job triggered by the
// engineer's token records token:engineer in its run history.
func TestAuth_EachRoleAgainstEachRouteClassOnUp(t *testing.T) {
	users, tokens := testUsersFile(t)
	u := startUp(t, "--auth-users-file", users, "--http-addr", "0.0.0.0:0", "--jobs-enabled=false")
	if !strings.Contains(u.stdout.String(), "users and tokens come from the users file "+users) {
		t.Fatalf("the banner does not say where users come from:\n%s", u.stdout.String())
	}
	_, port, _ := net.SplitHostPort(u.http)
	base := "http://127.0.0.1:" + port
	routes := []struct {
		method, path, body string
		need               auth.Role
	}{
		{"GET", "/v1/status", "", auth.Viewer},
		{"POST", "/v1/sql", `{"sql":"SELECT 1 AS one"}`, auth.Analyst},
		{"POST", "/v1/jobs/compact/run", "", auth.Engineer},
		{"GET", "/metrics", "", auth.Admin},
		{"GET", "/debug/pprof/", "", auth.Admin},
	}
	do := func(token, method, path, body string) (int, string, http.Header) {
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := tokenClient(token, 30*time.Second).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	for _, rt := range routes {
		code, body, hdr := do("", rt.method, rt.path, rt.body)
		if code != http.StatusUnauthorized || hdr.Get("WWW-Authenticate") != `Bearer realm="gridlake"` || !strings.Contains(body, "gridlake auth add-token") {
			t.Errorf("%s %s without a token: %d %s, want 401 saying how to get one", rt.method, rt.path, code, body)
		}
		for _, r := range []auth.Role{auth.Viewer, auth.Analyst, auth.Engineer, auth.Admin} {
			code, body, _ := do(tokens[r], rt.method, rt.path, rt.body)
			if r < rt.need {
				if code != http.StatusForbidden || !strings.Contains(body, "needs role "+rt.need.String()) || !strings.Contains(body, "token:"+r.String()+" has role "+r.String()) {
					t.Errorf("%s %s as %s: %d %s, want 403 naming the roles", rt.method, rt.path, r, code, body)
				}
			} else if code < 200 || code > 299 {
				t.Errorf("%s %s as %s: %d %s, want 2xx", rt.method, rt.path, r, code, body)
			}
		}
	}
	if code, _, _ := do("", "GET", "/healthz", ""); code != http.StatusOK {
		t.Errorf("/healthz without a token: %d, want 200", code)
	}
	// Who asked is in the run history.
	testenv.WaitUntil(t, 60*time.Second, "the engineer's compact run in the history", func() bool {
		var h struct{ Runs []jobs.Run }
		_, body, _ := do(tokens[auth.Viewer], "GET", "/v1/jobs/compact/runs", "")
		if json.Unmarshal([]byte(body), &h) != nil {
			return false
		}
		for _, r := range h.Runs {
			if r.By == "token:engineer" && r.Trigger == "manual" {
				return true
			}
		}
		return false
	}, u.stderr)
}

// TestUp_NonLoopbackWithoutUsersRefused: without configured users, `gridlake
// up` and `gridlake jobs scheduler` refuse a non-loopback address before
// starting anything.
func TestUp_NonLoopbackWithoutUsersRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, args := range [][]string{
		{"up", "--kafka-embedded-port", "0", "--s3-embedded-port", "0", "--serve-pg-addr", "127.0.0.1:0", "--serve-flight-addr", "127.0.0.1:0"},
		// Nothing listens on this S3 endpoint: the refusal comes first.
		{"jobs", "scheduler", "--s3-endpoint", "127.0.0.1:1", "--kafka-brokers", "127.0.0.1:1"},
	} {
		var stdout, stderr syncBuffer
		e := &env{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
		err := run(ctx, e, append(args, "--data-dir", t.TempDir(), "--http-addr", "0.0.0.0:0"))
		if err == nil || !strings.Contains(err.Error(), "refusing to listen on http.addr=0.0.0.0:0 without configured users") ||
			!strings.Contains(err.Error(), "gridlake auth add-token") {
			t.Fatalf("%s on 0.0.0.0 without users: %v, want the CheckBind refusal", args[0], err)
		}
	}
}

// TestHTTPS_ListenerServesTLSWithTheConfiguredCertificate: with
// http.tls_cert_file and http.tls_key_file the listener speaks TLS 1.2+
// only, with that certificate (verified against the test's own CA), the
// base URL says https, and the token still decides access.
func TestHTTPS_ListenerServesTLSWithTheConfiguredCertificate(t *testing.T) {
	dir := t.TempDir()
	caPEM, certFile, keyFile := testCertificate(t, dir)
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.HTTP.TLSCertFile, cfg.HTTP.TLSKeyFile = certFile, keyFile
	log := slog.New(slog.DiscardHandler)
	acc, err := openAccess(&cfg, map[string]string{"http.addr": cfg.HTTP.Addr})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "{}") })
	hl, err := listenHTTP(&env{}, cfg.HTTP, mux, acc, log)
	if err != nil {
		t.Fatal(err)
	}
	go hl.serve()
	defer hl.shutdown()
	base := hl.base
	if !strings.HasPrefix(base, "https://127.0.0.1:") {
		t.Fatalf("base URL %s, want https://", base)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	cl := func(maxVersion uint16) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: bearerTransportTLS(acc.demoToken,
			&tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MaxVersion: maxVersion})}
	}
	resp, err := cl(0).Get(base + "/v1/status")
	if err != nil {
		t.Fatalf("HTTPS with the test CA: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
		t.Fatalf("HTTPS /v1/status: %d %+v, want 200 over TLS 1.2+", resp.StatusCode, resp.TLS)
	}
	if _, err := cl(tls.VersionTLS11).Get(base + "/v1/status"); err == nil {
		t.Fatal("a TLS 1.1 client was served; want TLS 1.2 at least")
	}
	if resp, err := http.Get("http://" + strings.TrimPrefix(base, "https://") + "/v1/status"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP was served on the TLS listener")
		}
	}
	// gridlake sql's client trusts http.tls_cert_file and sends the demo
	// token of the data dir.
	bound := cfg
	bound.HTTP.Addr = strings.TrimPrefix(base, "https://")
	ac, err := newAPIClient(&env{getenv: func(string) string { return "" }}, &bound)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", ac.base+"/v1/status", nil)
	resp, err = ac.do(req)
	if err != nil {
		t.Fatalf("the in-repo client over HTTPS: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the in-repo client over HTTPS: %d, want 200 with the demo token", resp.StatusCode)
	}
}

func bearerTransportTLS(token string, c *tls.Config) http.RoundTripper {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = c
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+token)
		return tr.RoundTrip(r)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// testCertificate makes a CA and a server certificate for 127.0.0.1
// signed by it, writes the server's chain and key into dir, and returns
// the CA's PEM.
func testCertificate(t *testing.T, dir string) (caPEM []byte, certFile, keyFile string) {
	f := testca.Write(t, dir)
	return f.CAPEM, f.Cert, f.Key
}
