package pgwire

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/gridlake/gridlake/auth"
	"github.com/gridlake/gridlake/serving"
)

// stubQ answers every query with two columns: the number of arguments and
// the query's text. "slow" runs until its context ends; "rows N" streams
// N rows; "stream" streams rows and waits for the client to have seen
// some; "fail" is a user error.
type stubQ struct {
	mu      sync.Mutex
	texts   []string
	who     []string    // the principal in each query's context
	started chan string // each query's text as it starts (if not nil)
	ended   chan error  // a slow query's context cause as it ends (if not nil)
	seen    chan struct{}
}

var stubCols = []serving.Column{{Name: "n", Type: "BIGINT"}, {Name: "s", Type: "VARCHAR"}}

func (q *stubQ) Stream(ctx context.Context, text string, args []any, sink serving.RowSink) error {
	p, _ := auth.FromContext(ctx)
	q.mu.Lock()
	q.texts = append(q.texts, text)
	q.who = append(q.who, p.String())
	q.mu.Unlock()
	if q.started != nil {
		select {
		case q.started <- text:
		default:
		}
	}
	switch {
	case text == "fail":
		return &serving.QueryError{Kind: "invalid", Msg: "stub failure"}
	case strings.HasSuffix(text, ") LIMIT 0"):
		return sink.Columns(stubCols, serving.Freshness{})
	}
	if err := sink.Columns(stubCols, serving.Freshness{}); err != nil {
		return err
	}
	switch {
	case text == "slow":
		<-ctx.Done()
		if q.ended != nil {
			q.ended <- context.Cause(ctx)
		}
		return ctx.Err()
	case strings.HasPrefix(text, "rows "):
		n, _ := strconv.Atoi(strings.TrimPrefix(text, "rows "))
		for i := 0; i < n; i++ {
			if err := sink.Row([]any{int64(i), "row"}); err != nil {
				return err
			}
		}
		return nil
	case text == "stream":
		for i := 0; i < 1000; i++ {
			if err := sink.Row([]any{int64(i), strings.Repeat("x", 100)}); err != nil {
				return err
			}
		}
		select {
		case <-q.seen:
		case <-time.After(5 * time.Second):
			return errors.New("the client saw no row while the query ran: the result was held back")
		}
		return nil
	}
	return sink.Row([]any{int64(len(args)), text})
}

// Test credentials: the user analyst (password analystPassword), the
// analyst token grafana, the viewer token wall.
const analystPassword = "correct horse battery staple"

type testCreds struct {
	grafana, wall string // tokens
}

// testDirectory writes a users file and opens it, as gridlake does.
func testDirectory(t testing.TB) (*auth.Directory, testCreds) {
	t.Helper()
	var f auth.File
	var creds testCreds
	var err error
	if creds.grafana, err = auth.NewToken("grafana"); err != nil {
		t.Fatal(err)
	}
	if creds.wall, err = auth.NewToken("wall"); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, e := range []struct {
		kind, name string
		role       auth.Role
		secret     string
	}{{"user", "analyst", auth.Analyst, analystPassword}, {"token", "grafana", auth.Analyst, creds.grafana}, {"token", "wall", auth.Viewer, creds.wall}} {
		entry, err := auth.NewEntry(e.name, e.role, e.secret, now)
		if err != nil {
			t.Fatal(err)
		}
		f.Put(e.kind, entry)
	}
	path := filepath.Join(t.TempDir(), "users.yaml")
	if err := auth.WriteFile(path, f); err != nil {
		t.Fatal(err)
	}
	d, err := auth.Open(path, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return d, creds
}

// serve runs s on a loopback listener until the test ends; without an
// Authenticator it gets testDirectory's.
func serve(t testing.TB, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, s, ln)
}

func serveOn(t testing.TB, s *Server, ln net.Listener) string {
	if s.Auth == nil {
		s.Auth, _ = testDirectory(t)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// client speaks the protocol with pgproto3's Frontend.
type client struct {
	t           testing.TB
	nc          net.Conn
	fe          *pgproto3.Frontend
	pid, secret uint32
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, nc: nc, fe: pgproto3.NewFrontend(nc, nc)}
}

func (c *client) send(msgs ...pgproto3.FrontendMessage) {
	c.t.Helper()
	for _, m := range msgs {
		c.fe.Send(m)
	}
	if err := c.fe.Flush(); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// recv summarises the next message: "T", "D:v1,v2", "C:tag", "E:code:text",
// "Z", "K", "R:auth", "EOF" when the server closed the connection.
func (c *client) recv() string {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	m, err := c.fe.Receive()
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "reset") {
			return "EOF"
		}
		c.t.Fatalf("receive: %v", err)
	}
	switch m := m.(type) {
	case *pgproto3.DataRow:
		vals := make([]string, len(m.Values))
		for i, v := range m.Values {
			vals[i] = string(v)
			if v == nil {
				vals[i] = "NULL"
			}
		}
		return "D:" + strings.Join(vals, ",")
	case *pgproto3.CommandComplete:
		return "C:" + string(m.CommandTag)
	case *pgproto3.ErrorResponse:
		return "E:" + m.Code + ":" + m.Message
	case *pgproto3.ReadyForQuery:
		return "Z"
	case *pgproto3.RowDescription:
		return "T"
	case *pgproto3.BackendKeyData:
		c.pid, c.secret = m.ProcessID, m.SecretKey
		return "K"
	case *pgproto3.AuthenticationSASL:
		return "R:sasl:" + strings.Join(m.AuthMechanisms, ",")
	case *pgproto3.AuthenticationSASLContinue:
		return "R:continue:" + string(m.Data)
	case *pgproto3.AuthenticationSASLFinal:
		return "R:final:" + string(m.Data)
	case *pgproto3.AuthenticationOk:
		return "R:ok"
	}
	return strings.TrimPrefix(fmt.Sprintf("%T", m), "*pgproto3.")
}

// until collects summaries through ReadyForQuery or EOF.
func (c *client) until() []string {
	c.t.Helper()
	var got []string
	for {
		m := c.recv()
		got = append(got, m)
		if m == "Z" || m == "EOF" {
			return got
		}
	}
}

func startupMsg() *pgproto3.StartupMessage { return startupAs("analyst") }

func startupAs(user string) *pgproto3.StartupMessage {
	return &pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
		Parameters: map[string]string{"user": user, "database": "gridlake"}}
}

// login connects and signs in as analyst.
func login(t testing.TB, addr string) *client {
	t.Helper()
	c := dial(t, addr)
	got := c.signIn("analyst", analystPassword)
	if len(got) < 2 || !strings.HasPrefix(got[0], "R:final:v=") || got[1] != "R:ok" || got[len(got)-1] != "Z" || c.pid == 0 {
		t.Fatalf("sign-in answered %v", got)
	}
	return c
}

// testClientNonce is the client's nonce of signIn.
const testClientNonce = "fyko+d2lbbFgONRv9qkxdawL"

// signIn sends a startup packet for user and runs the client side of
// SCRAM-SHA-256 (RFC 5802) with password, without channel binding (as
// pgx); it returns what the server answered to the client-final message,
// through ReadyForQuery or EOF (or the answer to an earlier step, if the
// server ended the exchange).
func (c *client) signIn(user, password string) []string {
	c.t.Helper()
	return c.signInWith(user, password, "SCRAM-SHA-256", "n,,", nil)
}

// signInWith is signIn choosing the mechanism, the GS2 header and the
// channel binding data.
func (c *client) signInWith(user, password, mech, gs2 string, cbind []byte) []string {
	c.t.Helper()
	c.send(startupAs(user))
	if m := c.recv(); m != "R:sasl:SCRAM-SHA-256" && m != "R:sasl:SCRAM-SHA-256-PLUS,SCRAM-SHA-256" {
		return append([]string{m}, c.until()...)
	}
	bare := "n=,r=" + testClientNonce
	c.send(&pgproto3.SASLInitialResponse{AuthMechanism: mech, Data: []byte(gs2 + bare)})
	m := c.recv()
	serverFirst, ok := strings.CutPrefix(m, "R:continue:")
	if !ok {
		return append([]string{m}, c.until()...)
	}
	nonce, salt, iter := parseServerFirst(c.t, serverFirst)
	final := "c=" + base64.StdEncoding.EncodeToString(append([]byte(gs2), cbind...)) + ",r=" + nonce
	authMsg := bare + "," + serverFirst + "," + final
	proof, serverSig := scramProof(c.t, password, salt, iter, authMsg)
	c.send(&pgproto3.SASLResponse{Data: []byte(final + ",p=" + base64.StdEncoding.EncodeToString(proof))})
	got := c.until()
	// The server proves it knows the verifier too.
	if want := "R:final:v=" + base64.StdEncoding.EncodeToString(serverSig); strings.HasPrefix(got[0], "R:final:") && got[0] != want {
		c.t.Errorf("server signature %s, want %s", got[0], want)
	}
	return got
}

// scramProof is the client's proof for authMsg, and the server signature
// it expects back.
func scramProof(t testing.TB, password string, salt []byte, iter int, authMsg string) (proof, serverSig []byte) {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iter, sha256.Size)
	if err != nil {
		t.Fatal(err)
	}
	clientKey := hmacSHA256(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	proof = hmacSHA256(storedKey[:], authMsg)
	for i := range proof {
		proof[i] ^= clientKey[i]
	}
	return proof, hmacSHA256(hmacSHA256(salted, "Server Key"), authMsg)
}

// parseServerFirst reads r=nonce,s=salt,i=iterations.
func parseServerFirst(t testing.TB, m string) (nonce string, salt []byte, iter int) {
	t.Helper()
	parts := strings.Split(m, ",")
	if len(parts) != 3 || !strings.HasPrefix(parts[0], "r="+testClientNonce) || !strings.HasPrefix(parts[1], "s=") || !strings.HasPrefix(parts[2], "i=") {
		t.Fatalf("server-first message %q", m)
	}
	salt, err := base64.StdEncoding.DecodeString(parts[1][2:])
	if err != nil {
		t.Fatalf("salt of %q: %v", m, err)
	}
	if iter, err = strconv.Atoi(parts[2][2:]); err != nil {
		t.Fatalf("iterations of %q: %v", m, err)
	}
	return parts[0][2:], salt, iter
}

// pgURL is a connection string for pgx.
func pgURL(user, password, addr, query string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, password), Host: addr, Path: "/gridlake", RawQuery: query}
	return u.String()
}

func hmacSHA256(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}

// query runs a simple query and returns the answer's summaries.
func (c *client) query(q string) []string {
	c.t.Helper()
	c.send(&pgproto3.Query{String: q})
	return c.until()
}

func has(got []string, prefix string) bool {
	for _, g := range got {
		if strings.HasPrefix(g, prefix) {
			return true
		}
	}
	return false
}
