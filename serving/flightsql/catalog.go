package flightsql

import (
	"context"
	"slices"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/flight"
	fsql "github.com/apache/arrow/go/v17/arrow/flight/flightsql"
	"github.com/apache/arrow/go/v17/arrow/flight/flightsql/schema_ref"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// The catalog has no catalogs and one schema, main: the tables' names
// are used unqualified (or as main.name), as in POST /v1/sql and psql.
// The tables are those the SQL engine serves (serving.SQL.Tables): the
// lake's raw events and batch views as TABLE, the merged tables, built
// per query, as VIEW.
const (
	schemaName = "main"
	typeTable  = "TABLE"
	typeView   = "VIEW"
)

var tableTypes = []string{typeTable, typeView}

func (s *sqlServer) GetFlightInfoCatalogs(_ context.Context, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	return infoFor(desc, desc.Cmd, schema_ref.Catalogs), nil
}

func (s *sqlServer) DoGetCatalogs(context.Context) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema_ref.Catalogs)
	defer b.Release()
	return oneRecord(b)
}

func (s *sqlServer) GetFlightInfoSchemas(_ context.Context, _ fsql.GetDBSchemas, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	return infoFor(desc, desc.Cmd, schema_ref.DBSchemas), nil
}

func (s *sqlServer) DoGetDBSchemas(_ context.Context, cmd fsql.GetDBSchemas) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema_ref.DBSchemas)
	defer b.Release()
	if inCatalog(cmd.GetCatalog()) && matches(cmd.GetDBSchemaFilterPattern(), schemaName) {
		b.Field(0).AppendNull()
		b.Field(1).(*array.StringBuilder).Append(schemaName)
	}
	return oneRecord(b)
}

func (s *sqlServer) GetFlightInfoTables(_ context.Context, cmd fsql.GetTables, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	sc := schema_ref.Tables
	if cmd.GetIncludeSchema() {
		sc = schema_ref.TablesWithIncludedSchema
	}
	return infoFor(desc, desc.Cmd, sc), nil
}

func (s *sqlServer) DoGetTables(ctx context.Context, cmd fsql.GetTables) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	sc := schema_ref.Tables
	if cmd.GetIncludeSchema() {
		sc = schema_ref.TablesWithIncludedSchema
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	if !inCatalog(cmd.GetCatalog()) || !matches(cmd.GetDBSchemaFilterPattern(), schemaName) {
		return oneRecord(b)
	}
	tables, err := s.q.Tables(ctx)
	if err != nil {
		return nil, nil, statusOf(err)
	}
	for _, t := range tables {
		typ := typeTable
		if t.Merged {
			typ = typeView
		}
		if !matches(cmd.GetTableNameFilterPattern(), t.Name) || len(cmd.GetTableTypes()) > 0 && !slices.Contains(cmd.GetTableTypes(), typ) {
			continue
		}
		b.Field(0).AppendNull()
		b.Field(1).(*array.StringBuilder).Append(schemaName)
		b.Field(2).(*array.StringBuilder).Append(t.Name)
		b.Field(3).(*array.StringBuilder).Append(typ)
		if cmd.GetIncludeSchema() {
			b.Field(4).(*array.BinaryBuilder).Append(flight.SerializeSchema(t.Schema, memory.DefaultAllocator))
		}
	}
	return oneRecord(b)
}

func (s *sqlServer) GetFlightInfoTableTypes(_ context.Context, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	return infoFor(desc, desc.Cmd, schema_ref.TableTypes), nil
}

func (s *sqlServer) DoGetTableTypes(context.Context) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema_ref.TableTypes)
	defer b.Release()
	b.Field(0).(*array.StringBuilder).AppendValues(tableTypes, nil)
	return oneRecord(b)
}

// inCatalog: the tables belong to no catalog, so only a filter that asks
// for none (null or "") finds them.
func inCatalog(catalog *string) bool { return catalog == nil || *catalog == "" }

func matches(pattern *string, name string) bool { return pattern == nil || like(*pattern, name) }

// oneRecord answers with the builder's rows as one batch.
func oneRecord(b *array.RecordBuilder) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	rec := b.NewRecord()
	ch := make(chan flight.StreamChunk, 1)
	ch <- flight.StreamChunk{Data: rec}
	close(ch)
	return rec.Schema(), ch, nil
}
