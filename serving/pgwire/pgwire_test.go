package pgwire

import (
	"context"
	"errors"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

func TestParse_ParameterAboveLimitRefusedBeforeAllocating(t *testing.T) {
	addr := serve(t, &Server{Q: &stubQ{}})
	c := login(t, addr)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, q := range []string{"SELECT $2147483647", "SELECT $65536", "SELECT $99999999999999999999999999", "SELECT $1 + $0070000"} {
		c.send(&pgproto3.Parse{Query: q}, &pgproto3.Sync{})
		got := c.until()
		if len(got) != 2 || !strings.HasPrefix(got[0], "E:54000:") || !strings.Contains(got[0], "65,535") {
			t.Errorf("Parse %q answered %v, want an error naming the limit of 65,535", q, got)
		}
	}
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > 8<<20 {
		t.Errorf("heap in use grew by %d MB", grew>>20)
	}
	// The session goes on.
	if got := c.query("SELECT 1"); !slices.Equal(got, []string{"T", "D:0,SELECT 1", "C:SELECT 1", "Z"}) {
		t.Errorf("query after the refused Parse answered %v", got)
	}
	// The limit itself is fine, and a $ in a string is no parameter.
	c.send(&pgproto3.Parse{Query: "SELECT $65535, '$70000'"}, &pgproto3.Describe{ObjectType: 'S'}, &pgproto3.Sync{})
	if got := c.until(); has(got, "E:") {
		t.Errorf("Parse of $65535 answered %v", got)
	}
}

func TestParse_MultipleStatementsRefused(t *testing.T) {
	c := login(t, serve(t, &Server{Q: &stubQ{}}))
	c.send(&pgproto3.Parse{Query: "SELECT 1; SELECT 2"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{})
	if got := c.until(); !slices.Equal(got, []string{"E:42601:cannot insert multiple commands into a prepared statement", "Z"}) {
		t.Errorf("answered %v", got)
	}
	// One statement with a trailing semicolon and a ; in a string is one.
	c.send(&pgproto3.Parse{Query: "SELECT ';' ;"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{})
	if got := c.until(); !slices.Equal(got, []string{"ParseComplete", "BindComplete", "D:0,SELECT ';'", "C:SELECT 1", "Z"}) {
		t.Errorf("answered %v", got)
	}
}

func TestSimpleQuery_RunsEveryStatement(t *testing.T) {
	q := &stubQ{}
	c := login(t, serve(t, &Server{Q: q}))
	got := c.query("SET application_name='x'; SELECT 1; SELECT 'a;b' /* ; */ -- c;\n; $q$;$q$; SELECT 2")
	want := []string{"C:SET", "T", "D:0,SELECT 1", "C:SELECT 1", "T", "D:0,SELECT 'a;b' /* ; */ -- c;", "C:SELECT 1",
		"T", "D:0,$q$;$q$", "C:SELECT 1", "T", "D:0,SELECT 2", "C:SELECT 1", "Z"}
	if !slices.Equal(got, want) {
		t.Errorf("answered\n%v\nwant\n%v", got, want)
	}
	// The first error stops the rest; one ReadyForQuery.
	if got := c.query("SELECT 1; fail; SELECT 3"); !slices.Equal(got, []string{"T", "D:0,SELECT 1", "C:SELECT 1", "E:42601:stub failure", "Z"}) {
		t.Errorf("answered %v", got)
	}
	if slices.Contains(q.texts, "SELECT 3") {
		t.Error("a statement after the failed one ran")
	}
	if got := c.query(" ; -- nothing\n"); !slices.Equal(got, []string{"EmptyQueryResponse", "Z"}) {
		t.Errorf("empty query answered %v", got)
	}
}

func TestResults_StreamWhileTheQueryRuns(t *testing.T) {
	q := &stubQ{seen: make(chan struct{})}
	c := login(t, serve(t, &Server{Q: q}))
	c.send(&pgproto3.Query{String: "stream"})
	if m := c.recv(); m != "T" {
		t.Fatalf("got %s, want RowDescription", m)
	}
	if m := c.recv(); !strings.HasPrefix(m, "D:0,") {
		t.Fatalf("got %s, want the first row", m)
	}
	close(q.seen)
	got := c.until()
	if len(got) != 1001 || got[len(got)-2] != "C:SELECT 1000" {
		t.Errorf("the rest of the answer: %d messages ending %v", len(got), got[max(0, len(got)-2):])
	}
}

func TestMessageTooLarge_BeforeAuthentication(t *testing.T) {
	addr := serve(t, &Server{Q: &stubQ{}})
	c := dial(t, addr)
	c.send(startupMsg())
	if m := c.recv(); m != "R:sasl:SCRAM-SHA-256" {
		t.Fatalf("got %s, want the SCRAM request", m)
	}
	c.send(&pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: []byte("n,,n=,r=" + strings.Repeat("x", 9000))})
	if m := c.recv(); !strings.HasPrefix(m, "E:54000:") || !strings.Contains(m, "before authentication") {
		t.Errorf("a 9000-byte SASLInitialResponse answered %s", m)
	}
	if m := c.recv(); m != "EOF" {
		t.Errorf("then %s, want the connection closed", m)
	}
	// The client-final message is bounded the same way.
	c = dial(t, addr)
	c.send(startupMsg())
	c.recv()
	c.send(&pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: []byte("n,,n=,r=" + testClientNonce)})
	c.recv()
	c.send(&pgproto3.SASLResponse{Data: []byte("c=biws,r=" + strings.Repeat("x", 9000))})
	if m := c.recv(); !strings.HasPrefix(m, "E:54000:") || !strings.Contains(m, "before authentication") {
		t.Errorf("a 9000-byte SASLResponse answered %s", m)
	}
	// A startup packet above PostgreSQL's 10,000 bytes.
	c = dial(t, addr)
	c.send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
		Parameters: map[string]string{"user": strings.Repeat("u", 20000)}})
	if m := c.recv(); !strings.HasPrefix(m, "E:08P01:") {
		t.Errorf("a 20,000-byte startup packet answered %s", m)
	}
	// The right password still works, a wrong one does not.
	if got := dial(t, addr).signIn("analyst", analystPassword); len(got) < 2 || got[1] != "R:ok" {
		t.Errorf("the right password answered %v", got)
	}
	if got := dial(t, addr).signIn("analyst", "Correct horse battery staple"); !strings.HasPrefix(got[0], "E:28P01:") {
		t.Errorf("a wrong password answered %v", got)
	}
}

func TestMessageTooLarge_AfterAuthentication(t *testing.T) {
	c := login(t, serve(t, &Server{Q: &stubQ{}, MaxMessageBytes: 16 << 10}))
	if got := c.query("SELECT '" + strings.Repeat("x", 15<<10) + "'"); has(got, "E:") {
		t.Fatalf("a query below the limit answered %v", got)
	}
	got := c.query("SELECT '" + strings.Repeat("x", 17<<10) + "'")
	if len(got) != 2 || !strings.HasPrefix(got[0], "E:54000:") || !strings.Contains(got[0], "serve.pg_max_message_bytes") || got[1] != "EOF" {
		t.Errorf("a query above the limit answered %v, want 54000 naming serve.pg_max_message_bytes, then the connection closed", got)
	}
}

func TestConnections_CappedAtMaxConns(t *testing.T) {
	addr := serve(t, &Server{Q: &stubQ{}, MaxConns: 2})
	a := login(t, addr)
	login(t, addr)
	c := dial(t, addr)
	c.send(startupMsg())
	if got := c.until(); len(got) != 2 || !strings.HasPrefix(got[0], "E:53300:") || !strings.Contains(got[0], "serve.pg_max_conns") {
		t.Errorf("connection 3 of 2 answered %v, want 53300 naming serve.pg_max_conns and close", got)
	}
	// A slot freed is a slot taken.
	a.send(&pgproto3.Terminate{})
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := dial(t, addr).signIn("analyst", analystPassword)
		if len(got) > 1 && got[1] == "R:ok" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a session ended a new one still answered %v", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTimeouts_HalfStartedAndIdleSessionsClosed(t *testing.T) {
	addr := serve(t, &Server{Q: &stubQ{}, StartupTimeout: 200 * time.Millisecond, IdleTimeout: 400 * time.Millisecond})
	// Nothing sent at all; then half a startup packet.
	for _, first := range [][]byte{nil, {0, 0, 0, 40, 0, 3}} {
		c := dial(t, addr)
		if first != nil {
			c.nc.Write(first)
		}
		start := time.Now()
		c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 512)
		for {
			if _, err := c.nc.Read(buf); err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("half-started connection (%v) still open after 5s", first)
				}
				break
			}
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("half-started connection closed after %s", d)
		}
	}
	// An idle session.
	c := login(t, addr)
	if got := c.query("SELECT 1"); has(got, "E:") {
		t.Fatal(got)
	}
	start := time.Now()
	m := c.recv()
	if !strings.HasPrefix(m, "E:57P05:") || !strings.Contains(m, "serve.pg_idle_timeout") {
		t.Errorf("an idle session got %s, want FATAL 57P05 naming serve.pg_idle_timeout", m)
	}
	if m := c.recv(); m != "EOF" {
		t.Errorf("then %s, want the connection closed", m)
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 3*time.Second {
		t.Errorf("the idle session was closed after %s, want about 400ms", d)
	}
}

func TestCancelRequest_CancelsTheRunningQuery(t *testing.T) {
	q := &stubQ{started: make(chan string, 1), ended: make(chan error, 1)}
	addr := serve(t, &Server{Q: q})
	c := login(t, addr)
	c.send(&pgproto3.Query{String: "slow"})
	<-q.started
	// A wrong secret cancels nothing.
	x := dial(t, addr)
	x.send(&pgproto3.CancelRequest{ProcessID: c.pid, SecretKey: c.secret + 1})
	if m := x.recv(); m != "EOF" {
		t.Errorf("a CancelRequest was answered %s", m)
	}
	select {
	case err := <-q.ended:
		t.Fatalf("a wrong secret cancelled the query: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	x = dial(t, addr)
	x.send(&pgproto3.CancelRequest{ProcessID: c.pid, SecretKey: c.secret})
	if m := x.recv(); m != "EOF" {
		t.Errorf("a CancelRequest was answered %s", m)
	}
	select {
	case err := <-q.ended:
		if !errors.Is(err, errCanceledByClient) {
			t.Errorf("the query ended by %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the CancelRequest did not cancel the query")
	}
	got := c.until()
	if !slices.Equal(got, []string{"T", "E:57014:canceling statement due to user request", "Z"}) {
		t.Errorf("the cancelled query answered %v", got)
	}
	if got := c.query("SELECT 1"); has(got, "E:") {
		t.Errorf("the session after the cancel answered %v", got)
	}
}

func TestClientDisconnect_CancelsTheRunningQuery(t *testing.T) {
	q := &stubQ{started: make(chan string, 1), ended: make(chan error, 1)}
	c := login(t, serve(t, &Server{Q: q}))
	c.send(&pgproto3.Query{String: "slow"})
	<-q.started
	c.nc.Close()
	select {
	case err := <-q.ended:
		if !errors.Is(err, errClientGone) {
			t.Errorf("the query ended by %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the query kept running after its client left")
	}
}

// emfileListener fails its first n accepts as a process out of file
// descriptors does.
type emfileListener struct {
	net.Listener
	n int
}

func (l *emfileListener) Accept() (net.Conn, error) {
	if l.n > 0 {
		l.n--
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

func TestServe_AcceptErrorsAreRetried(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := serveOn(t, &Server{Q: &stubQ{}}, &emfileListener{Listener: ln, n: 5})
	c := login(t, addr)
	if got := c.query("SELECT 1"); has(got, "E:") {
		t.Errorf("after accept errors the server answered %v", got)
	}
}

func TestPgx_ExtendedProtocolAndCancel(t *testing.T) {
	q := &stubQ{ended: make(chan error, 1)}
	addr := serve(t, &Server{Q: q})
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgURL("analyst", analystPassword, addr, "sslmode=disable"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int64
	var s string
	if err := conn.QueryRow(ctx, "SELECT $1, $2", "7", "x").Scan(&n, &s); err != nil || n != 2 || s != "SELECT $1, $2" {
		t.Errorf("pgx: %d %q %v", n, s, err)
	}
	// Parse, Bind, Describe portal, Execute in one go.
	if err := conn.QueryRow(ctx, "SELECT $1", pgx.QueryExecModeExec, "7").Scan(&n, &s); err != nil || n != 1 || s != "SELECT $1" {
		t.Errorf("pgx (Describe portal): %d %q %v", n, s, err)
	}
	rows, _ := conn.Query(ctx, "rows 3000")
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (int64, error) {
		var s string
		err := r.Scan(&n, &s)
		return n, err
	})
	if err != nil || len(got) != 3000 || got[2999] != 2999 {
		t.Errorf("pgx: %d rows, %v", len(got), err)
	}
	// pgx gives up on a query whose context ends (by default it drops the
	// connection): the query stops.
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err = conn.Exec(cctx, "slow"); err == nil {
		t.Error("a cancelled query succeeded")
	}
	select {
	case err := <-q.ended:
		t.Logf("the query ended by %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("the query kept running after pgx gave up on it")
	}
}

func TestBind_CountsCheckedAgainstTheMessage(t *testing.T) {
	c := login(t, serve(t, &Server{Q: &stubQ{}}))
	c.send(&pgproto3.Parse{Name: "s", Query: "SELECT $1"}, &pgproto3.Sync{})
	if got := c.until(); has(got, "E:") {
		t.Fatal(got)
	}
	// Parameters that do not match the statement's.
	c.send(&pgproto3.Bind{PreparedStatement: "s", Parameters: [][]byte{[]byte("a"), []byte("b")}}, &pgproto3.Execute{}, &pgproto3.Sync{})
	if got := c.until(); len(got) != 2 || !strings.HasPrefix(got[0], "E:08P01:bind message supplies 2 parameters") {
		t.Errorf("a Bind of 2 parameters for 1 answered %v", got)
	}
	c.send(&pgproto3.Bind{PreparedStatement: "s", ParameterFormatCodes: []int16{0, 0, 0}, Parameters: [][]byte{[]byte("a")}}, &pgproto3.Sync{})
	if got := c.until(); len(got) != 2 || !strings.HasPrefix(got[0], "E:08P01:bind message has 3 parameter formats") {
		t.Errorf("a Bind of 3 formats for 1 parameter answered %v", got)
	}
	// A Bind claiming 65,535 format codes in a 5-byte body: the message is
	// refused and the session ends (the stream cannot be trusted).
	c.nc.Write([]byte{'B', 0, 0, 0, 9, 0, 's', 0, 0xff, 0xff})
	if got := c.until(); len(got) != 2 || !strings.HasPrefix(got[0], "E:08P01:") || got[1] != "EOF" {
		t.Errorf("a Bind with a count past its body answered %v", got)
	}
}

func TestReceive_UndecodableMessageIsAProtocolError(t *testing.T) {
	addr := serve(t, &Server{Q: &stubQ{}})
	// A Bind whose one parameter claims a negative length (pgproto3's
	// decoder slices with it), and a FunctionCall cut short.
	badBind := []byte{'B', 0, 0, 0, 16, 0, 0, 0, 0, 0, 1, 0x80, 0, 0, 0x54, 0, 0}
	badCall := []byte{'F', 0, 0, 0, 8, 0, 0, 0, 1}
	for _, raw := range [][]byte{badBind, badCall} {
		// Signed in, and in place of the SASLInitialResponse.
		c := login(t, addr)
		c.nc.Write(raw)
		if got := c.until(); len(got) != 2 || got[0] != "E:08P01:invalid message: the message's lengths run past its body" || got[1] != "EOF" {
			t.Errorf("%q after sign-in answered %v", raw[0], got)
		}
		c = dial(t, addr)
		c.send(startupMsg())
		c.recv()
		c.nc.Write(raw)
		if got := c.until(); len(got) != 2 || !strings.HasPrefix(got[0], "E:08P01:invalid SASLInitialResponse: the message's lengths") || got[1] != "EOF" {
			t.Errorf("%q before sign-in answered %v", raw[0], got)
		}
	}
}
