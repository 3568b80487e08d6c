// Package pgwire speaks enough of the PostgreSQL wire protocol (v3) for
// psql, pgx and JDBC to run read-only queries against the serving layer's
// SQL engine: startup (TLS when a certificate is configured), SCRAM-SHA-256
// authentication against a directory of users, the simple query protocol (several statements per message) and the
// extended one (Parse, Bind, Describe, Execute, Sync), text and binary
// result formats for the common types, and CancelRequest.
//
// Framing and message decoding are pgproto3's; this package bounds what a
// client can make it hold: message sizes (small before authentication),
// parameter counts, connections, idle and half-started sessions, and the
// bytes of prepared statements a session keeps. Results stream to the
// client as the engine reads them.
package pgwire

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/gridlake/gridlake/serving"
)

// Querier runs one read-only query and hands its rows to sink as they are
// read; *serving.SQL is one.
type Querier interface {
	Stream(ctx context.Context, text string, args []any, sink serving.RowSink) error
}

// Defaults of the Server's limits (config serve.pg_*).
const (
	DefaultMaxConns        = 64
	DefaultStartupTimeout  = 10 * time.Second
	DefaultIdleTimeout     = 10 * time.Minute
	DefaultWriteTimeout    = 30 * time.Second
	DefaultMaxMessageBytes = 1 << 20
	DefaultMaxSessionBytes = 16 << 20

	// preAuthMaxBody bounds a message before the client has authenticated
	// (the SASL messages); pgproto3 bounds the startup packet itself
	// at PostgreSQL's 10,000 bytes.
	preAuthMaxBody = 8 << 10
	// maxParams is the protocol's own limit: counts are 16-bit.
	maxParams = 65535
)

// Server accepts PostgreSQL clients. Zero limits take their defaults.
type Server struct {
	Q Querier
	// Auth checks every session's SCRAM-SHA-256 login (required).
	Auth Authenticator
	// TLS, when set, answers SSLRequest and encrypts the session (at
	// least TLS 1.2); clients may still connect in the clear.
	TLS *tls.Config
	// RequireTLS refuses sessions that did not upgrade to TLS (with TLS set).
	RequireTLS bool
	Log        *slog.Logger

	MaxConns        int           // concurrent sessions; past it: FATAL 53300 (serve.pg_max_conns)
	StartupTimeout  time.Duration // to finish startup and authentication (serve.pg_startup_timeout)
	IdleTimeout     time.Duration // a session waiting this long for a message is closed (serve.pg_idle_timeout)
	WriteTimeout    time.Duration // a client reading none of its results this long is closed (serve.pg_write_timeout)
	MaxMessageBytes int           // a bigger message closes the session with 54000 (serve.pg_max_message_bytes)
	MaxSessionBytes int           // prepared statements and portals a session holds (serve.pg_max_session_bytes)

	// rand is where nonces and the mock key come from (crypto/rand when
	// nil); the fuzz test makes them predictable.
	rand io.Reader
	// mockKey derives the salts of users that do not exist.
	mockKey [32]byte
	// endpoint is the TLS certificate's channel binding (nil: none).
	endpoint []byte

	once sync.Once
	mu   sync.Mutex
	// active counts sessions; rejecting counts connections past MaxConns
	// being told so (also at most MaxConns, the rest are just closed).
	active, rejecting int
	sessions          map[uint32]*session // by process id, for CancelRequest
}

// init fills in the defaults once.
func (s *Server) init() {
	s.once.Do(func() {
		if s.Log == nil {
			s.Log = slog.New(slog.DiscardHandler)
		}
		if s.MaxConns <= 0 {
			s.MaxConns = DefaultMaxConns
		}
		if s.StartupTimeout <= 0 {
			s.StartupTimeout = DefaultStartupTimeout
		}
		if s.IdleTimeout <= 0 {
			s.IdleTimeout = DefaultIdleTimeout
		}
		if s.WriteTimeout <= 0 {
			s.WriteTimeout = DefaultWriteTimeout
		}
		if s.MaxMessageBytes <= 0 {
			s.MaxMessageBytes = DefaultMaxMessageBytes
		}
		if s.MaxSessionBytes <= 0 {
			s.MaxSessionBytes = DefaultMaxSessionBytes
		}
		s.sessions = map[uint32]*session{}
		if s.TLS != nil {
			s.TLS = s.TLS.Clone()
			s.TLS.MinVersion = max(s.TLS.MinVersion, tls.VersionTLS12)
			s.endpoint = endpointHash(s.TLS)
		}
		io.ReadFull(s.random(), s.mockKey[:]) // crypto/rand never fails (Go 1.24+)
	})
}

func (s *Server) random() io.Reader {
	if s.rand != nil {
		return s.rand
	}
	return rand.Reader
}

// Serve accepts connections on ln until ctx ends. Accept errors (file
// descriptors exhausted) are logged and retried with a backoff; Serve
// returns nil when ctx ends, or an error if ln was closed by someone else.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.Auth == nil {
		return errors.New("PostgreSQL server without an authenticator: every session must sign in")
	}
	s.init()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	return acceptLoop(ctx, ln, s.Log, func(c net.Conn) {
		full, ok := s.admit()
		if !ok {
			c.Close() // past the cap even for being told so
			return
		}
		go func() {
			defer s.release(full)
			defer c.Close()
			defer func() {
				// Last line of defence: one client's session must never
				// take the process (and its other layers) down.
				if p := recover(); p != nil {
					s.Log.Error("PostgreSQL session panicked", "remote", c.RemoteAddr(), "panic", p, "stack", string(debug.Stack()))
				}
			}()
			if err := s.handle(ctx, c, full); err != nil {
				s.Log.Debug("PostgreSQL session ended", "remote", c.RemoteAddr(), "err", err)
			}
		}()
	})
}

// admit counts a new connection: full says it is past MaxConns (it is
// only told so), ok false that even those are at their cap.
func (s *Server) admit() (full, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.active < s.MaxConns:
		s.active++
		return false, true
	case s.rejecting < s.MaxConns:
		s.rejecting++
		return true, true
	}
	return true, false
}

func (s *Server) release(full bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if full {
		s.rejecting--
	} else {
		s.active--
	}
}
