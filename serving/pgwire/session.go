package pgwire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/gridlake/gridlake/auth"
	"github.com/gridlake/gridlake/serving"
)

// fatalWriteTimeout bounds the last words to a client being closed.
const fatalWriteTimeout = 2 * time.Second

// session is one client connection.
type session struct {
	s  *Server
	nc net.Conn
	rd *connReader
	be *pgproto3.Backend

	pid, secret uint32 // BackendKeyData, for CancelRequest
	who         auth.Principal
	tls         bool  // the connection was upgraded by an SSLRequest
	plainBytes  int64 // bytes of SSL and GSSENC requests read in the clear

	mu     sync.Mutex
	cancel context.CancelCauseFunc // of the running query; nil between queries

	stmts   map[string]*stmt
	portals map[string]*portal
	held    int  // bytes of stmts and portals, at most MaxSessionBytes
	failed  bool // an extended-protocol error: skip to Sync
}

// handle serves one connection until the client leaves or ctx ends; full
// says the server is at MaxConns, so a client is only told so (a
// CancelRequest is still honoured, as PostgreSQL does).
func (s *Server) handle(ctx context.Context, nc net.Conn, full bool) error {
	s.init()
	// Ending the server ends its sessions, waiting or not.
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	rd := &connReader{nc: nc}
	ss := &session{s: s, nc: nc, rd: rd, be: pgproto3.NewBackend(rd, nc),
		stmts: map[string]*stmt{}, portals: map[string]*portal{}}
	ss.be.SetMaxBodyLen(preAuthMaxBody)
	// A half-started connection holds a descriptor and a slot: it has
	// StartupTimeout to finish startup and authentication.
	nc.SetDeadline(time.Now().Add(s.StartupTimeout))
	defer s.unregister(ss) // registered once signed in, even if telling the client fails
	ok, err := ss.startup(full)
	if err != nil {
		ss.sendFatal(err)
		return err
	}
	if !ok {
		return nil
	}
	ss.nc.SetDeadline(time.Time{})
	ss.be.SetMaxBodyLen(s.MaxMessageBytes)
	s.Log.Info("PostgreSQL client signed in", "user", ss.who.String(), "role", ss.who.Role.String(), "remote", nc.RemoteAddr(), "tls", ss.tls)
	if err := ss.loop(auth.WithPrincipal(ctx, ss.who)); err != nil {
		return fmt.Errorf("session of %s: %w", ss.who, err)
	}
	return nil
}

// startup reads the startup packet and authenticates; ok false means the
// connection was a CancelRequest and is done.
func (ss *session) startup(full bool) (ok bool, err error) {
	s := ss.s
	var sm *pgproto3.StartupMessage
	for sm == nil {
		m, err := ss.be.ReceiveStartupMessage()
		if err != nil {
			return false, ss.readFailed(err, "startup packet")
		}
		switch m := m.(type) {
		case *pgproto3.SSLRequest:
			err = ss.answerSSL()
		case *pgproto3.GSSEncRequest:
			err = ss.answerGSSEnc()
		case *pgproto3.CancelRequest: // closed without a reply, as PostgreSQL does
			s.cancelQuery(m.ProcessID, m.SecretKey)
			return false, nil
		case *pgproto3.StartupMessage:
			sm = m
		default:
			return false, fatalf(codeProtocol, "unexpected %T at startup", m)
		}
		if err != nil {
			return false, err
		}
	}
	if full {
		return false, fatalf(codeTooMany, "sorry, too many clients already: %d PostgreSQL sessions are open, the limit set in serve.pg_max_conns", s.MaxConns)
	}
	if s.RequireTLS && s.TLS != nil && !ss.tls {
		// PostgreSQL's hostssl: refuse before any credential is exchanged.
		return false, fatalf(codeNoAuth, "this server requires TLS: connect with sslmode=require or verify-full (serve.pg_tls_required)")
	}
	user := sm.Parameters["user"]
	if user == "" {
		return false, fatalf(codeNoAuth, "no PostgreSQL user name specified in startup packet")
	}
	if s.Auth == nil {
		return false, fatalf(codeNoAuth, "this server has no users to sign in against")
	}
	if ss.who, err = ss.authenticate(user); err != nil {
		if isFatal(err) {
			s.Log.Warn("PostgreSQL sign-in refused", "user", clip(user), "remote", ss.nc.RemoteAddr(), "tls", ss.tls, "err", err)
		}
		return false, err
	}
	s.register(ss)
	ss.be.Send(&pgproto3.AuthenticationOk{})
	for _, kv := range [][2]string{{"server_version", "14.0 (gridlake)"}, {"server_encoding", "UTF8"}, {"client_encoding", "UTF8"},
		{"DateStyle", "ISO, MDY"}, {"TimeZone", "UTC"}, {"integer_datetimes", "on"}, {"standard_conforming_strings", "on"}} {
		ss.be.Send(&pgproto3.ParameterStatus{Name: kv[0], Value: kv[1]})
	}
	ss.be.Send(&pgproto3.BackendKeyData{ProcessID: ss.pid, SecretKey: ss.secret})
	ss.be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	return true, ss.flush()
}

// errUndecodable is a message pgproto3 could not decode without panicking.
var errUndecodable = errors.New("the message's lengths run past its body")

// receive reads the client's next message. pgproto3's decoders index past
// some malformed bodies (a Bind parameter of negative length, a short
// FunctionCall) and panic; that is the client's protocol violation, not a
// crash.
func (ss *session) receive() (m pgproto3.FrontendMessage, err error) {
	defer func() {
		if p := recover(); p != nil {
			m, err = nil, errUndecodable
		}
	}()
	return ss.be.Receive()
}

// readFailed turns a failed read into what the client is told, if anything.
func (ss *session) readFailed(err error, what string) error {
	var big *pgproto3.ExceededMaxBodyLenErr
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return fmt.Errorf("read %s: %w", what, err) // nobody left to tell
	case errors.Is(err, os.ErrDeadlineExceeded) && ss.pid == 0:
		return fatalf(codeProtocol, "canceling authentication due to timeout: startup and authentication must finish within %s (serve.pg_startup_timeout)", ss.s.StartupTimeout)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fatalf(codeIdle, "terminating connection due to idle-session timeout: no message for %s (serve.pg_idle_timeout)", ss.s.IdleTimeout)
	case errors.As(err, &big) && ss.pid == 0:
		return fatalf(codeLimit, "a message of %d bytes before authentication is above the limit of %d bytes", big.ActualBodyLen, big.MaxExpectedBodyLen)
	case errors.As(err, &big):
		return fatalf(codeLimit, "a message of %d bytes is above the limit of %d bytes set in serve.pg_max_message_bytes", big.ActualBodyLen, big.MaxExpectedBodyLen)
	}
	return fatalf(codeProtocol, "invalid %s: %v", what, err)
}

// sendFatal tells the client why its session ends, if it is a PostgreSQL
// error (a broken connection has nobody to tell).
func (ss *session) sendFatal(err error) {
	if !isFatal(err) {
		return
	}
	ss.nc.SetWriteDeadline(time.Now().Add(fatalWriteTimeout))
	ss.be.Send(errorResponse(err))
	ss.be.Flush()
}

// flush sends what is buffered; a client that reads nothing for
// WriteTimeout is gone. Results are written from an engine thread, so a
// client that stops reading must not hold it longer than that.
func (ss *session) flush() error {
	ss.nc.SetWriteDeadline(time.Now().Add(ss.s.WriteTimeout))
	if err := ss.be.Flush(); err != nil {
		return fmt.Errorf("write to client: %w", err)
	}
	return nil
}

// loop answers messages until the client terminates or leaves.
func (ss *session) loop(ctx context.Context) error {
	for {
		ss.nc.SetReadDeadline(time.Now().Add(ss.s.IdleTimeout))
		m, err := ss.receive()
		if err != nil {
			err = ss.readFailed(err, "message")
			ss.sendFatal(err)
			return err
		}
		if _, sync := m.(*pgproto3.Sync); ss.failed && !sync {
			continue // after an error, the extended protocol skips to Sync
		}
		switch m := m.(type) {
		case *pgproto3.Query:
			if err = ss.simple(ctx, m.String); err != nil {
				ss.be.Send(errorResponse(err))
				err = nil
			}
			ss.be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
		case *pgproto3.Parse:
			err = ss.parse(m)
		case *pgproto3.Bind:
			err = ss.bind(m)
		case *pgproto3.Describe:
			err = ss.describe(ctx, m)
		case *pgproto3.Execute:
			err = ss.execute(ctx, m)
		case *pgproto3.Close:
			ss.close(m)
			ss.be.Send(&pgproto3.CloseComplete{})
		case *pgproto3.Sync:
			ss.failed = false
			ss.dropPortal("")
			ss.be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
		case *pgproto3.Flush:
		case *pgproto3.Terminate:
			return nil
		case *pgproto3.CopyData, *pgproto3.CopyDone, *pgproto3.CopyFail:
			// Ignored outside COPY, as PostgreSQL does.
		case *pgproto3.FunctionCall:
			err = errorf(codeFeature, "function calls are not supported")
		default:
			err = fatalf(codeProtocol, "unexpected %T message", m)
		}
		if err != nil {
			if isFatal(err) {
				ss.sendFatal(err)
				return err
			}
			ss.be.Send(errorResponse(err))
			ss.failed = true
		}
		if err := ss.flush(); err != nil {
			return err
		}
	}
}

// run streams one query to sink. While it runs, a CancelRequest or the
// client going away cancels it.
func (ss *session) run(ctx context.Context, text string, args []any, sink serving.RowSink) error {
	qctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ss.mu.Lock()
	ss.cancel = cancel
	ss.mu.Unlock()
	defer func() {
		ss.mu.Lock()
		ss.cancel = nil
		ss.mu.Unlock()
	}()
	stop := ss.rd.watch(func() { cancel(errClientGone) })
	err := ss.s.Q.Stream(qctx, text, args, sink)
	stop()
	if err != nil && qctx.Err() != nil {
		switch context.Cause(qctx) {
		case errCanceledByClient:
			return errorf(codeCanceled, "canceling statement due to user request")
		case errClientGone:
			return fmt.Errorf("query cancelled: %w", errClientGone)
		}
	}
	return err
}
