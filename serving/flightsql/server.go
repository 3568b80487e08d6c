// Package flightsql serves the analysts' SQL over Arrow Flight SQL, the
// protocol of ADBC, pandas, polars and DuckDB's clients: the same
// sandboxed, read-only queries as POST /v1/sql and the PostgreSQL port,
// answered as the Arrow record batches DuckDB exports, with the catalog
// commands (GetCatalogs, GetDbSchemas, GetTables, GetTableTypes,
// GetSqlInfo) and prepared statements with parameters.
//
// Every call authenticates (a Bearer token, or user and password through
// Flight's basic-auth handshake) and needs the analyst role. gRPC bounds
// message sizes, streams per connection and idle connections; the
// listener bounds connections and survives accept errors.
package flightsql

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/apache/arrow/go/v17/arrow/flight"
	fsql "github.com/apache/arrow/go/v17/arrow/flight/flightsql"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/gridlake/gridlake/auth"
	"github.com/gridlake/gridlake/serving"
)

// Querier is the SQL engine; *serving.SQL is one.
type Querier interface {
	StreamArrow(ctx context.Context, text string, args []any, sink serving.ArrowSink) error
	Check(ctx context.Context, text string) error
	Tables(ctx context.Context) ([]serving.Table, error)
	MaxQueryBytes() int64
}

// Defaults of the Server's limits (config serve.flight_*).
const (
	DefaultMaxConns        = 64
	DefaultMaxMessageBytes = 4 << 20
	DefaultIdleTimeout     = 10 * time.Minute
	// maxStreams bounds concurrent calls on one connection; the SQL
	// engine's own slots (serve.sql_max_concurrent) bound the queries.
	maxStreams = 16
	// handshakeTimeout bounds a connection's TLS and HTTP/2 setup.
	handshakeTimeout = 10 * time.Second
)

// Server serves Flight SQL. Zero limits take their defaults.
type Server struct {
	Q    Querier
	Auth Authenticator // required
	// Sessions issue the bearer token of the basic-auth handshake (nil:
	// only API tokens and Basic credentials on every call).
	Sessions Sessions
	TLS      *tls.Config // nil: plaintext
	Log      *slog.Logger
	Version  string

	MaxConns        int           // connections at once; more wait to be accepted (serve.flight_max_conns)
	MaxMessageBytes int           // largest message a client may send (serve.flight_max_message_bytes)
	IdleTimeout     time.Duration // a connection without calls this long is closed (serve.flight_idle_timeout)
}

// Serve serves on ln until ctx ends (nil), or until ln is closed by
// someone else (an error). Accept errors are retried with a backoff.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.Auth == nil {
		return errors.New("Flight SQL server without an authenticator: every call must sign in")
	}
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv, err := newSQLServer(s.Q, s.Version)
	if err != nil {
		return err
	}
	g := &guard{dir: s.Auth, sessions: s.Sessions, fails: auth.NewFailureBudget(maxFailures, failureWindow, nil)}
	rec := &recoverer{log: log}
	opts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(rec.unary, g.unary),
		grpc.ChainStreamInterceptor(rec.stream, g.stream),
		grpc.MaxRecvMsgSize(orDefault(s.MaxMessageBytes, DefaultMaxMessageBytes)),
		grpc.MaxConcurrentStreams(maxStreams),
		grpc.ConnectionTimeout(handshakeTimeout),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: orDefault(s.IdleTimeout, DefaultIdleTimeout)}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	}
	if s.TLS != nil {
		cfg := s.TLS.Clone()
		cfg.MinVersion = max(cfg.MinVersion, tls.VersionTLS12)
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg)))
	}
	gs := grpc.NewServer(opts...)
	flight.RegisterFlightServiceServer(gs, fsql.NewFlightServer(srv))
	stop := context.AfterFunc(ctx, gs.Stop)
	defer stop()
	rl := &retryListener{Listener: ln, ctx: ctx, log: log, slots: make(chan struct{}, orDefault(s.MaxConns, DefaultMaxConns))}
	err = gs.Serve(rl)
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("serve Flight SQL on %s: %w", ln.Addr(), err)
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Backoff between failed accepts, as net/http does: a listener out of
// file descriptors (EMFILE) must wait for some to be freed, not die.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// retryListener hands gRPC only connections: an accept error is logged
// and retried after a backoff, never returned, unless the listener was
// closed. Past MaxConns it waits for a connection to close before it
// accepts the next.
type retryListener struct {
	net.Listener
	ctx   context.Context
	log   *slog.Logger
	slots chan struct{}
}

func (l *retryListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.ctx.Done():
		return nil, net.ErrClosed
	}
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err == nil {
			return &slotConn{Conn: c, free: func() { <-l.slots }}, nil
		}
		if l.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
			<-l.slots
			return nil, err
		}
		delay = min(max(2*delay, acceptBackoffMin), acceptBackoffMax)
		l.log.Warn("accepting a Flight SQL client failed; retrying", "err", err, "retry_in", delay)
		t := time.NewTimer(delay)
		select {
		case <-l.ctx.Done():
			t.Stop()
			<-l.slots
			return nil, net.ErrClosed
		case <-t.C:
		}
	}
}

// slotConn frees its connection slot once, when closed.
type slotConn struct {
	net.Conn
	once sync.Once
	free func()
}

func (c *slotConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.free)
	return err
}

// recoverer turns a panic in a call into an Internal error: one client's
// call must never take the process (and its other layers) down.
type recoverer struct{ log *slog.Logger }

func (r *recoverer) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer r.recover(info.FullMethod, &err)
	return handler(ctx, req)
}

func (r *recoverer) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	defer r.recover(info.FullMethod, &err)
	return handler(srv, ss)
}

func (r *recoverer) recover(method string, err *error) {
	if p := recover(); p != nil {
		r.log.Error("Flight SQL call panicked", "method", method, "panic", p, "stack", string(debug.Stack()))
		*err = status.Error(codes.Internal, "internal error")
	}
}
