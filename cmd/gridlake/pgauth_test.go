package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gridlake/gridlake/auth"
	"github.com/gridlake/gridlake/config"
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
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	writePEM := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	now := time.Now()
	caKey, srvKey := newKey(), newKey()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gridlake test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srv := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	srvDER, err := x509.CreateCertificate(rand.Reader, srv, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM("pg-ca.pem", "CERTIFICATE", caDER), writePEM("pg-server.pem", "CERTIFICATE", srvDER), writePEM("pg-server.key", "PRIVATE KEY", keyDER)
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
