package pgwire

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gridlake/gridlake/internal/testca"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// testCA creates a CA and a server certificate it signs for 127.0.0.1,
// ::1 and localhost, and returns the CA file and the server's TLS config.
func testCA(t *testing.T) (caFile string, cfg *tls.Config) {
	t.Helper()
	f := testca.Write(t, t.TempDir())
	return f.CA, f.ServerConfig(t)
}

// psql runs psql with a libpq connection string and the password in
// PGPASSWORD, and returns what it printed.
func psql(t *testing.T, conninfo, password string, commands ...string) (string, error) {
	t.Helper()
	bin, err := exec.LookPath("psql")
	if err != nil {
		t.Fatal("psql is missing: make deps installs postgresql-client")
	}
	args := []string{conninfo, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"}
	for _, c := range commands {
		args = append(args, "-c", c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+password, "PGCONNECT_TIMEOUT=5", "PGSSLMODE=", "PGSSLROOTCERT=")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestTLS_PsqlSCRAMVerifyFull(t *testing.T) {
	caFile, cfg := testCA(t)
	dir, creds := testDirectory(t)
	var logs syncBuffer
	addr := serve(t, &Server{Q: &stubQ{}, Auth: dir, TLS: cfg, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	host, port, _ := net.SplitHostPort(addr)
	conninfo := func(user, sslmode, root string) string {
		return "host=" + host + " port=" + port + " user=" + user + " dbname=gridlake sslmode=" + sslmode + " sslrootcert=" + root
	}

	// psql checks the certificate against the test CA and signs in with SCRAM.
	out, err := psql(t, conninfo("analyst", "verify-full", caFile), analystPassword, "SELECT 1", `\conninfo`)
	if err != nil || !strings.Contains(out, "0|SELECT 1") || !strings.Contains(out, "SSL connection (protocol: TLSv1.3") {
		t.Fatalf("psql over TLS: %v\n%s", err, out)
	}
	t.Logf("psql printed:\n%s", out)
	if !strings.Contains(logs.String(), "user=user:analyst") || !strings.Contains(logs.String(), "tls=true") {
		t.Errorf("the server did not log an encrypted session of analyst:\n%s", logs.String())
	}
	// libpq binds the channel when offered (SCRAM-SHA-256-PLUS); it can
	// insist on it.
	if out, err := psql(t, conninfo("analyst", "verify-full", caFile)+" channel_binding=require", analystPassword, "SELECT 1"); err != nil || !strings.Contains(out, "0|SELECT 1") {
		t.Errorf("psql with channel_binding=require: %v\n%s", err, out)
	}
	// A wrong password over TLS; a certificate from another CA.
	if out, err := psql(t, conninfo("analyst", "verify-full", caFile), "guess", "SELECT 1"); err == nil || !strings.Contains(out, `password authentication failed for user "analyst"`) {
		t.Errorf("psql with a wrong password: %v\n%s", err, out)
	}
	otherCA, _ := testCA(t)
	if out, err := psql(t, conninfo("analyst", "verify-full", otherCA), analystPassword, "SELECT 1"); err == nil || !strings.Contains(out, "certificate verify failed") {
		t.Errorf("psql trusting another CA: %v\n%s", err, out)
	}
	// pgx with a token, verifying the certificate too.
	ctx := context.Background()
	c, err := pgx.Connect(ctx, pgURL("grafana", creds.grafana, addr, "sslmode=verify-full&sslrootcert="+caFile))
	if err != nil {
		t.Fatalf("pgx over TLS: %v", err)
	}
	defer c.Close(ctx)
	if _, ok := c.PgConn().Conn().(*tls.Conn); !ok {
		t.Errorf("pgx connection is a %T, want TLS", c.PgConn().Conn())
	}
	// Several queries: the watcher that reads ahead while a query runs
	// is interrupted by read deadlines, which TLS must survive.
	for i := 0; i < 3; i++ {
		rows, _ := c.Query(ctx, "rows 2000")
		n := 0
		for rows.Next() {
			n++
		}
		if rows.Close(); rows.Err() != nil || n != 2000 {
			t.Fatalf("pgx query %d over TLS: %d rows, %v", i, n, rows.Err())
		}
	}
	// Clients may still connect in the clear (README: Deploy).
	if out, err := psql(t, conninfo("analyst", "disable", caFile), analystPassword, "SELECT 1"); err != nil || !strings.Contains(out, "0|SELECT 1") {
		t.Errorf("psql in the clear: %v\n%s", err, out)
	}

	t.Run("require_without_a_certificate", func(t *testing.T) {
		addr := serve(t, &Server{Q: &stubQ{}, Auth: dir})
		host, port, _ := net.SplitHostPort(addr)
		out, err := psql(t, "host="+host+" port="+port+" user=analyst dbname=gridlake sslmode=require", analystPassword, "SELECT 1")
		if err == nil || !strings.Contains(out, "server does not support SSL, but SSL was required") {
			t.Errorf("psql sslmode=require against a server without a certificate: %v\n%s", err, out)
		}
		if _, err := pgx.Connect(ctx, pgURL("analyst", analystPassword, addr, "sslmode=require")); err == nil || !strings.Contains(err.Error(), "server refused TLS connection") {
			t.Errorf("pgx sslmode=require against a server without a certificate: %v", err)
		}
	})
}

func TestTLS_UnencryptedDataAfterSSLRequestRefused(t *testing.T) {
	_, cfg := testCA(t)
	addr := serve(t, &Server{Q: &stubQ{}, TLS: cfg})
	c := dial(t, addr)
	// The startup packet rides along with the SSLRequest, before any
	// handshake: it must not be taken as if it came encrypted.
	c.send(&pgproto3.SSLRequest{}, startupMsg())
	if got := c.until(); len(got) != 2 || got[0] != "E:08P01:received unencrypted data after SSL request" || got[1] != "EOF" {
		t.Errorf("answered %v", got)
	}
	// A GSSENCRequest is refused, then SSL goes ahead.
	c = dial(t, addr)
	c.send(&pgproto3.GSSEncRequest{})
	buf := make([]byte, 1)
	if _, err := c.nc.Read(buf); err != nil || buf[0] != 'N' {
		t.Fatalf("GSSENCRequest answered %q %v", buf, err)
	}
	c.send(&pgproto3.SSLRequest{})
	if _, err := c.nc.Read(buf); err != nil || buf[0] != 'S' {
		t.Fatalf("SSLRequest answered %q %v", buf, err)
	}
	tc := tls.Client(c.nc, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	if v := tc.ConnectionState().Version; v < tls.VersionTLS12 {
		t.Errorf("TLS version %x", v)
	}
	c.nc, c.fe = tc, pgproto3.NewFrontend(tc, tc)
	if got := c.signIn("analyst", analystPassword); len(got) < 2 || got[1] != "R:ok" {
		t.Errorf("sign-in over TLS after GSSENCRequest: %v", got)
	}
	// TLS 1.1 is refused.
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	old := &client{t: t, nc: nc, fe: pgproto3.NewFrontend(nc, nc)}
	old.send(&pgproto3.SSLRequest{})
	nc.Read(buf)
	if err := tls.Client(nc, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11}).Handshake(); err == nil {
		t.Error("a TLS 1.1 handshake succeeded")
	}
}

// tlsClient connects, asks for SSL and finishes the handshake.
func tlsClient(t *testing.T, addr string) *client {
	t.Helper()
	c := dial(t, addr)
	c.send(&pgproto3.SSLRequest{})
	buf := make([]byte, 1)
	if _, err := c.nc.Read(buf); err != nil || buf[0] != 'S' {
		t.Fatalf("SSLRequest answered %q %v", buf, err)
	}
	tc := tls.Client(c.nc, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c.nc, c.fe = tc, pgproto3.NewFrontend(tc, tc)
	return c
}

func TestTLS_ChannelBinding(t *testing.T) {
	_, cfg := testCA(t)
	addr := serve(t, &Server{Q: &stubQ{}, TLS: cfg})
	// tls-server-end-point of an ECDSA-SHA256 certificate: its SHA-256.
	endpoint := sha256.Sum256(cfg.Certificates[0].Certificate[0])
	const plus, gs2 = "SCRAM-SHA-256-PLUS", "p=tls-server-end-point,,"
	if got := tlsClient(t, addr).signInWith("analyst", analystPassword, plus, gs2, endpoint[:]); len(got) < 2 || got[1] != "R:ok" {
		t.Errorf("SCRAM-SHA-256-PLUS with the certificate's hash: %v", got)
	}
	// The binding of another certificate: a man in the middle relaying.
	other := sha256.Sum256([]byte("another certificate"))
	for _, tc := range []struct {
		name, mech, gs2 string
		cbind           []byte
		want            string
	}{
		{"other certificate", plus, gs2, other[:], "E:08P01:SCRAM channel binding check failed"},
		{"no binding data", plus, gs2, nil, "E:08P01:SCRAM channel binding check failed"},
		{"plus without binding", plus, "n,,", nil, "E:08P01:SCRAM-SHA-256-PLUS needs channel binding tls-server-end-point"},
		{"other binding type", plus, "p=tls-unique,,", endpoint[:], "E:08P01:SCRAM-SHA-256-PLUS needs channel binding tls-server-end-point"},
		// "y": the client could bind but was told the server cannot.
		{"downgrade", "SCRAM-SHA-256", "y,,", nil, "E:08P01:SCRAM channel binding negotiation error"},
	} {
		if got := tlsClient(t, addr).signInWith("analyst", analystPassword, tc.mech, tc.gs2, tc.cbind); len(got) != 2 || !strings.HasPrefix(got[0], tc.want) {
			t.Errorf("%s: %v, want %s", tc.name, got, tc.want)
		}
	}
	// In the clear "y" is right: nothing to bind to.
	if got := dial(t, addr).signInWith("analyst", analystPassword, "SCRAM-SHA-256", "y,,", nil); len(got) < 2 || got[1] != "R:ok" {
		t.Errorf("y,, in the clear: %v", got)
	}
}

// serve.pg_tls_required: a client that does not upgrade is refused before
// any credential is exchanged; one over TLS signs in as usual.
func TestTLS_RequiredRefusesPlainClients(t *testing.T) {
	caFile, cfg := testCA(t)
	dir, _ := testDirectory(t)
	addr := serve(t, &Server{Q: &stubQ{}, Auth: dir, TLS: cfg, RequireTLS: true, Log: slog.New(slog.DiscardHandler)})
	host, port, _ := net.SplitHostPort(addr)
	conninfo := "host=" + host + " port=" + port + " user=analyst dbname=gridlake sslrootcert=" + caFile
	out, err := psql(t, conninfo+" sslmode=disable", analystPassword, "SELECT 1")
	if err == nil || !strings.Contains(out, "this server requires TLS") {
		t.Fatalf("plain client with pg_tls_required: %v\n%s", err, out)
	}
	if out, err := psql(t, conninfo+" sslmode=verify-full", analystPassword, "SELECT 1"); err != nil || !strings.Contains(out, "0|SELECT 1") {
		t.Fatalf("TLS client with pg_tls_required: %v\n%s", err, out)
	}
}
