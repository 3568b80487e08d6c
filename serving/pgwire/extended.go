package pgwire

import (
	"context"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/gridlake/gridlake/serving"
)

// entryOverhead is what a statement or portal costs beyond its bytes, for
// the session's MaxSessionBytes.
const entryOverhead = 256

type stmt struct {
	query     string // one statement; "" for an empty query
	setting   string // its command tag if it is a session setting answered without running
	paramOIDs []uint32
	size      int
}

type portal struct {
	st      *stmt
	params  []any
	formats []int16  // result formats
	cols    []column // set by Describe
	size    int
}

// hold accounts delta more bytes to the session, refusing past its limit.
func (ss *session) hold(delta int) error {
	if ss.held+delta > ss.s.MaxSessionBytes {
		return errorf(codeLimit, "the session's prepared statements and portals would take %d bytes, above the limit of %d bytes set in serve.pg_max_session_bytes: close some",
			ss.held+delta, ss.s.MaxSessionBytes)
	}
	ss.held += delta
	return nil
}

func (ss *session) parse(m *pgproto3.Parse) error {
	stmts, n, err := scan(m.Query)
	if err != nil {
		return err
	}
	if len(stmts) > 1 {
		return errorf(codeSyntax, "cannot insert multiple commands into a prepared statement")
	}
	old := ss.stmts[m.Name]
	if old != nil && m.Name != "" {
		return errorf("42P05", "prepared statement %q already exists", m.Name)
	}
	n = max(n, len(m.ParameterOIDs))
	size := entryOverhead + len(m.Name) + len(m.Query) + 4*n
	if old != nil {
		size -= old.size
	}
	// Checked before the parameter list is allocated.
	if err := ss.hold(size); err != nil {
		return err
	}
	st := &stmt{paramOIDs: make([]uint32, n), size: entryOverhead + len(m.Name) + len(m.Query) + 4*n}
	copy(st.paramOIDs, m.ParameterOIDs)
	if len(stmts) == 1 {
		st.query = stmts[0]
		st.setting, _ = sessionSetting(st.query)
	}
	ss.stmts[m.Name] = st
	ss.be.Send(&pgproto3.ParseComplete{})
	return nil
}

func (ss *session) bind(m *pgproto3.Bind) error {
	st := ss.stmts[m.PreparedStatement]
	if st == nil {
		return errorf(codeNoStatement, "prepared statement %q does not exist", m.PreparedStatement)
	}
	old := ss.portals[m.DestinationPortal]
	if old != nil && m.DestinationPortal != "" {
		return errorf("42P03", "portal %q already exists", m.DestinationPortal)
	}
	np, nf := len(m.Parameters), len(m.ParameterFormatCodes)
	if np != len(st.paramOIDs) {
		return errorf(codeProtocol, "bind message supplies %d parameters, but prepared statement %q requires %d", np, m.PreparedStatement, len(st.paramOIDs))
	}
	if nf > 1 && nf != np {
		return errorf(codeProtocol, "bind message has %d parameter formats but %d parameters", nf, np)
	}
	size := entryOverhead + len(m.DestinationPortal) + 16*np + 2*len(m.ResultFormatCodes)
	for _, raw := range m.Parameters {
		size += len(raw)
	}
	delta := size
	if old != nil {
		delta -= old.size
	}
	if err := ss.hold(delta); err != nil {
		return err
	}
	p := &portal{st: st, params: make([]any, np), formats: append([]int16(nil), m.ResultFormatCodes...), size: size}
	for i, raw := range m.Parameters {
		if raw == nil {
			continue // NULL
		}
		v, err := decodeParam(raw, formatOf(m.ParameterFormatCodes, i), st.paramOIDs[i])
		if err != nil {
			ss.held -= delta
			return errorf("22P02", "parameter $%d: %v", i+1, err)
		}
		p.params[i] = v
	}
	ss.portals[m.DestinationPortal] = p
	ss.be.Send(&pgproto3.BindComplete{})
	return nil
}

func (ss *session) close(m *pgproto3.Close) {
	if m.ObjectType == 'S' {
		if st := ss.stmts[m.Name]; st != nil {
			ss.held -= st.size
			delete(ss.stmts, m.Name)
		}
		return
	}
	ss.dropPortal(m.Name)
}

func (ss *session) dropPortal(name string) {
	if p := ss.portals[name]; p != nil {
		ss.held -= p.size
		delete(ss.portals, name)
	}
}

func (ss *session) describe(ctx context.Context, m *pgproto3.Describe) error {
	if m.ObjectType == 'S' {
		st := ss.stmts[m.Name]
		if st == nil {
			return errorf(codeNoStatement, "prepared statement %q does not exist", m.Name)
		}
		described := append([]uint32(nil), st.paramOIDs...)
		for i, oid := range described {
			if oid == 0 {
				// Undeclared: the type of a $n::type cast in the query, else
				// text (the client sends text, DuckDB casts it). Text stays
				// undeclared for Bind, which infers a zoned timestamp (JDBC's
				// setTimestamp) as PostgreSQL would.
				described[i] = castOID(st.query, i+1)
				if described[i] != oidText {
					st.paramOIDs[i] = described[i]
				}
			}
		}
		ss.be.Send(&pgproto3.ParameterDescription{ParameterOIDs: described})
		if st.query == "" || st.setting != "" {
			ss.be.Send(&pgproto3.NoData{})
			return nil
		}
		cols, err := ss.columns(ctx, st.query, make([]any, len(st.paramOIDs)))
		if err != nil {
			return err
		}
		ss.be.Send(rowDescription(cols, nil))
		return nil
	}
	p := ss.portals[m.Name]
	if p == nil {
		return errorf(codeNoPortal, "portal %q does not exist", m.Name)
	}
	if p.st.query == "" || p.st.setting != "" {
		ss.be.Send(&pgproto3.NoData{})
		return nil
	}
	cols, err := ss.columns(ctx, p.st.query, p.params)
	if err != nil {
		return err
	}
	if err := checkFormats(p.formats, len(cols)); err != nil {
		return err
	}
	p.cols = cols
	ss.be.Send(rowDescription(cols, p.formats))
	return nil
}

// errColumnsOnly stops a run once its columns are known.
var errColumnsOnly = errors.New("columns only")

// columnCatcher is the RowSink of a run for its columns only.
type columnCatcher struct{ cols []serving.Column }

func (c *columnCatcher) Columns(cols []serving.Column, _ serving.Freshness) error {
	c.cols = cols
	return errColumnsOnly
}

func (c *columnCatcher) Row([]any) error { return errColumnsOnly }

// columns describes a query's result without reading it: as a zero-row
// subquery (cheap: the engine plans it and reads nothing), or, for a
// statement that cannot be a subquery (SHOW, DESCRIBE), by starting it
// and stopping at its columns. Execute runs the query for real.
func (ss *session) columns(ctx context.Context, q string, args []any) ([]column, error) {
	var c columnCatcher
	// Newlines, so a trailing -- comment ends before the parenthesis.
	err := ss.run(ctx, "SELECT * FROM (\n"+q+"\n) LIMIT 0", args, &c)
	if err != nil && !errors.Is(err, errColumnsOnly) {
		if errors.Is(err, errClientGone) || sqlState(err) == codeCanceled {
			return nil, err
		}
		c = columnCatcher{}
		err = ss.run(ctx, q, args, &c)
	}
	if err != nil && !errors.Is(err, errColumnsOnly) {
		return nil, err
	}
	ss.restoreNames(ctx, q, args, c.cols)
	return columnsOf(c.cols)
}

// restoreNames undoes DuckDB's renaming of duplicate column names (a,
// a_1) that the zero-row subquery causes, so Describe names the columns as
// the simple protocol and HTTP do: DESCRIBE of the statement itself gives
// them as written. On any doubt the names stay.
func (ss *session) restoreNames(ctx context.Context, q string, args []any, cols []serving.Column) {
	if !serving.LooksRenamed(cols) {
		return
	}
	var names nameCatcher
	if ss.run(ctx, "DESCRIBE "+strings.TrimRight(strings.TrimSpace(q), "; \t\n"), args, &names) != nil || len(names) != len(cols) {
		return
	}
	for i := range cols {
		cols[i].Name = names[i]
	}
}

// nameCatcher keeps the first column of each row: DESCRIBE's column_name.
type nameCatcher []string

func (n *nameCatcher) Columns([]serving.Column, serving.Freshness) error { return nil }

func (n *nameCatcher) Row(vals []any) error {
	name, ok := vals[0].(string)
	if !ok {
		return errors.New("DESCRIBE gave no column name")
	}
	*n = append(*n, name)
	return nil
}

func (ss *session) execute(ctx context.Context, m *pgproto3.Execute) error {
	p := ss.portals[m.Portal]
	if p == nil {
		return errorf(codeNoPortal, "portal %q does not exist", m.Portal)
	}
	switch {
	case p.st.query == "":
		ss.be.Send(&pgproto3.EmptyQueryResponse{})
		return nil
	case p.st.setting != "":
		ss.be.Send(&pgproto3.CommandComplete{CommandTag: []byte(p.st.setting)})
		return nil
	}
	// The whole result, whatever m.MaxRows: portals are not suspended.
	w := &rowWriter{ss: ss, formats: p.formats, described: p.cols}
	if err := ss.run(ctx, p.st.query, p.params, w); err != nil {
		return err
	}
	ss.be.Send(w.complete())
	return nil
}

// checkFormats: result formats are none (text), one for all, or one per column.
func checkFormats(formats []int16, ncols int) error {
	if len(formats) > 1 && len(formats) != ncols {
		return errorf(codeProtocol, "bind message has %d result formats but query has %d columns", len(formats), ncols)
	}
	for _, f := range formats {
		if f != 0 && f != 1 {
			return errorf(codeProtocol, "unsupported format code: %d", f)
		}
	}
	return nil
}
