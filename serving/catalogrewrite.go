package serving

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// The sandbox points a query's catalog references at the private catalog
// (pgcatalog.go) on the parse tree, then has DuckDB print the tree back as
// SQL: pg_catalog.X and information_schema.X become the private tables,
// the functions clients call on connect become the private macros,
// PostgreSQL casts to regclass/name/oid and COLLATE "default" become what
// DuckDB understands, SHOW TABLES, SHOW <setting> and DESCRIBE <table>
// read the catalog instead of DuckDB's. A query without any of these runs
// exactly as written.

// pgOperator is psql's OPERATOR(pg_catalog.~) form, which DuckDB's parser
// reads without its operator.
var pgOperator = regexp.MustCompile(`(?i)OPERATOR\s*\(\s*pg_catalog\s*\.\s*([~!=<>*+\-/|&^%@#]+)\s*\)`)

// pgCatalogNames are the relations of the private pg_catalog schema, and
// infoSchemaNames those of information_schema.
var pgCatalogNames, infoSchemaNames = func() (map[string]bool, map[string]bool) {
	pg, is := map[string]bool{}, map[string]bool{}
	for _, r := range catalogRelations(&Catalog{}) {
		if r.schema == pgSchema {
			pg[r.name] = true
		} else {
			is[r.name] = true
		}
	}
	return pg, is
}()

// catalogRewrite rewrites a parse tree in place; rewrote says whether it
// changed anything.
type catalogRewrite struct {
	conn    *sql.Conn
	ctx     context.Context
	rewrote bool
}

// tableRef handles a BASE_TABLE that names a catalog relation.
func (r *catalogRewrite) tableRef(v map[string]any, sc scope) (handled bool, err error) {
	raw, _ := v["table_name"].(string)
	name := strings.ToLower(raw)
	schema, _ := v["schema_name"].(string)
	catalog, _ := v["catalog_name"].(string)
	schema, catalog = strings.ToLower(schema), strings.ToLower(catalog)
	if catalog != "" && catalog != DatabaseName && catalog != "memory" && catalog != "system" {
		return false, nil
	}
	target := ""
	switch {
	case schema == "" && sc[name]:
		return false, nil // the query's own CTE
	case schema == pgSchema && pgCatalogNames[name], schema == isSchema && infoSchemaNames[name]:
		return true, nil // the catalog itself (as rewritten)
	case schema == "pg_catalog" || schema == "" && !isServedTable(name) && pgCatalogNames[name]:
		if !pgCatalogNames[name] {
			return true, queryErr(KindRejected, "pg_catalog.%s is not available here: the catalog has %s", raw, names(pgCatalogNames))
		}
		target = pgSchema
	case schema == "information_schema":
		if !infoSchemaNames[name] {
			return true, queryErr(KindRejected, "information_schema.%s is not available: read information_schema.tables, .columns, .views or .schemata", raw)
		}
		target = isSchema
	case isServedTable(name) && (schema == "public" || catalog == DatabaseName):
		// PostgreSQL's default schema and the database's name, as BI tools
		// qualify tables: the served table itself.
		v["schema_name"], v["catalog_name"] = "", ""
		r.rewrote = true
		return false, nil
	default:
		return false, nil
	}
	v["schema_name"], v["catalog_name"], v["table_name"] = target, "", name
	r.rewrote = true
	return true, nil
}

func names(m map[string]bool) string {
	var out []string
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// function points a call of a catalog function at the private macro.
func (r *catalogRewrite) function(v map[string]any) {
	name, _ := v["function_name"].(string)
	schema, _ := v["schema"].(string)
	catalog, _ := v["catalog"].(string)
	name, schema = strings.ToLower(name), strings.ToLower(schema)
	if catalog != "" || (schema != "" && schema != "pg_catalog" && schema != "information_schema") {
		return
	}
	if schema == "information_schema" && !strings.HasPrefix(name, "_pg_") {
		return
	}
	if name == "format" {
		r.pgFormat(v)
		return
	}
	if _, ok := catalogMacros[name]; !ok {
		if schema == "pg_catalog" {
			// pg_catalog.array_to_string and friends: DuckDB's own built-in,
			// checked by name as any other.
			v["schema"] = ""
			r.rewrote = true
		}
		return
	}
	v["function_name"], v["schema"] = name, pgSchema
	r.rewrote = true
}

// pgFormat turns PostgreSQL's format('%I.%I', a, b), which DuckDB's
// format ({} placeholders) does not read, into printf: %s as is, %I and
// %L through quote_ident and quote_literal. A format string with DuckDB's
// {} or PostgreSQL's positions (%1$s) is left alone.
func (r *catalogRewrite) pgFormat(v map[string]any) {
	args, _ := v["children"].([]any)
	if len(args) == 0 {
		return
	}
	c, _ := args[0].(map[string]any)
	val, _ := c["value"].(map[string]any)
	typ, _ := val["type"].(map[string]any)
	f, _ := val["value"].(string)
	if c["class"] != "CONSTANT" || typ == nil || typ["id"] != "VARCHAR" || !strings.Contains(f, "%") || strings.Contains(f, "{") {
		return
	}
	var out strings.Builder
	next := 1
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			out.WriteByte(f[i])
			continue
		}
		if i+1 >= len(f) {
			return
		}
		i++
		switch f[i] {
		case '%':
			out.WriteString("%%")
			continue
		case 's', 'I', 'L':
		default:
			return
		}
		if next >= len(args) {
			return
		}
		switch f[i] {
		case 'I':
			args[next] = funcNode("quote_ident", []any{args[next]})
		case 'L':
			args[next] = funcNode("quote_literal", []any{args[next]})
		}
		out.WriteString("%s")
		next++
	}
	val["value"] = out.String()
	v["function_name"], v["schema"] = "printf", ""
	r.rewrote = true
}

// selectNames names the select list's calls of catalog functions as
// PostgreSQL does (version, current_schema), not by the private schema's
// text. Only the select list: an alias inside a call's arguments would be
// a named argument to DuckDB.
func (r *catalogRewrite) selectNames(v map[string]any) {
	list, _ := v["select_list"].([]any)
	for _, x := range list {
		e, _ := x.(map[string]any)
		if e == nil {
			continue
		}
		if a, _ := e["alias"].(string); a != "" {
			continue
		}
		switch e["class"] {
		case "FUNCTION":
			name, _ := e["function_name"].(string)
			if _, ok := catalogMacros[strings.ToLower(name)]; ok {
				e["alias"] = strings.ToLower(name)
			}
		case "COLUMN_REF":
			cols, _ := e["column_names"].([]any)
			if len(cols) == 1 {
				name, _ := cols[0].(string)
				switch n := strings.ToLower(name); n {
				case "current_user", "session_user", "current_schema", "current_catalog", "user":
					e["alias"] = n
				}
			}
		}
	}
}

// columnRef turns the bare keywords current_user, session_user,
// current_schema, current_catalog and user (column references to DuckDB)
// into calls of the private macros.
func (r *catalogRewrite) columnRef(v map[string]any) {
	cols, _ := v["column_names"].([]any)
	if len(cols) != 1 {
		return
	}
	name, _ := cols[0].(string)
	switch strings.ToLower(name) {
	case "current_user", "session_user", "current_schema", "current_catalog", "user":
		fn := strings.ToLower(name)
		if fn == "user" {
			fn = "current_user"
		}
		alias := v["alias"]
		clear(v)
		for k, x := range funcNode(fn, nil) {
			v[k] = x
		}
		v["alias"] = alias
		r.rewrote = true
	}
}

// funcNode is the parse tree of a call of a private macro.
func funcNode(name string, args []any) map[string]any {
	if args == nil {
		args = []any{}
	}
	return map[string]any{"class": "FUNCTION", "type": "FUNCTION", "alias": "", "query_location": json.Number("0"),
		"function_name": name, "schema": pgSchema, "catalog": "", "children": args, "filter": nil,
		"order_bys": map[string]any{"type": "ORDER_MODIFIER", "orders": []any{}}, "distinct": false, "is_operator": false,
		"export_state": false}
}

// cast rewrites casts to PostgreSQL's catalog types; handled says v is
// now another node, to be checked again.
func (r *catalogRewrite) cast(v map[string]any) (handled bool) {
	ct, _ := v["cast_type"].(map[string]any)
	if ct == nil || ct["id"] != "USER" {
		return false
	}
	info, _ := ct["type_info"].(map[string]any)
	name, _ := info["user_type_name"].(string)
	switch strings.ToLower(name) {
	case "regclass":
		child, _ := v["child"].(map[string]any)
		if c, _ := child["value"].(map[string]any); c != nil {
			if t, _ := c["type"].(map[string]any); t != nil && t["id"] == "VARCHAR" {
				// 'name'::regclass is the relation's OID.
				alias := v["alias"]
				clear(v)
				for k, x := range funcNode("regclass_oid", []any{child}) {
					v[k] = x
				}
				v["alias"] = alias
				r.rewrote = true
				return true
			}
		}
		// Any other expression: an OID, or a name to look up.
		alias := v["alias"]
		clear(v)
		for k, x := range funcNode("regclass_of", []any{child}) {
			v[k] = x
		}
		v["alias"] = alias
		r.rewrote = true
		return true
	case "oid", "regtype", "regproc", "regprocedure", "regnamespace", "regrole", "regoper", "xid", "cid", "tid", "oidvector", "int2vector":
		v["cast_type"] = map[string]any{"id": "BIGINT", "type_info": nil}
	case "name", "char", "bpchar", "text", "pg_node_tree", "aclitem", "regconfig":
		v["cast_type"] = map[string]any{"id": "VARCHAR", "type_info": nil}
	default:
		return false
	}
	r.rewrote = true
	return false
}

// collate drops PostgreSQL's default collations, which DuckDB does not
// know; handled says v is now its child.
func (r *catalogRewrite) collate(v map[string]any) bool {
	coll, _ := v["collation"].(string)
	switch strings.Trim(strings.ToLower(coll), `"`) {
	case "pg_catalog.default", "default", "c", "pg_catalog.\"c\"", "posix", "pg_catalog.\"posix\"", "pg_catalog.c":
	default:
		return false
	}
	child, _ := v["child"].(map[string]any)
	if child == nil {
		return false
	}
	alias := v["alias"]
	clear(v)
	for k, x := range child {
		v[k] = x
	}
	if a, _ := alias.(string); a != "" {
		v["alias"] = a
	}
	r.rewrote = true
	return true
}

// show answers SHOW TABLES, SHOW <setting> and DESCRIBE <served table>
// from the catalog: v becomes a subquery. handled false leaves it to the
// sandbox's own check.
func (r *catalogRewrite) show(v map[string]any) (handled bool, err error) {
	raw, _ := v["table_name"].(string)
	kind, _ := v["show_type"].(string)
	if raw == "" || kind != "DESCRIBE" {
		return false, nil
	}
	name := raw
	if len(name) >= 2 && name[0] == '"' && name[len(name)-1] == '"' {
		name = strings.ReplaceAll(name[1:len(name)-1], `""`, `"`)
	}
	name = strings.ToLower(name)
	var q string
	if setting, ok := PGSetting(name); ok {
		q = fmt.Sprintf("SELECT %s AS %s", lit(setting), quoteIdent(name))
	} else if name == "transaction_isolation" || name == "transaction isolation level" {
		q = "SELECT 'read committed' AS transaction_isolation"
	} else if name == "tables" {
		q = "SELECT table_name AS name FROM " + isSchema + ".tables ORDER BY table_name"
	} else if isServedTable(name) {
		q = "SELECT column_name, upper(column_type) AS column_type, 'YES' AS \"null\", NULL::VARCHAR AS \"key\", NULL::VARCHAR AS \"default\", NULL::VARCHAR AS extra FROM " +
			isSchema + ".describe WHERE table_name = " + lit(name) + " ORDER BY ordinal_position"
	} else {
		return false, nil
	}
	sub, err := r.parse(q)
	if err != nil {
		return true, err
	}
	clear(v)
	v["type"], v["alias"], v["sample"], v["query_location"] = "SUBQUERY", "", nil, json.Number("0")
	v["subquery"], v["column_name_alias"] = sub, []any{}
	r.rewrote = true
	return true, nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// parse is the parse tree of one trusted SELECT of the catalog.
func (r *catalogRewrite) parse(q string) (any, error) {
	var out string
	if err := r.conn.QueryRowContext(r.ctx, "SELECT json_serialize_sql($1::VARCHAR)", q).Scan(&out); err != nil {
		return nil, fmt.Errorf("parse catalog query: %w", err)
	}
	var tree struct {
		Statements []json.RawMessage `json:"statements"`
	}
	if err := json.Unmarshal([]byte(out), &tree); err != nil || len(tree.Statements) != 1 {
		return nil, fmt.Errorf("parse catalog query %q: %s", q, out)
	}
	return decodeJSON(tree.Statements[0])
}

// decodeJSON keeps numbers as written: query locations are uint64s that a
// float64 would round.
func decodeJSON(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	err := d.Decode(&v)
	return v, err
}

// print has DuckDB print a statement's tree back as SQL.
func (r *catalogRewrite) print(stmt any) (string, error) {
	b, err := json.Marshal(map[string]any{"error": false, "statements": []any{stmt}})
	if err != nil {
		return "", err
	}
	var out string
	if err := r.conn.QueryRowContext(r.ctx, "SELECT json_deserialize_sql($1::JSON)", string(b)).Scan(&out); err != nil {
		return "", queryErr(KindInvalid, "rewrite the catalog query: %s", err)
	}
	return out, nil
}

// preparePG replaces the PostgreSQL operator syntax DuckDB's parser drops.
// It also drops the pg_catalog. of type names in casts (::pg_catalog.text),
// which DuckDB's parser refuses.
func preparePG(text string) string {
	if strings.Contains(strings.ToUpper(text), "OPERATOR") {
		text = pgOperator.ReplaceAllString(text, " $1 ")
	}
	if strings.Contains(text, "pg_catalog") {
		text = pgCastSchema.ReplaceAllString(text, "::")
	}
	return text
}

var pgCastSchema = regexp.MustCompile(`(?i)::\s*pg_catalog\s*\.\s*`)

// catalog applies the catalog rewrites to one node before the sandbox
// checks it; handled says the node is a catalog relation, checked here.
func (c *checker) catalog(v map[string]any, typ string, sc scope) (handled bool, err error) {
	switch typ {
	case "BASE_TABLE":
		return c.rw.tableRef(v, sc)
	case "SHOW_REF":
		if handled, err = c.rw.show(v); !handled || err != nil {
			return handled, err
		}
		return false, nil // now a subquery of the catalog: check it as any
	case "FUNCTION":
		c.rw.function(v)
	case "COLUMN_REF":
		c.rw.columnRef(v)
	case "SELECT_NODE":
		c.rw.selectNames(v)
	case "OPERATOR_CAST":
		if c.rw.cast(v) {
			return true, c.node(v, sc)
		}
	case "COLLATE":
		if c.rw.collate(v) {
			return true, c.node(v, sc)
		}
	case "JOIN":
		return false, c.rw.scalarTables(v)
	}
	return false, nil
}

// pgScalarTables are PostgreSQL functions of one value that a FROM clause
// may read as a one-row table: Grafana's string_to_array(...) s.
var pgScalarTables = map[string]bool{"string_to_array": true}

// scalarTables rewrites a join that reads a scalar function as a table, as
// Grafana writes FROM generate_series(...) AS i, string_to_array(...) s:
// the function becomes a one-row subquery, and the join's other table
// functions name their column after their alias, as PostgreSQL does. A
// join without such a function is left as DuckDB reads it.
func (r *catalogRewrite) scalarTables(v map[string]any) error {
	var leaves []map[string]any
	var collect func(n map[string]any)
	collect = func(n map[string]any) {
		switch n["type"] {
		case "JOIN":
			for _, side := range []string{"left", "right"} {
				if m, ok := n[side].(map[string]any); ok {
					collect(m)
				}
			}
		case "TABLE_FUNCTION":
			leaves = append(leaves, n)
		}
	}
	collect(v)
	fnName := func(n map[string]any) string {
		f, _ := n["function"].(map[string]any)
		name, _ := f["function_name"].(string)
		schema, _ := f["schema"].(string)
		if schema != "" && !strings.EqualFold(schema, "pg_catalog") {
			return ""
		}
		return strings.ToLower(name)
	}
	scalar := false
	for _, l := range leaves {
		scalar = scalar || pgScalarTables[fnName(l)]
	}
	if !scalar {
		return nil
	}
	for _, l := range leaves {
		alias, _ := l["alias"].(string)
		if alias == "" {
			continue
		}
		if !pgScalarTables[fnName(l)] {
			if cols, _ := l["column_name_alias"].([]any); len(cols) == 0 {
				l["column_name_alias"] = []any{alias}
			}
			continue
		}
		sub, err := r.parse("SELECT NULL AS " + quoteIdent(alias))
		if err != nil {
			return err
		}
		stmt, _ := sub.(map[string]any)
		node, _ := stmt["node"].(map[string]any)
		list, _ := node["select_list"].([]any)
		fn, _ := l["function"].(map[string]any)
		if len(list) != 1 || fn == nil {
			return fmt.Errorf("rewrite %s as a table: unexpected parse tree", alias)
		}
		fn["alias"] = alias
		list[0] = fn
		clear(l)
		l["type"], l["alias"], l["sample"], l["query_location"] = "SUBQUERY", alias, nil, json.Number("0")
		l["subquery"], l["column_name_alias"] = sub, []any{}
	}
	r.rewrote = true
	return nil
}
