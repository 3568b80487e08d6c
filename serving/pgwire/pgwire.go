// Package pgwire speaks enough of the PostgreSQL wire protocol (v3) for
// psql, pgx and JDBC to run read-only queries against the serving layer's
// SQL engine: startup (SSL politely refused), optional cleartext password,
// the simple query protocol and the extended one (Parse, Bind, Describe,
// Execute, Sync), text and binary result formats for the common types.
package pgwire

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/gridlake/gridlake/serving"
)

// Querier runs one read-only query; *serving.SQL is one.
type Querier interface {
	Query(ctx context.Context, text string, args ...any) (*serving.Result, error)
}

// Server accepts PostgreSQL clients.
type Server struct {
	Q        Querier
	Password string // empty: no authentication
	Log      *slog.Logger
}

// Serve accepts connections on ln until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
	go func() { <-ctx.Done(); ln.Close() }()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accept PostgreSQL client: %w", err)
		}
		go func() {
			defer c.Close()
			if err := s.session(ctx, c); err != nil && !errors.Is(err, io.EOF) {
				s.Log.Debug("PostgreSQL session ended", "remote", c.RemoteAddr(), "err", err)
			}
		}()
	}
}

type conn struct {
	r *bufio.Reader
	w *bufio.Writer
}

func (c *conn) readMsg() (byte, []byte, error) {
	var head [5]byte
	if _, err := io.ReadFull(c.r, head[:]); err != nil {
		return 0, nil, err
	}
	n := int(binary.BigEndian.Uint32(head[1:])) - 4
	if n < 0 || n > 64<<20 {
		return 0, nil, fmt.Errorf("message of %d bytes", n)
	}
	body := make([]byte, n)
	_, err := io.ReadFull(c.r, body)
	return head[0], body, err
}

// msg builds one backend message.
type msg struct {
	typ byte
	b   []byte
}

func (m *msg) str(s string) *msg  { m.b = append(append(m.b, s...), 0); return m }
func (m *msg) i16(v int) *msg     { m.b = binary.BigEndian.AppendUint16(m.b, uint16(v)); return m }
func (m *msg) i32(v int) *msg     { m.b = binary.BigEndian.AppendUint32(m.b, uint32(v)); return m }
func (m *msg) raw(b []byte) *msg  { m.b = append(m.b, b...); return m }
func newMsg(typ byte) *msg        { return &msg{typ: typ} }
func (c *conn) send(m *msg) error { return c.write(m.typ, m.b) }

func (c *conn) write(typ byte, body []byte) error {
	c.w.WriteByte(typ)
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(body)+4))
	c.w.Write(n[:])
	_, err := c.w.Write(body)
	return err
}

func (s *Server) session(ctx context.Context, nc net.Conn) error {
	c := &conn{r: bufio.NewReader(nc), w: bufio.NewWriter(nc)}
	if err := s.startup(c); err != nil {
		return err
	}
	ss := &sessionState{stmts: map[string]*stmt{}, portals: map[string]*portal{}}
	for {
		typ, body, err := c.readMsg()
		if err != nil {
			return err
		}
		if ss.failed && typ != 'S' {
			continue // after an error, the extended protocol skips to Sync
		}
		var qerr error
		switch typ {
		case 'Q':
			qerr = s.simple(ctx, c, cstr(body))
			if qerr != nil {
				c.sendError(qerr)
			}
			c.ready()
		case 'P':
			qerr = ss.parse(body, c)
		case 'B':
			qerr = ss.bind(body, c)
		case 'D':
			qerr = s.describe(ctx, ss, body, c)
		case 'E':
			qerr = s.execute(ctx, ss, body, c)
		case 'C':
			if len(body) > 0 {
				name := cstr(body[1:])
				if body[0] == 'S' {
					delete(ss.stmts, name)
				} else {
					delete(ss.portals, name)
				}
			}
			c.send(newMsg('3'))
		case 'S':
			ss.failed = false
			delete(ss.portals, "")
			c.ready()
		case 'H':
		case 'X':
			return nil
		default:
			qerr = fmt.Errorf("unsupported message %q", typ)
		}
		if qerr != nil && typ != 'Q' {
			c.sendError(qerr)
			ss.failed = true
		}
		if err := c.w.Flush(); err != nil {
			return err
		}
	}
}

func (c *conn) ready() { c.send(newMsg('Z').raw([]byte{'I'})) }

func cstr(b []byte) string {
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		return string(b[:i])
	}
	return string(b)
}

func (s *Server) startup(c *conn) error {
	for {
		var head [8]byte
		if _, err := io.ReadFull(c.r, head[:]); err != nil {
			return err
		}
		n := int(binary.BigEndian.Uint32(head[:4])) - 8
		code := binary.BigEndian.Uint32(head[4:])
		if n < 0 || n > 1<<16 {
			return fmt.Errorf("startup packet of %d bytes", n)
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(c.r, body); err != nil {
			return err
		}
		switch code {
		case 80877103, 80877104: // SSLRequest, GSSENCRequest: not offered
			if _, err := c.w.Write([]byte{'N'}); err != nil {
				return err
			}
			c.w.Flush()
			continue
		case 80877102: // CancelRequest: queries have their own timeout
			return io.EOF
		case 196608: // protocol 3.0
		default:
			return fmt.Errorf("unsupported protocol %d", code)
		}
		break
	}
	if s.Password != "" {
		c.send(newMsg('R').i32(3))
		c.w.Flush()
		typ, body, err := c.readMsg()
		if err != nil {
			return err
		}
		if typ != 'p' || cstr(body) != s.Password {
			c.sendErrorCode("28P01", "password authentication failed: use the password set in serve.pg_password")
			c.w.Flush()
			return errors.New("bad password")
		}
	}
	c.send(newMsg('R').i32(0))
	for _, kv := range [][2]string{{"server_version", "14.0 (gridlake)"}, {"server_encoding", "UTF8"}, {"client_encoding", "UTF8"},
		{"DateStyle", "ISO, MDY"}, {"TimeZone", "UTC"}, {"integer_datetimes", "on"}, {"standard_conforming_strings", "on"}} {
		c.send(newMsg('S').str(kv[0]).str(kv[1]))
	}
	c.send(newMsg('K').i32(1).i32(1))
	c.ready()
	return c.w.Flush()
}

// sqlState maps errors to SQLSTATE codes.
func sqlState(err error) string {
	var qe *serving.QueryError
	if errors.As(err, &qe) {
		switch qe.Kind {
		case "rejected":
			return "42501" // insufficient_privilege
		case "timeout":
			return "57014" // query_canceled
		case "too_large":
			return "54000" // program_limit_exceeded
		case "unavailable":
			return "40001"
		}
		return "42601" // syntax_error or other user error
	}
	return "XX000"
}

func (c *conn) sendError(err error) { c.sendErrorCode(sqlState(err), err.Error()) }

func (c *conn) sendErrorCode(code, text string) {
	m := newMsg('E')
	m.raw([]byte{'S'}).str("ERROR").raw([]byte{'V'}).str("ERROR").raw([]byte{'C'}).str(code).raw([]byte{'M'}).str(text)
	m.b = append(m.b, 0)
	c.send(m)
}

// sessionSetting reports whether a statement is a client session setting
// that drivers send on connect (harmless; answered without running it).
func sessionSetting(q string) (tag string, ok bool) {
	f := strings.Fields(strings.ToLower(strings.TrimRight(strings.TrimSpace(q), ";")))
	if len(f) == 0 {
		return "", false
	}
	switch f[0] {
	case "begin", "start", "commit", "rollback", "end", "discard", "deallocate":
		return strings.ToUpper(f[0]), true
	case "set", "reset":
		if len(f) > 1 {
			name := strings.TrimPrefix(f[1], "session")
			if len(f) > 2 && (f[1] == "session" || f[1] == "local") {
				name = f[2]
			}
			switch strings.Trim(name, `"`) {
			case "extra_float_digits", "application_name", "client_encoding", "datestyle", "timezone",
				"search_path", "statement_timeout", "intervalstyle", "client_min_messages", "bytea_output":
				return "SET", true
			}
		}
	}
	return "", false
}

func (s *Server) simple(ctx context.Context, c *conn, q string) error {
	if strings.TrimSpace(strings.TrimRight(strings.TrimSpace(q), ";")) == "" {
		return c.send(newMsg('I'))
	}
	if tag, ok := sessionSetting(q); ok {
		return c.send(newMsg('C').str(tag))
	}
	res, err := s.Q.Query(ctx, q)
	if err != nil {
		return err
	}
	cols := describeColumns(res)
	c.send(rowDescription(cols, nil))
	return sendRows(c, res, cols, nil)
}

type stmt struct {
	query     string
	paramOIDs []uint32
}

type portal struct {
	st      *stmt
	params  []any
	formats []int16
	res     *serving.Result // run at Describe or Execute
}

type sessionState struct {
	stmts   map[string]*stmt
	portals map[string]*portal
	failed  bool
}

func (ss *sessionState) parse(b []byte, c *conn) error {
	r := &reader{b: b}
	name, q := r.str(), r.str()
	n := r.i16()
	st := &stmt{query: q}
	for i := 0; i < n; i++ {
		st.paramOIDs = append(st.paramOIDs, uint32(r.i32()))
	}
	if r.err != nil {
		return r.err
	}
	// Undeclared parameters: count $n in the query.
	if max := maxParam(q); max > len(st.paramOIDs) {
		for len(st.paramOIDs) < max {
			st.paramOIDs = append(st.paramOIDs, 0)
		}
	}
	ss.stmts[name] = st
	return c.send(newMsg('1'))
}

func maxParam(q string) int {
	max := 0
	for i := 0; i < len(q); i++ {
		if q[i] != '$' {
			continue
		}
		j := i + 1
		for j < len(q) && q[j] >= '0' && q[j] <= '9' {
			j++
		}
		if n, err := strconv.Atoi(q[i+1 : j]); err == nil && n > max {
			max = n
		}
	}
	return max
}

func (ss *sessionState) bind(b []byte, c *conn) error {
	r := &reader{b: b}
	pname, sname := r.str(), r.str()
	st := ss.stmts[sname]
	if st == nil {
		return fmt.Errorf("prepared statement %q does not exist", sname)
	}
	nf := r.i16()
	pf := make([]int16, nf)
	for i := range pf {
		pf[i] = int16(r.i16())
	}
	np := r.i16()
	p := &portal{st: st}
	for i := 0; i < np; i++ {
		n := r.i32()
		if n < 0 {
			p.params = append(p.params, nil)
			continue
		}
		raw := r.bytes(n)
		format := int16(0)
		if len(pf) == 1 {
			format = pf[0]
		} else if i < len(pf) {
			format = pf[i]
		}
		var oid uint32
		if i < len(st.paramOIDs) {
			oid = st.paramOIDs[i]
		}
		v, err := decodeParam(raw, format, oid)
		if err != nil {
			return fmt.Errorf("parameter $%d: %w", i+1, err)
		}
		p.params = append(p.params, v)
	}
	nr := r.i16()
	for i := 0; i < nr; i++ {
		p.formats = append(p.formats, int16(r.i16()))
	}
	if r.err != nil {
		return r.err
	}
	ss.portals[pname] = p
	return c.send(newMsg('2'))
}

func decodeParam(raw []byte, format int16, oid uint32) (any, error) {
	if format == 0 {
		s := string(raw)
		switch oid {
		case oidInt8, oidInt4, oidInt2:
			return strconv.ParseInt(s, 10, 64)
		case oidFloat8, oidFloat4, oidNumeric:
			return strconv.ParseFloat(s, 64)
		case oidBool:
			return s == "t" || s == "true" || s == "1", nil
		}
		return s, nil
	}
	switch {
	case oid == oidInt8 && len(raw) == 8:
		return int64(binary.BigEndian.Uint64(raw)), nil
	case oid == oidInt4 && len(raw) == 4:
		return int64(int32(binary.BigEndian.Uint32(raw))), nil
	case oid == oidInt2 && len(raw) == 2:
		return int64(int16(binary.BigEndian.Uint16(raw))), nil
	case oid == oidFloat8 && len(raw) == 8:
		return math.Float64frombits(binary.BigEndian.Uint64(raw)), nil
	case oid == oidFloat4 && len(raw) == 4:
		return float64(math.Float32frombits(binary.BigEndian.Uint32(raw))), nil
	case oid == oidBool && len(raw) == 1:
		return raw[0] != 0, nil
	case oid == oidText || oid == oidVarchar || oid == 0:
		return string(raw), nil
	case (oid == oidTimestamptz || oid == oidTimestamp) && len(raw) == 8:
		return pgEpoch.Add(time.Duration(int64(binary.BigEndian.Uint64(raw))) * time.Microsecond), nil
	}
	return nil, fmt.Errorf("binary format of type %d is not supported: send it as text", oid)
}

// run executes a portal once; Describe and Execute share the result.
func (s *Server) run(ctx context.Context, p *portal) error {
	if p.res != nil {
		return nil
	}
	if _, ok := sessionSetting(p.st.query); ok {
		p.res = &serving.Result{} // no columns: answered by its tag
		return nil
	}
	res, err := s.Q.Query(ctx, p.st.query, p.params...)
	if err != nil {
		return err
	}
	p.res = res
	return nil
}

func (s *Server) describe(ctx context.Context, ss *sessionState, b []byte, c *conn) error {
	if len(b) < 1 {
		return errors.New("describe: empty message")
	}
	name := cstr(b[1:])
	if b[0] == 'S' {
		st := ss.stmts[name]
		if st == nil {
			return fmt.Errorf("prepared statement %q does not exist", name)
		}
		pd := newMsg('t').i16(len(st.paramOIDs))
		for i, oid := range st.paramOIDs {
			if oid == 0 {
				oid = oidText
				st.paramOIDs[i] = oid
			}
			pd.i32(int(oid))
		}
		c.send(pd)
		if _, ok := sessionSetting(st.query); ok {
			return c.send(newMsg('n'))
		}
		// The columns without running the query: a zero-row run with
		// NULL parameters.
		args := make([]any, len(st.paramOIDs))
		res, err := s.Q.Query(ctx, "SELECT * FROM ("+strings.TrimRight(strings.TrimSpace(st.query), ";")+") LIMIT 0", args...)
		if err != nil {
			return err
		}
		return c.send(rowDescription(describeColumns(res), nil))
	}
	p := ss.portals[name]
	if p == nil {
		return fmt.Errorf("portal %q does not exist", name)
	}
	if err := s.run(ctx, p); err != nil {
		return err
	}
	if p.res.Columns == nil {
		return c.send(newMsg('n'))
	}
	return c.send(rowDescription(describeColumns(p.res), p.formats))
}

func (s *Server) execute(ctx context.Context, ss *sessionState, b []byte, c *conn) error {
	p := ss.portals[cstr(b)]
	if p == nil {
		return fmt.Errorf("portal %q does not exist", cstr(b))
	}
	if err := s.run(ctx, p); err != nil {
		return err
	}
	if p.res.Columns == nil {
		tag, _ := sessionSetting(p.st.query)
		return c.send(newMsg('C').str(tag))
	}
	err := sendRows(c, p.res, describeColumns(p.res), p.formats)
	p.res = nil // a portal executed again runs again
	return err
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) need(n int) bool {
	if r.err == nil && len(r.b) < n {
		r.err = errors.New("truncated message")
	}
	return r.err == nil
}

func (r *reader) str() string {
	i := strings.IndexByte(string(r.b), 0)
	if i < 0 {
		r.err = errors.New("unterminated string")
		return ""
	}
	s := string(r.b[:i])
	r.b = r.b[i+1:]
	return s
}

func (r *reader) i16() int {
	if !r.need(2) {
		return 0
	}
	v := int(int16(binary.BigEndian.Uint16(r.b)))
	r.b = r.b[2:]
	return v
}

func (r *reader) i32() int {
	if !r.need(4) {
		return 0
	}
	v := int(int32(binary.BigEndian.Uint32(r.b)))
	r.b = r.b[4:]
	return v
}

func (r *reader) bytes(n int) []byte {
	if !r.need(n) {
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}
