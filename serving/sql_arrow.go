package serving

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"sort"
	"strconv"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/marcboeker/go-duckdb"
)

// Schema metadata keys of an Arrow answer: its freshness, as the HTTP
// answer's X-Gridlake-* headers say it.
const (
	MetaBatchVersion = "gridlake.batch_version"
	MetaSpeedLag     = "gridlake.speed_lag"
)

// ArrowSink receives a query's answer as DuckDB's own Arrow record
// batches: Schema once, then Record per batch. A record is released after
// the call returns: Retain what must outlive it. A sink's error stops the
// query and is returned as is.
type ArrowSink interface {
	Schema(s *arrow.Schema, fr Freshness) error
	Record(rec arrow.Record) error
}

// StreamArrow runs one read-only SELECT like Stream, through the same
// sandbox check, manifest snapshot, merged views, confined engine thread,
// timeout and row and byte bounds, and hands its answer to sink as the
// Arrow record batches DuckDB exports: no value passes through Go one by
// one. The sink is called on the engine thread, so a slow reader holds a
// thread (serve.sql_max_concurrent), as with Stream, never the views.
func (q *SQL) StreamArrow(ctx context.Context, text string, args []any, sink ArrowSink) error {
	ts := &trackedArrowSink{ArrowSink: sink}
	return q.onEngine(ctx, func() error { return ts.err }, func(ctx context.Context) error {
		return q.checked(ctx, text, func(conn *sql.Conn, refs map[string]bool, text string) (bool, error) {
			return q.arrowAt(ctx, conn, refs, text, args, ts)
		})
	})
}

type trackedArrowSink struct {
	ArrowSink
	err error
}

func (t *trackedArrowSink) Schema(s *arrow.Schema, fr Freshness) error {
	t.err = t.ArrowSink.Schema(s, fr)
	return t.err
}

func (t *trackedArrowSink) Record(rec arrow.Record) error {
	t.err = t.ArrowSink.Record(rec)
	return t.err
}

// arrowAt is queryAt for Arrow: the bounded query's result, as DuckDB's
// Arrow export, goes to sink batch by batch.
func (q *SQL) arrowAt(ctx context.Context, conn *sql.Conn, refs map[string]bool, text string, args []any, sink ArrowSink) (started bool, err error) {
	defer dropTemp(conn)
	if err := q.clockMacros(ctx, conn, text); err != nil {
		return false, err
	}
	var rr array.RecordReader
	fr, err := q.at(ctx, conn, refs, true, func() (err error) {
		rr, err = arrowQuery(ctx, conn, q.bounded(text), args)
		return err
	})
	if err != nil {
		return false, err
	}
	defer rr.Release()
	schema := q.answerSchema(ctx, conn, text, args, rr.Schema(), fr)
	if err := sink.Schema(schema, fr); err != nil {
		return true, err
	}
	n, size := int64(0), int64(0)
	for rr.Next() {
		rec := rr.Record()
		// A backstop to bounded(), as in queryAt.
		n += rec.NumRows()
		if n > int64(q.o.MaxRows) {
			return true, q.tooManyRows()
		}
		size += textBytes(rec)
		if size > q.o.MaxResultBytes {
			return true, q.tooManyBytes()
		}
		out := array.NewRecord(schema, rec.Columns(), rec.NumRows())
		err := sink.Record(out)
		out.Release()
		if err != nil {
			return true, err
		}
	}
	if err := rr.Err(); err != nil {
		if ctx.Err() != nil {
			return true, ctx.Err()
		}
		return true, q.duckErr(err)
	}
	return true, nil
}

// answerSchema is the schema of an answer: DuckDB's, with the column names
// as the query wrote them (see originalNames) and the freshness as
// metadata.
func (q *SQL) answerSchema(ctx context.Context, conn *sql.Conn, text string, args []any, s *arrow.Schema, fr Freshness) *arrow.Schema {
	fields := append([]arrow.Field(nil), s.Fields()...)
	cols := make([]Column, len(fields))
	for i, f := range fields {
		cols[i] = Column{Name: f.Name}
	}
	originalNames(ctx, conn, text, args, cols)
	for i := range fields {
		fields[i].Name = cols[i].Name
	}
	md := arrow.NewMetadata([]string{MetaBatchVersion, MetaSpeedLag},
		[]string{strconv.FormatInt(fr.BatchVersion, 10), strconv.FormatInt(fr.SpeedLag, 10)})
	return arrow.NewSchema(fields, &md)
}

// textBytes counts the bytes of a record's strings and blobs, as queryAt
// counts them.
func textBytes(rec arrow.Record) int64 {
	var n int64
	for _, col := range rec.Columns() {
		switch a := col.(type) {
		case *array.String:
			if a.Len() > 0 {
				n += int64(a.ValueOffset(a.Len()-1)) + int64(len(a.Value(a.Len()-1))) - int64(a.ValueOffset(0))
			}
		case *array.Binary:
			if a.Len() > 0 {
				n += int64(a.ValueOffset(a.Len()-1)) + int64(len(a.Value(a.Len()-1))) - int64(a.ValueOffset(0))
			}
		}
	}
	return n
}

// arrowQuery runs query on conn through go-duckdb's Arrow interface.
func arrowQuery(ctx context.Context, conn *sql.Conn, query string, args []any) (rr array.RecordReader, err error) {
	err = conn.Raw(func(dc any) error {
		a, err := duckdb.NewArrowFromConn(dc.(driver.Conn))
		if err != nil {
			return err
		}
		rr, err = a.QueryContext(ctx, query, args...)
		return err
	})
	return rr, err
}

// Table is a table an analyst may query, with the Arrow schema a SELECT *
// of it answers.
type Table struct {
	Name string
	// Merged tables are built per query from the batch views and the
	// speed layer; the others are the lake's raw events and batch views.
	Merged bool
	Schema *arrow.Schema
}

// Tables lists the tables an analyst may query now, by name: the lake
// tables the current manifest holds and every merged table. Their schemas
// come from DuckDB itself, with the merged tables' speed side left empty,
// so listing them costs no merge.
func (q *SQL) Tables(ctx context.Context) ([]Table, error) {
	var out []Table
	err := q.onEngine(ctx, func() error { return nil }, func(ctx context.Context) error {
		conn, err := q.db.Conn(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		defer dropTemp(conn)
		refs := map[string]bool{}
		for name := range mergedTables {
			refs[name] = true
		}
		_, err = q.at(ctx, conn, refs, false, func() error {
			out = out[:0]
			for _, name := range lakeTables {
				if q.tables[name] {
					out = append(out, Table{Name: name})
				}
			}
			for name := range mergedTables {
				out = append(out, Table{Name: name, Merged: true})
			}
			for i := range out {
				rr, err := arrowQuery(ctx, conn, "SELECT * FROM "+out[i].Name+" LIMIT 0", nil)
				if err != nil {
					return err
				}
				out[i].Schema = rr.Schema()
				rr.Release()
			}
			return nil
		})
		return err
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// Check runs the sandbox's statement check alone: nil if text would be
// run, else the QueryError a query would get.
func (q *SQL) Check(ctx context.Context, text string) error {
	return q.onEngine(ctx, func() error { return nil }, func(ctx context.Context) error {
		if q.skipCheck {
			return nil
		}
		conn, err := q.db.Conn(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		_, _, err = checkQuery(ctx, conn, text, q.deniedMacros)
		return err
	})
}

// MaxQueryBytes is the longest query text a client may send
// (serve.sql_max_body_bytes).
func (q *SQL) MaxQueryBytes() int64 { return q.o.MaxBodyBytes }
