package flightsql

import (
	"context"
	"errors"
	"fmt"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/flight"
	fsql "github.com/apache/arrow/go/v17/arrow/flight/flightsql"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gridlake/gridlake/serving"
)

// sqlServer answers Flight SQL commands from the serving layer's SQL
// engine. It keeps no state per client: tickets and prepared statement
// handles carry the statement itself (handle.go).
type sqlServer struct {
	fsql.BaseServer
	q Querier
	// maxHandle bounds a ticket or handle a client sends back.
	maxHandle int
}

func newSQLServer(q Querier, version string) (*sqlServer, error) {
	s := &sqlServer{q: q, maxHandle: int(q.MaxQueryBytes())*4 + 64<<10}
	for id, v := range map[fsql.SqlInfo]any{
		fsql.SqlInfoFlightSqlServerName:         "gridlake",
		fsql.SqlInfoFlightSqlServerVersion:      version,
		fsql.SqlInfoFlightSqlServerArrowVersion: "17.0.0",
		fsql.SqlInfoFlightSqlServerReadOnly:     true,
		fsql.SqlInfoFlightSqlServerSql:          true,
		fsql.SqlInfoFlightSqlServerSubstrait:    false,
		fsql.SqlInfoFlightSqlServerTransaction:  int32(fsql.SqlTransactionNone),
		fsql.SqlInfoFlightSqlServerCancel:       false,
		fsql.SqlInfoDDLCatalog:                  false,
		fsql.SqlInfoDDLSchema:                   false,
		fsql.SqlInfoDDLTable:                    false,
		fsql.SqlInfoIdentifierQuoteChar:         `"`,
		fsql.SqlInfoAllTablesAreASelectable:     true,
		fsql.SqlInfoTransactionsSupported:       false,
	} {
		if err := s.RegisterSqlInfo(id, v); err != nil {
			return nil, fmt.Errorf("Flight SQL info %d: %w", id, err)
		}
	}
	return s, nil
}

// GetFlightInfoStatement checks the query and answers with a ticket that
// holds it: the query runs when the ticket is redeemed (DoGet).
func (s *sqlServer) GetFlightInfoStatement(ctx context.Context, cmd fsql.StatementQuery, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	if len(cmd.GetTransactionId()) > 0 {
		return nil, status.Error(codes.InvalidArgument, "transactions are not supported: the SQL is read-only")
	}
	if err := s.checkQuery(ctx, cmd.GetQuery()); err != nil {
		return nil, err
	}
	ticket, err := fsql.CreateStatementQueryTicket([]byte(cmd.GetQuery()))
	if err != nil {
		return nil, status.Errorf(codes.Internal, "make a ticket: %v", err)
	}
	return infoFor(desc, ticket, nil), nil
}

func (s *sqlServer) DoGetStatement(ctx context.Context, t fsql.StatementQueryTicket) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	text := string(t.GetStatementHandle())
	if int64(len(text)) > s.q.MaxQueryBytes() {
		return nil, nil, s.tooLong()
	}
	return s.run(ctx, text, nil)
}

// CreatePreparedStatement checks the query; the handle is the statement.
func (s *sqlServer) CreatePreparedStatement(ctx context.Context, req fsql.ActionCreatePreparedStatementRequest) (fsql.ActionCreatePreparedStatementResult, error) {
	var res fsql.ActionCreatePreparedStatementResult
	if len(req.GetTransactionId()) > 0 {
		return res, status.Error(codes.InvalidArgument, "transactions are not supported: the SQL is read-only")
	}
	if err := s.checkQuery(ctx, req.GetQuery()); err != nil {
		return res, err
	}
	h, err := encodeHandle(handle{Query: req.GetQuery()})
	if err != nil {
		return res, status.Errorf(codes.Internal, "make a handle: %v", err)
	}
	res.Handle = h
	return res, nil
}

// ClosePreparedStatement has nothing to release: the server keeps no
// statement state.
func (s *sqlServer) ClosePreparedStatement(context.Context, fsql.ActionClosePreparedStatementRequest) error {
	return nil
}

// DoPutPreparedStatementQuery binds one row of parameters: the answer is a
// new handle holding the query and its values.
func (s *sqlServer) DoPutPreparedStatementQuery(ctx context.Context, cmd fsql.PreparedStatementQuery, rdr flight.MessageReader, _ flight.MetadataWriter) ([]byte, error) {
	query, _, err := decodeHandle(cmd.GetPreparedStatementHandle(), s.maxHandle)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	var params []param
	rows := int64(0)
	for rdr.Next() {
		rec := rdr.Record()
		if rec.NumCols() > maxParams {
			return nil, status.Errorf(codes.InvalidArgument, "a prepared statement binds at most %d parameters", maxParams)
		}
		if rows+rec.NumRows() > 1 {
			return nil, status.Error(codes.InvalidArgument, "bind one row of parameters per execution: a query runs once")
		}
		if rec.NumRows() == 1 {
			if params, err = paramsOf(rec, 0); err != nil {
				return nil, status.Error(codes.InvalidArgument, err.Error())
			}
		}
		rows += rec.NumRows()
	}
	if err := rdr.Err(); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "read the parameters: %v", err)
	}
	h, err := encodeHandle(handle{Query: query, Params: params})
	if err != nil {
		return nil, status.Errorf(codes.Internal, "make a handle: %v", err)
	}
	if len(h) > s.maxHandle {
		return nil, status.Errorf(codes.InvalidArgument, "the bound parameters make the statement longer than %d bytes", s.maxHandle)
	}
	return h, nil
}

func (s *sqlServer) GetFlightInfoPreparedStatement(ctx context.Context, cmd fsql.PreparedStatementQuery, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	query, _, err := decodeHandle(cmd.GetPreparedStatementHandle(), s.maxHandle)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if err := s.checkQuery(ctx, query); err != nil {
		return nil, err
	}
	// The command itself is the ticket: DoGet routes it to
	// DoGetPreparedStatement.
	return infoFor(desc, desc.Cmd, nil), nil
}

func (s *sqlServer) DoGetPreparedStatement(ctx context.Context, cmd fsql.PreparedStatementQuery) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	query, args, err := decodeHandle(cmd.GetPreparedStatementHandle(), s.maxHandle)
	if err != nil {
		return nil, nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return s.run(ctx, query, args)
}

func (s *sqlServer) checkQuery(ctx context.Context, text string) error {
	if int64(len(text)) > s.q.MaxQueryBytes() {
		return s.tooLong()
	}
	if err := s.q.Check(ctx, text); err != nil {
		return statusOf(err)
	}
	return nil
}

func (s *sqlServer) tooLong() error {
	return status.Errorf(codes.InvalidArgument, "the query is longer than %d bytes (serve.sql_max_body_bytes): send a shorter query", s.q.MaxQueryBytes())
}

// infoFor is a FlightInfo of one endpoint, redeemed here.
func infoFor(desc *flight.FlightDescriptor, ticket []byte, schema *arrow.Schema) *flight.FlightInfo {
	info := &flight.FlightInfo{FlightDescriptor: desc, TotalRecords: -1, TotalBytes: -1,
		Endpoint: []*flight.FlightEndpoint{{Ticket: &flight.Ticket{Ticket: ticket}}}}
	if schema != nil {
		info.Schema = flight.SerializeSchema(schema, memory.DefaultAllocator)
	}
	return info
}

// run starts the query and returns once its schema is known: its batches
// follow on the channel, each sent as DuckDB made it. The query holds its
// engine thread while the client reads, as over the PostgreSQL port; a
// client gone ends it.
func (s *sqlServer) run(ctx context.Context, text string, args []any) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	sink := &chunkSink{ctx: ctx, schema: make(chan *arrow.Schema, 1), chunks: make(chan flight.StreamChunk)}
	failed := make(chan error, 1)
	go func() {
		defer close(sink.chunks)
		var err error
		func() {
			// The engine raises a query's panic again here, off gRPC's
			// own recovery: it must end this call, not the process.
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("the query panicked: %v", p)
				}
			}()
			err = s.q.StreamArrow(ctx, text, args, sink)
		}()
		switch {
		case err == nil:
		case !sink.started:
			failed <- err
		default:
			select {
			case sink.chunks <- flight.StreamChunk{Err: statusOf(err)}:
			case <-ctx.Done():
			}
		}
	}()
	select {
	case sc := <-sink.schema:
		return sc, sink.chunks, nil
	case err := <-failed:
		return nil, nil, statusOf(err)
	}
}

// chunkSink hands DuckDB's record batches to DoGet's writer.
type chunkSink struct {
	ctx     context.Context
	schema  chan *arrow.Schema
	chunks  chan flight.StreamChunk
	started bool
}

func (c *chunkSink) Schema(sc *arrow.Schema, _ serving.Freshness) error {
	c.started = true
	c.schema <- sc
	return nil
}

func (c *chunkSink) Record(rec arrow.Record) error {
	rec.Retain() // DoGet releases it once written
	select {
	case c.chunks <- flight.StreamChunk{Data: rec}:
		return nil
	case <-c.ctx.Done():
		rec.Release()
		return c.ctx.Err()
	}
}

// statusOf maps a query's error to a gRPC status, as the HTTP endpoint
// maps it to a status code.
func statusOf(err error) error {
	var qe *serving.QueryError
	if errors.As(err, &qe) {
		code := map[serving.ErrorKind]codes.Code{serving.KindRejected: codes.PermissionDenied, serving.KindInvalid: codes.InvalidArgument,
			serving.KindTimeout: codes.DeadlineExceeded, serving.KindTooLarge: codes.ResourceExhausted,
			serving.KindUnavailable: codes.Unavailable, serving.KindBusy: codes.ResourceExhausted}[qe.Kind]
		if code == codes.OK {
			code = codes.Unknown
		}
		return status.Error(code, qe.Msg)
	}
	if errors.Is(err, context.Canceled) {
		return status.Error(codes.Canceled, err.Error())
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codes.Internal, err.Error())
}
