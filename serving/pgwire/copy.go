package pgwire

import (
	"context"
	"encoding/csv"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/gridlake/gridlake/serving"
)

// COPY (query) TO STDOUT, which psql's \copy sends: the query's rows as
// COPY data, in the text format or as CSV. Any other COPY is refused by
// the engine's sandbox.
var copyOut = regexp.MustCompile(`(?is)^\s*COPY\s*\((.*)\)\s*TO\s+STDOUT\s*(.*?)\s*;?\s*$`)

// copyFormat reads the options of a COPY TO STDOUT: text (default) or
// csv, with or without a header line.
func copyFormat(opts string) (csvOut, header bool, err error) {
	o := strings.ToLower(strings.NewReplacer("(", " ", ")", " ", ",", " ", "=", " ").Replace(opts))
	f := strings.Fields(o)
	for i := 0; i < len(f); i++ {
		switch f[i] {
		case "with", "true", "on", "1":
		case "format":
			if i+1 < len(f) {
				i++
				switch f[i] {
				case "csv":
					csvOut = true
				case "text":
				default:
					return false, false, errorf(codeFeature, "COPY format %s is not supported: use text or csv", f[i])
				}
			}
		case "csv":
			csvOut = true
		case "header":
			header = true
			if i+1 < len(f) && (f[i+1] == "false" || f[i+1] == "off" || f[i+1] == "0") {
				header = false
				i++
			}
		default:
			return false, false, errorf(codeFeature, "COPY option %q is not supported: COPY (query) TO STDOUT [WITH (FORMAT csv|text, HEADER)]", f[i])
		}
	}
	return csvOut, header, nil
}

// copyStatement reports whether st is a COPY (query) TO STDOUT and, if so,
// answers it.
func (ss *session) copyStatement(ctx context.Context, st string) (bool, error) {
	m := copyOut.FindStringSubmatch(st)
	if m == nil {
		if f := strings.Fields(st); len(f) > 0 && strings.EqualFold(f[0], "copy") {
			return true, errorf(codeFeature, "only COPY (SELECT ...) TO STDOUT is supported (psql: \\copy (SELECT ...) TO STDOUT or TO 'file'): the server is read-only and writes no files")
		}
		return false, nil
	}
	csvOut, header, err := copyFormat(m[2])
	if err != nil {
		return true, err
	}
	w := &copyWriter{ss: ss, csv: csvOut, header: header}
	if err := ss.run(ctx, m[1], nil, w); err != nil {
		return true, err
	}
	ss.be.Send(&pgproto3.CopyDone{})
	ss.be.Send(&pgproto3.CommandComplete{CommandTag: fmt.Appendf(nil, "COPY %d", w.n)})
	return true, nil
}

// copyWriter is the RowSink that sends rows as COPY data, a line each.
type copyWriter struct {
	ss          *session
	csv, header bool
	cols        []column
	n           int
	line        strings.Builder
	rec         []string
}

func (w *copyWriter) Columns(cs []serving.Column, _ serving.Freshness) error {
	cols, err := columnsOf(cs)
	if err != nil {
		return err
	}
	w.cols = cols
	w.ss.be.Send(&pgproto3.CopyOutResponse{OverallFormat: 0, ColumnFormatCodes: make([]uint16, len(cols))})
	if w.csv && w.header {
		names := make([]string, len(cols))
		for i, c := range cols {
			names[i] = c.name
		}
		return w.send(names, nil)
	}
	return nil
}

func (w *copyWriter) Row(vals []any) error {
	w.rec = w.rec[:0]
	nulls := make([]bool, len(vals))
	for i, v := range vals {
		if v == nil {
			nulls[i] = true
			w.rec = append(w.rec, "")
			continue
		}
		w.rec = append(w.rec, text(v, w.cols[i].oid))
	}
	w.n++
	if err := w.send(w.rec, nulls); err != nil {
		return err
	}
	if w.n%flushRows == 0 {
		return w.ss.flush()
	}
	return nil
}

// send writes one line: CSV (nulls empty) or PostgreSQL's text format
// (tab-separated, \N for null, backslash escapes).
func (w *copyWriter) send(rec []string, nulls []bool) error {
	w.line.Reset()
	if w.csv {
		cw := csv.NewWriter(&w.line)
		if err := cw.Write(rec); err != nil {
			return err
		}
		cw.Flush()
	} else {
		for i, s := range rec {
			if i > 0 {
				w.line.WriteByte('\t')
			}
			if nulls != nil && nulls[i] {
				w.line.WriteString(`\N`)
				continue
			}
			w.line.WriteString(copyEscape.Replace(s))
		}
		w.line.WriteByte('\n')
	}
	w.ss.be.Send(&pgproto3.CopyData{Data: []byte(w.line.String())})
	return nil
}

var copyEscape = strings.NewReplacer(`\`, `\\`, "\t", `\t`, "\n", `\n`, "\r", `\r`)
