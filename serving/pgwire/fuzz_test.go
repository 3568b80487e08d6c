package pgwire

import (
	"context"
	"io"
	"net"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// FuzzPGMessages feeds arbitrary bytes to a live session as a client
// would: the session must not panic, must end once the client has gone,
// and the heap must stay bounded.
func FuzzPGMessages(f *testing.F) {
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
	f.Add(enc(startupMsg(), &pgproto3.Parse{Name: "s", Query: "SELECT $1, $2"}, &pgproto3.Describe{ObjectType: 'S', Name: "s"},
		&pgproto3.Bind{PreparedStatement: "s", Parameters: [][]byte{[]byte("1"), nil}, ResultFormatCodes: []int16{1}},
		&pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, &pgproto3.Sync{}, &pgproto3.Close{ObjectType: 'S', Name: "s"}, &pgproto3.Terminate{}))
	f.Add(enc(startupMsg(), &pgproto3.Query{String: "SET application_name='x'; SELECT 1; rows 3"}, &pgproto3.Terminate{}))
	f.Add(enc(&pgproto3.CancelRequest{ProcessID: 1, SecretKey: 2}))
	f.Add(enc(&pgproto3.SSLRequest{}, startupMsg(), &pgproto3.Parse{Query: "SELECT $2147483647"}, &pgproto3.Sync{}, &pgproto3.Query{String: "SELECT 1"}))
	f.Add(enc(&pgproto3.GSSEncRequest{}, startupMsg(), &pgproto3.Bind{}, &pgproto3.Flush{}, &pgproto3.FunctionCall{}, &pgproto3.Sync{}))

	q := &stubQ{}
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := &Server{Q: q, StartupTimeout: time.Second, IdleTimeout: time.Second}
		cli, srv := net.Pipe()
		done := make(chan error, 1)
		go func() {
			done <- s.handle(context.Background(), srv, false)
			srv.Close()
		}()
		go io.Copy(io.Discard, cli)
		cli.SetWriteDeadline(time.Now().Add(2 * time.Second))
		cli.Write(data)
		cli.Close()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			t.Fatalf("the session did not end after its client left")
		}
		metrics.Read(sample)
		if heap := sample[0].Value.Uint64(); heap > 256<<20 {
			t.Fatalf("heap holds %d MB", heap>>20)
		}
	})
}
