package main

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gridlake/gridlake/auth"
	"github.com/gridlake/gridlake/config"
	"github.com/gridlake/gridlake/internal/testca"
)

// pgDemoLogin is how psql signs in to a process started without users:
// the demo token's name and the token, kept in <data_dir>/auth/demo-token.
func pgDemoLogin(t testing.TB, dataDir string) (user, password string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "auth", "demo-token"))
	if err != nil {
		t.Fatalf("the demo token: %v", err)
	}
	return auth.DemoName, strings.TrimSpace(string(b))
}

// pgDemoURL is a pgx connection string signing in with the demo token;
// query adds to it (sslmode=disable when empty).
func pgDemoURL(t testing.TB, dataDir, addr string, query ...string) string {
	user, password := pgDemoLogin(t, dataDir)
	if len(query) == 0 {
		query = []string{"sslmode=disable"}
	}
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, password), Host: addr, Path: "/gridlake", RawQuery: strings.Join(query, "&")}
	return u.String()
}

// pgTestCA writes a CA, and a server certificate and key it signs for
// 127.0.0.1 and localhost, as PEM files in dir.
func pgTestCA(t testing.TB, dir string) (caFile, certFile, keyFile string) {
	f := testca.Write(t, dir)
	return f.CA, f.Cert, f.Key
}

func TestLoadPGTLS_BadFilesNameTheSetting(t *testing.T) {
	dir := t.TempDir()
	_, cert, key := pgTestCA(t, dir)
	cfg := config.Default()
	if got, err := loadPGTLS(&cfg); got != nil || err != nil {
		t.Errorf("without files: %v %v, want no TLS", got, err)
	}
	cfg.Serve.PGTLSCertFile, cfg.Serve.PGTLSKeyFile = cert, key
	got, err := loadPGTLS(&cfg)
	if err != nil || len(got.Certificates) != 1 {
		t.Fatalf("good files: %v", err)
	}
	for name, files := range map[string][2]string{
		"missing key":     {cert, filepath.Join(dir, "nope.key")},
		"key not a key":   {cert, cert},
		"swapped":         {key, cert},
		"missing cert":    {filepath.Join(dir, "nope.pem"), key},
		"empty cert file": {writeEmpty(t, dir), key},
	} {
		cfg.Serve.PGTLSCertFile, cfg.Serve.PGTLSKeyFile = files[0], files[1]
		_, err := loadPGTLS(&cfg)
		if err == nil || !strings.Contains(err.Error(), "serve.pg_tls_cert_file "+files[0]) || !strings.Contains(err.Error(), "serve.pg_tls_key_file "+files[1]) {
			t.Errorf("%s: %v, want an error naming both settings and files", name, err)
		}
	}
}

func writeEmpty(t testing.TB, dir string) string {
	path := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
