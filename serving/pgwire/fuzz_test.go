package pgwire

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"net"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/gridlake/gridlake/auth"
)

// zeroReader makes the server's nonces predictable, so a seed can hold a
// whole SCRAM exchange that succeeds.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// fuzzConn is a client that has sent data and half-closed: reads return
// it, then EOF; writes are read and dropped.
type fuzzConn struct {
	mu sync.Mutex
	r  *bytes.Reader
}

func (c *fuzzConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.r.Read(p)
}

func (c *fuzzConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *fuzzConn) Close() error                     { return nil }
func (c *fuzzConn) LocalAddr() net.Addr              { return fuzzAddr{} }
func (c *fuzzConn) RemoteAddr() net.Addr             { return fuzzAddr{} }
func (c *fuzzConn) SetDeadline(time.Time) error      { return nil }
func (c *fuzzConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fuzzConn) SetWriteDeadline(time.Time) error { return nil }

type fuzzAddr struct{}

func (fuzzAddr) Network() string { return "fuzz" }
func (fuzzAddr) String() string  { return "fuzz" }

// fixedAuth is an Authenticator of fixed verifiers.
type fixedAuth map[string]struct {
	v auth.Verifier
	p auth.Principal
}

func (a fixedAuth) SCRAM(user string) (auth.Verifier, auth.Principal, bool) {
	e, ok := a[user]
	return e.v, e.p, ok
}

// FuzzPGMessages feeds arbitrary bytes to a live session as a client
// would, SCRAM exchange included: the session must not panic, must end
// once the client has gone, and the heap must stay bounded.
func FuzzPGMessages(f *testing.F) {
	v, err := auth.DeriveVerifier("pw", []byte("0123456789abcdef"), auth.SCRAMIterations)
	if err != nil {
		f.Fatal(err)
	}
	users := fixedAuth{"analyst": {v, auth.Principal{Name: "analyst", Role: auth.Analyst, Kind: "user"}},
		"wall": {v, auth.Principal{Name: "wall", Role: auth.Viewer, Kind: "token"}}}
	// The exchange a client with the right password sends when the
	// server's nonce is all zeros.
	bare := "n=,r=" + testClientNonce
	serverFirst := "r=" + testClientNonce + base64.StdEncoding.EncodeToString(make([]byte, scramNonceLen)) +
		",s=" + base64.StdEncoding.EncodeToString(v.Salt) + ",i=4096"
	final := "c=biws," + serverFirst[:strings.Index(serverFirst, ",")]
	proof, _ := scramProof(f, "pw", v.Salt, v.Iterations, bare+","+serverFirst+","+final)
	signIn := []pgproto3.FrontendMessage{startupMsg(), &pgproto3.SASLInitialResponse{AuthMechanism: scramMechanism, Data: []byte("n,," + bare)},
		&pgproto3.SASLResponse{Data: []byte(final + ",p=" + base64.StdEncoding.EncodeToString(proof))}}
	enc := func(msgs ...pgproto3.FrontendMessage) []byte {
		var b []byte
		for _, m := range msgs {
			var err error
			if b, err = m.Encode(b); err != nil {
				f.Fatal(err)
			}
		}
		return b
	}
	signedIn := func(msgs ...pgproto3.FrontendMessage) []byte { return enc(append(slices.Clone(signIn), msgs...)...) }
	f.Add(signedIn(&pgproto3.Parse{Name: "s", Query: "SELECT $1, $2"}, &pgproto3.Describe{ObjectType: 'S', Name: "s"},
		&pgproto3.Bind{PreparedStatement: "s", Parameters: [][]byte{[]byte("1"), nil}, ResultFormatCodes: []int16{1}},
		&pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, &pgproto3.Sync{}, &pgproto3.Close{ObjectType: 'S', Name: "s"}, &pgproto3.Terminate{}))
	queries := signedIn(&pgproto3.Query{String: "SET application_name='x'; SELECT 1; rows 3"}, &pgproto3.Terminate{})
	f.Add(queries)
	f.Add(enc(&pgproto3.CancelRequest{ProcessID: 1, SecretKey: 2}))
	f.Add(append(enc(&pgproto3.SSLRequest{}), signedIn(&pgproto3.Parse{Query: "SELECT $2147483647"}, &pgproto3.Sync{}, &pgproto3.Query{String: "SELECT 1"})...))
	f.Add(append(enc(&pgproto3.GSSEncRequest{}), signedIn(&pgproto3.Bind{}, &pgproto3.Flush{}, &pgproto3.FunctionCall{}, &pgproto3.Sync{})...))
	// SASL messages: a viewer, an unknown user, a bare mechanism (no
	// data length), channel binding, a client-final without a proof.
	f.Add(enc(startupAs("wall"), signIn[1], signIn[2], &pgproto3.Query{String: "SELECT 1"}))
	f.Add(enc(startupAs("nobody"), signIn[1], signIn[2]))
	f.Add(enc(startupMsg(), &pgproto3.SASLResponse{Data: []byte(scramMechanism + "\x00")}))
	f.Add(enc(startupMsg(), &pgproto3.SASLInitialResponse{AuthMechanism: scramMechanism, Data: []byte("p=tls-server-end-point,a=x,n=,r=abc")}))
	f.Add(enc(startupMsg(), signIn[1], &pgproto3.SASLResponse{Data: []byte(final)}))

	// run plays data to a live session as a client that sends it all and
	// half-closes, reading every answer.
	run := func(q *stubQ, data []byte) error {
		s := &Server{Q: q, Auth: users, rand: zeroReader{}, StartupTimeout: time.Second, IdleTimeout: time.Second}
		done := make(chan error, 1)
		go func() { done <- s.handle(context.Background(), &fuzzConn{r: bytes.NewReader(data)}, false) }()
		select {
		case <-done:
			return nil
		case <-time.After(3 * time.Second):
			return errors.New("the session did not end after its client left")
		}
	}
	// The seeds get past the sign-in, so the fuzzer starts from sessions
	// that run queries.
	q := &stubQ{}
	if err := run(q, queries); err != nil || !slices.Contains(q.texts, "rows 3") || q.who[0] != "user:analyst" {
		f.Fatalf("the signed-in seed ran %q as %q (%v)", q.texts, q.who, err)
	}

	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := run(&stubQ{}, data); err != nil {
			t.Fatal(err)
		}
		metrics.Read(sample)
		if heap := sample[0].Value.Uint64(); heap > 256<<20 {
			t.Fatalf("heap holds %d MB", heap>>20)
		}
	})
}
