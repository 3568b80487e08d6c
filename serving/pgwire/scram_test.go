package pgwire

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// syncBuffer is a log sink the server writes from its sessions.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestSCRAM_PgxSignsInByRole(t *testing.T) {
	dir, creds := testDirectory(t)
	q := &stubQ{}
	var logs syncBuffer
	addr := serve(t, &Server{Q: q, Auth: dir, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx := context.Background()
	connect := func(user, password string) (*pgx.Conn, error) {
		c, err := pgx.Connect(ctx, pgURL(user, password, addr, "sslmode=disable"))
		if err == nil {
			t.Cleanup(func() { c.Close(ctx) })
		}
		return c, err
	}
	// A user's password and an analyst token both sign in; queries run as them.
	for _, tc := range []struct{ user, password, who string }{
		{"analyst", analystPassword, "user:analyst"},
		{"grafana", creds.grafana, "token:grafana"},
	} {
		c, err := connect(tc.user, tc.password)
		if err != nil {
			t.Fatalf("%s: %v", tc.who, err)
		}
		var s string
		if err := c.QueryRow(ctx, "SELECT $1", "x").Scan(new(int64), &s); err != nil || s != "SELECT $1" {
			t.Fatalf("%s: query %q %v", tc.who, s, err)
		}
		q.mu.Lock()
		who := q.who[len(q.who)-1]
		q.mu.Unlock()
		if who != tc.who {
			t.Errorf("the query ran as %q, want %q", who, tc.who)
		}
		if !strings.Contains(logs.String(), "user="+tc.who) {
			t.Errorf("no log line names %s:\n%s", tc.who, logs.String())
		}
	}
	// Refusals: a wrong password and an unknown user alike; a viewer is
	// known but may not use SQL.
	for _, tc := range []struct{ user, password, code, msg string }{
		{"analyst", "Correct horse battery staple", "28P01", `password authentication failed for user "analyst"`},
		{"analyst", "", "28P01", `password authentication failed for user "analyst"`},
		{"grafana", creds.wall, "28P01", `password authentication failed for user "grafana"`},
		{"nobody", analystPassword, "28P01", `password authentication failed for user "nobody"`},
		{"wall", creds.wall, "28000", "insufficient role: SQL needs analyst, wall has viewer"},
	} {
		_, err := connect(tc.user, tc.password)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != tc.code || pe.Message != tc.msg || pe.Severity != "FATAL" {
			t.Errorf("%s with %.12q: %v, want FATAL %s %q", tc.user, tc.password, err, tc.code, tc.msg)
		}
	}
	if !strings.Contains(logs.String(), "PostgreSQL sign-in refused") {
		t.Errorf("refusals are not logged:\n%s", logs.String())
	}
}

// serverFirst starts a SCRAM exchange as user and returns the salt and
// iterations the server challenged with, and the client to finish it.
func serverFirst(t *testing.T, addr, user string) (*client, string, []byte, int) {
	t.Helper()
	c := dial(t, addr)
	c.send(startupAs(user))
	if m := c.recv(); m != "R:sasl:SCRAM-SHA-256" {
		t.Fatalf("%s: got %s, want the SCRAM request", user, m)
	}
	c.send(&pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: []byte("n,,n=,r=" + testClientNonce)})
	m, ok := strings.CutPrefix(c.recv(), "R:continue:")
	if !ok {
		t.Fatalf("%s: got %s, want the server-first message", user, m)
	}
	nonce, salt, iter := parseServerFirst(t, m)
	return c, nonce, salt, iter
}

func TestSCRAM_UnknownUserLooksLikeAKnownOne(t *testing.T) {
	addr := serve(t, &Server{Q: &stubQ{}})
	_, nonce1, real, realIter := serverFirst(t, addr, "analyst")
	_, nonce2, real2, _ := serverFirst(t, addr, "analyst")
	_, _, mock, mockIter := serverFirst(t, addr, "nobody")
	_, _, mock2, _ := serverFirst(t, addr, "nobody")
	_, _, other, _ := serverFirst(t, addr, "nobody-else")
	if !bytes.Equal(real, real2) || !bytes.Equal(mock, mock2) {
		t.Errorf("a user's salt changed between sign-ins: %x %x, %x %x", real, real2, mock, mock2)
	}
	if len(mock) != len(real) || mockIter != realIter || bytes.Equal(mock, other) {
		t.Errorf("an unknown user's challenge (%d-byte salt %x, %d iterations; another unknown user %x) does not look like a user's (%d bytes, %d)",
			len(mock), mock, mockIter, other, len(real), realIter)
	}
	if nonce1 == nonce2 || len(nonce1) <= len(testClientNonce) {
		t.Errorf("server nonces %q and %q are not fresh", nonce1, nonce2)
	}
	// Both fail the same way at the end.
	for _, user := range []string{"analyst", "nobody"} {
		got := dial(t, addr).signIn(user, "guess")
		if want := []string{`E:28P01:password authentication failed for user "` + user + `"`, "EOF"}; !slices.Equal(got, want) {
			t.Errorf("%s with a wrong password: %v, want %v", user, got, want)
		}
	}
}

func TestSCRAM_MalformedMessagesRefused(t *testing.T) {
	addr := serve(t, &Server{Q: &stubQ{}})
	mech := "SCRAM-SHA-256\x00"
	withLen := func(s string) string { return mech + string([]byte{0, 0, byte(len(s) >> 8), byte(len(s))}) + s }
	for _, tc := range []struct{ name, body, want string }{
		{"no data length", mech, "malformed SASLInitialResponse"},
		{"short data length", mech + "\x00\x00", "malformed SASLInitialResponse"},
		{"data length past the body", mech + "\x00\x00\x01\x00n,,n=,r=abc", "data length 256"},
		{"no data", mech + "\xff\xff\xff\xff", "malformed SCRAM message"},
		{"other mechanism", "SCRAM-SHA-1\x00\x00\x00\x00\x0bn,,n=,r=abc", "invalid SASL authentication mechanism"},
		{"channel binding", withLen("p=tls-server-end-point,,n=,r=abc"), "the client selected SCRAM-SHA-256 without channel binding, but the SCRAM message includes channel binding data"},
		{"channel binding without TLS", "SCRAM-SHA-256-PLUS\x00\x00\x00\x00\x20p=tls-server-end-point,,n=,r=abc", "invalid SASL authentication mechanism"},
		{"authorization identity", withLen("n,a=admin,n=,r=abc"), "authorization identity"},
		{"mandatory extension", withLen("n,,m=x,n=,r=abc"), "unsupported SCRAM extension"},
		{"empty nonce", withLen("n,,n=,r="), "not printable"},
		{"nonce with a control byte", withLen("n,,n=,r=a\x01b"), "not printable"},
		{"no nonce", withLen("n,,n=analyst"), "not n=user,r=nonce"},
		{"bad flag", withLen("q,,n=,r=abc"), "unexpected channel binding flag"},
	} {
		c := dial(t, addr)
		c.send(startupMsg())
		c.recv()
		c.send(&pgproto3.SASLResponse{Data: []byte(tc.body)}) // a 'p' message with exactly this body
		got := c.until()
		if len(got) != 2 || !strings.HasPrefix(got[0], "E:08P01:") || !strings.Contains(got[0], tc.want) || got[1] != "EOF" {
			t.Errorf("%s: %v, want 08P01 %q and the connection closed", tc.name, got, tc.want)
		}
	}
	zeros := base64.StdEncoding.EncodeToString(make([]byte, 32))
	for _, tc := range []struct{ name, final, want string }{
		{"other nonce", "c=biws,r=" + testClientNonce + "x,p=" + zeros, "08P01:SCRAM nonce mismatch"},
		{"other GS2 header", "c=eSws,r=NONCE,p=" + zeros, "08P01:SCRAM channel binding check failed"},
		{"no proof", "c=biws,r=NONCE", "08P01:malformed SCRAM message: the client-final message has no proof"},
		{"short proof", "c=biws,r=NONCE,p=AAAA", "08P01:malformed SCRAM message: the client proof is not 32 bytes"},
		{"no binding", "r=NONCE,p=" + zeros, "08P01:malformed SCRAM message: client-final message"},
		{"binding not base64", "c=!!,r=NONCE,p=" + zeros, "08P01:malformed SCRAM message: the channel binding is not base64"},
		{"wrong proof", "c=biws,r=NONCE,p=" + zeros, `28P01:password authentication failed for user "analyst"`},
	} {
		c, nonce, _, _ := serverFirst(t, addr, "analyst")
		c.send(&pgproto3.SASLResponse{Data: []byte(strings.ReplaceAll(tc.final, "NONCE", nonce))})
		got := c.until()
		if len(got) != 2 || !strings.HasPrefix(got[0], "E:"+tc.want) || got[1] != "EOF" {
			t.Errorf("%s: %v, want %q and the connection closed", tc.name, got, tc.want)
		}
	}
	// Something other than a SASL message, and no user name at all.
	c := dial(t, addr)
	c.send(startupMsg())
	c.recv()
	c.send(&pgproto3.Query{String: "SELECT 1"})
	if got := c.until(); len(got) != 2 || !strings.HasPrefix(got[0], "E:08P01:expected SASLInitialResponse") {
		t.Errorf("a query instead of SCRAM: %v", got)
	}
	c = dial(t, addr)
	c.send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"database": "gridlake"}})
	if got := c.until(); len(got) != 2 || got[0] != "E:28000:no PostgreSQL user name specified in startup packet" {
		t.Errorf("no user: %v", got)
	}
}
