package pgwire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/gridlake/gridlake/serving"
)

// stubQ answers every query with two columns: the number of arguments and
// the query's text. "slow" runs until its context ends; "rows N" streams
// N rows; "stream" streams rows and waits for the client to have seen
// some; "fail" is a user error.
type stubQ struct {
	mu      sync.Mutex
	texts   []string
	started chan string // each query's text as it starts (if not nil)
	ended   chan error  // a slow query's context cause as it ends (if not nil)
	seen    chan struct{}
}

var stubCols = []serving.Column{{Name: "n", Type: "BIGINT"}, {Name: "s", Type: "VARCHAR"}}

func (q *stubQ) Stream(ctx context.Context, text string, args []any, sink serving.RowSink) error {
	q.mu.Lock()
	q.texts = append(q.texts, text)
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

// serve runs s on a loopback listener until the test ends.
func serve(t testing.TB, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, s, ln)
}

func serveOn(t testing.TB, s *Server, ln net.Listener) string {
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
	case *pgproto3.AuthenticationCleartextPassword:
		return "R:password"
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

func startupMsg() *pgproto3.StartupMessage {
	return &pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
		Parameters: map[string]string{"user": "analyst", "database": "gridlake"}}
}

// login connects and finishes startup (without a password).
func login(t testing.TB, addr string) *client {
	t.Helper()
	c := dial(t, addr)
	c.send(startupMsg())
	got := c.until()
	if got[0] != "R:ok" || got[len(got)-1] != "Z" || c.pid == 0 {
		t.Fatalf("startup answered %v", got)
	}
	return c
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
