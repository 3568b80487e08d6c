package pgwire

import (
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/gridlake/gridlake/serving"
)

// A result goes to the client every flushRows rows or flushBytes bytes,
// whichever comes first: never held whole.
const (
	flushRows  = 256
	flushBytes = 64 << 10
)

// rowWriter is the RowSink that sends a query's rows as DataRows as the
// engine reads them.
type rowWriter struct {
	ss       *session
	describe bool    // send RowDescription first (simple protocol)
	formats  []int16 // result formats (extended protocol)
	// described are the columns Describe announced, if it was asked.
	described []column

	cols    []column
	n       int // rows sent
	pending int // bytes since the last flush
	buf     []byte
	ends    []int // end of each value in buf; -1 for NULL
	row     pgproto3.DataRow
}

func (w *rowWriter) Columns(cs []serving.Column, _ serving.Freshness) error {
	cols, err := columnsOf(cs)
	if err != nil {
		return err
	}
	if err := checkFormats(w.formats, len(cols)); err != nil {
		return err
	}
	// Types only: a subquery may rename duplicate column names.
	if w.described != nil && !slices.EqualFunc(w.described, cols, func(a, b column) bool { return a.oid == b.oid }) {
		return errorf(codeInternal, "the query's columns changed between Describe and Execute: run it again")
	}
	w.cols = cols
	if w.describe {
		w.ss.be.Send(rowDescription(cols, nil))
	}
	return nil
}

func (w *rowWriter) Row(vals []any) error {
	if len(vals) != len(w.cols) {
		return fmt.Errorf("row of %d values for %d columns", len(vals), len(w.cols))
	}
	if w.buf == nil {
		w.buf = make([]byte, 0, 256) // not nil: an empty value is not NULL
	}
	w.buf, w.ends = w.buf[:0], w.ends[:0]
	for i, v := range vals {
		b, ok, err := appendValue(w.buf, v, w.cols[i].oid, formatOf(w.formats, i))
		if err != nil {
			return fmt.Errorf("column %s: %w", w.cols[i].name, err)
		}
		w.buf = b
		if !ok {
			w.ends = append(w.ends, -1)
			continue
		}
		w.ends = append(w.ends, len(w.buf))
	}
	w.row.Values = w.row.Values[:0]
	start := 0
	for _, end := range w.ends {
		if end < 0 {
			w.row.Values = append(w.row.Values, nil)
			continue
		}
		w.row.Values = append(w.row.Values, w.buf[start:end])
		start = end
	}
	w.ss.be.Send(&w.row)
	w.n++
	w.pending += len(w.buf) + 4*len(vals) + 7
	if w.n%flushRows == 0 || w.pending >= flushBytes {
		w.pending = 0
		return w.ss.flush()
	}
	return nil
}

// complete is the CommandComplete of the rows sent.
func (w *rowWriter) complete() *pgproto3.CommandComplete {
	return &pgproto3.CommandComplete{CommandTag: fmt.Appendf(nil, "SELECT %d", w.n)}
}
