package serving

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// The PostgreSQL catalog that BI tools, JDBC and psql read on connect. It
// is made of ordinary tables in two private schemas, filled from the
// Catalog when the engine opens; the sandbox points every reference to
// pg_catalog.X and information_schema.X at them (catalogrewrite.go), so
// DuckDB's own catalog views, which list its internals, temporary tables
// and the lake's local paths, are never read.

// Private schemas holding the catalog; not reachable by name.
const (
	pgSchema = "gridlake_pg"
	isSchema = "gridlake_is"
)

// Names clients see.
const (
	DatabaseName = "gridlake"
	SchemaName   = "main" // DuckDB's; "public" is accepted as an alias
	catalogOwner = "gridlake"
)

// Fixed OIDs: PostgreSQL's for its own namespaces and catalog relations,
// and from 16384 (PostgreSQL's first user OID) for the served tables.
const (
	oidPGCatalog  = 11
	oidMain       = 2200
	oidInfoSchema = 13000
	oidDatabase   = 16300
	oidOwner      = 10
	firstTableOID = 16384
)

// pgType is a PostgreSQL type the catalog's columns use.
type pgType struct {
	oid      int
	name     string
	len      int
	category string
	array    int
}

// pgTypes are the types of pg_type: PostgreSQL's OIDs and names.
var pgTypes = []pgType{
	{16, "bool", 1, "B", 1000}, {17, "bytea", -1, "U", 1001}, {18, "char", 1, "S", 1002}, {19, "name", 64, "S", 1003},
	{20, "int8", 8, "N", 1016}, {21, "int2", 2, "N", 1005}, {23, "int4", 4, "N", 1007}, {25, "text", -1, "S", 1009},
	{26, "oid", 4, "N", 1028}, {114, "json", -1, "U", 199}, {700, "float4", 4, "N", 1021}, {701, "float8", 8, "N", 1022},
	{1042, "bpchar", -1, "S", 1014}, {1043, "varchar", -1, "S", 1015}, {1082, "date", 4, "D", 1182}, {1083, "time", 8, "D", 1183},
	{1114, "timestamp", 8, "D", 1115}, {1184, "timestamptz", 8, "D", 1185}, {1186, "interval", 16, "T", 1187},
	{1700, "numeric", -1, "N", 1231}, {2950, "uuid", 16, "U", 2951}, {3802, "jsonb", -1, "U", 3807},
	{1000, "_bool", -1, "A", 0}, {1016, "_int8", -1, "A", 0}, {1007, "_int4", -1, "A", 0}, {1009, "_text", -1, "A", 0},
	{1022, "_float8", -1, "A", 0}, {1015, "_varchar", -1, "A", 0},
}

// PGType maps a DuckDB type name to the PostgreSQL type OID and name
// clients see, in the catalog and on the wire alike.
func PGType(duck string) (oid int, name string) {
	switch d := strings.ToUpper(duck); {
	case d == "BOOLEAN":
		return 16, "bool"
	case d == "TINYINT", d == "SMALLINT", d == "UTINYINT":
		return 21, "int2"
	case d == "INTEGER", d == "USMALLINT":
		return 23, "int4"
	case d == "BIGINT", d == "UINTEGER":
		return 20, "int8"
	case d == "HUGEINT", d == "UBIGINT", d == "UHUGEINT", strings.HasPrefix(d, "DECIMAL"):
		return 1700, "numeric"
	case d == "FLOAT":
		return 700, "float4"
	case d == "DOUBLE":
		return 701, "float8"
	case d == "DATE":
		return 1082, "date"
	case d == "TIME":
		return 1083, "time"
	case d == "TIMESTAMP WITH TIME ZONE", d == "TIMESTAMPTZ":
		return 1184, "timestamptz"
	case strings.HasPrefix(d, "TIMESTAMP"):
		return 1114, "timestamp"
	case d == "INTERVAL":
		return 1186, "interval"
	case d == "BLOB":
		return 17, "bytea"
	case d == "UUID":
		return 2950, "uuid"
	case d == "JSON":
		return 114, "json"
	}
	return 25, "text"
}

// pgTypeLen is the typlen of a type OID.
func pgTypeLen(oid int) int {
	for _, t := range pgTypes {
		if t.oid == oid {
			return t.len
		}
	}
	return -1
}

// catalogRelation is one relation of the private schemas: its columns
// ("name TYPE, ...") and rows.
type catalogRelation struct {
	schema, name string
	oid          int // in pg_class, for relations of pg_catalog
	cols         string
	rows         [][]any
}

// lit quotes a Go value as a SQL literal.
func lit(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case string:
		return "'" + strings.ReplaceAll(x, "'", "''") + "'"
	case bool:
		if x {
			return "true"
		}
		return "false"
	case []string:
		q := make([]string, len(x))
		for i, s := range x {
			q[i] = lit(s)
		}
		return "[" + strings.Join(q, ", ") + "]::VARCHAR[]"
	}
	return fmt.Sprint(v)
}

// tableOID is the OID of the i-th served table.
func tableOID(i int) int { return firstTableOID + i }

// relkind is 'r' for the raw tables (stored events) and 'v' for the
// views over them, batch or merged.
func relkind(t CatalogTable) string {
	if strings.HasSuffix(t.Name, "_raw") {
		return "r"
	}
	return "v"
}

// catalogRelations builds the private schemas' contents from cat.
func catalogRelations(cat *Catalog) []catalogRelation {
	rels := pgRelations(cat)
	return append(rels, infoSchemaRelations(cat)...)
}

func pgRelations(cat *Catalog) []catalogRelation {
	ns := catalogRelation{schema: pgSchema, name: "pg_namespace", oid: 2615, cols: "oid BIGINT, nspname VARCHAR, nspowner BIGINT, nspacl VARCHAR[]",
		rows: [][]any{{oidPGCatalog, "pg_catalog", oidOwner, nil}, {oidMain, SchemaName, oidOwner, nil}, {oidInfoSchema, "information_schema", oidOwner, nil}}}
	class := catalogRelation{schema: pgSchema, name: "pg_class", oid: 1259, cols: `oid BIGINT, relname VARCHAR, relnamespace BIGINT, reltype BIGINT,
		reloftype BIGINT, relowner BIGINT, relam BIGINT, relfilenode BIGINT, reltablespace BIGINT, relpages INTEGER, reltuples FLOAT,
		relallvisible INTEGER, reltoastrelid BIGINT, relhasindex BOOLEAN, relisshared BOOLEAN, relpersistence VARCHAR, relkind VARCHAR,
		relnatts INTEGER, relchecks INTEGER, relhasoids BOOLEAN, relhasrules BOOLEAN, relhastriggers BOOLEAN, relhassubclass BOOLEAN,
		relrowsecurity BOOLEAN, relforcerowsecurity BOOLEAN, relispopulated BOOLEAN, relreplident VARCHAR, relispartition BOOLEAN,
		relrewrite BIGINT, relfrozenxid BIGINT, relminmxid BIGINT, relacl VARCHAR[], reloptions VARCHAR[], relpartbound VARCHAR`}
	attr := catalogRelation{schema: pgSchema, name: "pg_attribute", oid: 1249, cols: `attrelid BIGINT, attname VARCHAR, atttypid BIGINT,
		attstattarget INTEGER, attlen INTEGER, attnum INTEGER, attndims INTEGER, attcacheoff INTEGER, atttypmod INTEGER, attbyval BOOLEAN,
		attstorage VARCHAR, attalign VARCHAR, attnotnull BOOLEAN, atthasdef BOOLEAN, atthasmissing BOOLEAN, attidentity VARCHAR,
		attgenerated VARCHAR, attisdropped BOOLEAN, attislocal BOOLEAN, attinhcount INTEGER, attcollation BIGINT, attacl VARCHAR[],
		attoptions VARCHAR[], attfdwoptions VARCHAR[], attmissingval VARCHAR, attcompression VARCHAR`}
	desc := catalogRelation{schema: pgSchema, name: "pg_description", oid: 2609, cols: "objoid BIGINT, classoid BIGINT, objsubid INTEGER, description VARCHAR"}
	tables := catalogRelation{schema: pgSchema, name: "pg_tables", cols: `schemaname VARCHAR, tablename VARCHAR, tableowner VARCHAR,
		tablespace VARCHAR, hasindexes BOOLEAN, hasrules BOOLEAN, hastriggers BOOLEAN, rowsecurity BOOLEAN`}
	pgViews := catalogRelation{schema: pgSchema, name: "pg_views", cols: "schemaname VARCHAR, viewname VARCHAR, viewowner VARCHAR, definition VARCHAR"}
	typ := catalogRelation{schema: pgSchema, name: "pg_type", oid: 1247, cols: `oid BIGINT, typname VARCHAR, typnamespace BIGINT, typowner BIGINT,
		typlen INTEGER, typbyval BOOLEAN, typtype VARCHAR, typcategory VARCHAR, typispreferred BOOLEAN, typisdefined BOOLEAN, typdelim VARCHAR,
		typrelid BIGINT, typsubscript VARCHAR, typelem BIGINT, typarray BIGINT, typinput VARCHAR, typoutput VARCHAR, typreceive VARCHAR,
		typsend VARCHAR, typmodin VARCHAR, typmodout VARCHAR, typanalyze VARCHAR, typalign VARCHAR, typstorage VARCHAR, typnotnull BOOLEAN,
		typbasetype BIGINT, typtypmod INTEGER, typndims INTEGER, typcollation BIGINT, typdefaultbin VARCHAR, typdefault VARCHAR, typacl VARCHAR[]`}
	for _, t := range pgTypes {
		elem := 0
		if t.category == "A" {
			for _, e := range pgTypes {
				if e.array == t.oid {
					elem = e.oid
				}
			}
		}
		typ.rows = append(typ.rows, []any{t.oid, t.name, oidPGCatalog, oidOwner, t.len, t.len > 0 && t.len <= 8, "b", t.category, false, true, ",",
			0, nil, elem, t.array, t.name + "in", t.name + "out", t.name + "recv", t.name + "send", "-", "-", "-", "d", "p", false, 0, -1, 0, 0, nil, nil, nil})
	}
	for i, t := range cat.Tables {
		oid := tableOID(i)
		kind := relkind(t)
		class.rows = append(class.rows, []any{oid, t.Name, oidMain, 0, 0, oidOwner, 0, 0, 0, 0, -1, 0, 0, false, false, "p", kind,
			len(t.Columns), 0, false, false, false, false, false, false, true, "d", false, 0, 0, 0, nil, nil, nil})
		desc.rows = append(desc.rows, []any{oid, 1259, 0, t.Doc})
		if kind == "r" {
			tables.rows = append(tables.rows, []any{SchemaName, t.Name, catalogOwner, nil, false, false, false, false})
		} else {
			// The definition says what the view is; its SQL holds the lake's
			// local paths and is not shown.
			pgViews.rows = append(pgViews.rows, []any{SchemaName, t.Name, catalogOwner, "-- " + t.Doc})
		}
		for j, c := range t.Columns {
			toid, _ := PGType(c.Type)
			attr.rows = append(attr.rows, []any{oid, c.Name, toid, -1, pgTypeLen(toid), j + 1, 0, -1, -1, false, "p", "d", false, false, false, "", "",
				false, true, 0, 0, nil, nil, nil, nil, ""})
			desc.rows = append(desc.rows, []any{oid, 1259, j + 1, c.Doc})
		}
	}
	db := catalogRelation{schema: pgSchema, name: "pg_database", oid: 1262, cols: `oid BIGINT, datname VARCHAR, datdba BIGINT, encoding INTEGER,
		datlocprovider VARCHAR, datistemplate BOOLEAN, datallowconn BOOLEAN, datconnlimit INTEGER, datlastsysoid BIGINT, datfrozenxid BIGINT,
		datminmxid BIGINT, dattablespace BIGINT, datcollate VARCHAR, datctype VARCHAR, daticulocale VARCHAR, datcollversion VARCHAR, datacl VARCHAR[]`,
		rows: [][]any{{oidDatabase, DatabaseName, oidOwner, 6, "c", false, true, -1, 0, 0, 0, 1663, "C.UTF-8", "C.UTF-8", nil, nil, nil}}}
	roleCols := `oid BIGINT, rolname VARCHAR, rolsuper BOOLEAN, rolinherit BOOLEAN, rolcreaterole BOOLEAN, rolcreatedb BOOLEAN,
		rolcanlogin BOOLEAN, rolreplication BOOLEAN, rolconnlimit INTEGER, rolpassword VARCHAR, rolvaliduntil TIMESTAMPTZ, rolbypassrls BOOLEAN,
		rolconfig VARCHAR[]`
	roles := catalogRelation{schema: pgSchema, name: "pg_roles", oid: 1260, cols: roleCols,
		rows: [][]any{{oidOwner, catalogOwner, false, true, false, false, false, false, -1, "********", nil, false, nil}}}
	user := catalogRelation{schema: pgSchema, name: "pg_user", cols: `usename VARCHAR, usesysid BIGINT, usecreatedb BOOLEAN, usesuper BOOLEAN,
		userepl BOOLEAN, usebypassrls BOOLEAN, passwd VARCHAR, valuntil TIMESTAMPTZ, useconfig VARCHAR[]`,
		rows: [][]any{{catalogOwner, oidOwner, false, false, false, false, "********", nil, nil}}}
	am := catalogRelation{schema: pgSchema, name: "pg_am", oid: 2601, cols: "oid BIGINT, amname VARCHAR, amhandler VARCHAR, amtype VARCHAR",
		rows: [][]any{{2, "heap", "heap_tableam_handler", "t"}}}
	settings := catalogRelation{schema: pgSchema, name: "pg_settings", cols: "name VARCHAR, setting VARCHAR, unit VARCHAR, category VARCHAR, short_desc VARCHAR, vartype VARCHAR, context VARCHAR, source VARCHAR"}
	for _, s := range pgSettings {
		settings.rows = append(settings.rows, []any{s[0], s[1], nil, "Client Connection Defaults", "", "string", "user", "default"})
	}
	rels := []catalogRelation{ns, class, attr, desc, tables, pgViews, typ, db, roles, user, am, settings}
	// Relations that are empty here (no indexes, constraints, defaults,
	// inheritance, functions, ...) but that clients join against.
	for _, e := range emptyPGRelations {
		rels = append(rels, catalogRelation{schema: pgSchema, name: e.name, oid: e.oid, cols: e.cols})
	}
	// The catalog's own relations are in pg_class too ('pg_class'::regclass).
	for _, r := range rels {
		if r.oid != 0 {
			class.rows = append(class.rows, []any{r.oid, r.name, oidPGCatalog, 0, 0, oidOwner, 2, 0, 0, 0, -1, 0, 0, false, false, "p", "r",
				0, 0, false, false, false, false, false, false, true, "n", false, 0, 0, 0, nil, nil, nil})
		}
	}
	rels[1] = class
	return rels
}

// pgSettings answer SHOW, current_setting() and pg_settings: what clients
// ask on connect. Nothing of the engine's own configuration.
var pgSettings = [][2]string{
	{"server_version", "14.0 (gridlake)"}, {"server_version_num", "140000"}, {"server_encoding", "UTF8"}, {"client_encoding", "UTF8"},
	{"datestyle", "ISO, MDY"}, {"timezone", "UTC"}, {"integer_datetimes", "on"}, {"standard_conforming_strings", "on"},
	{"transaction_isolation", "read committed"}, {"default_transaction_isolation", "read committed"}, {"transaction_read_only", "on"},
	{"default_transaction_read_only", "on"}, {"search_path", SchemaName}, {"max_identifier_length", "63"}, {"intervalstyle", "postgres"},
	{"application_name", ""}, {"extra_float_digits", "1"}, {"lc_collate", "C.UTF-8"}, {"lc_ctype", "C.UTF-8"}, {"is_superuser", "off"},
	{"statement_timeout", "0"}, {"block_size", "8192"}, {"bytea_output", "hex"}, {"client_min_messages", "notice"},
}

// PGSetting is the value of a client-visible setting, by lower-case name.
func PGSetting(name string) (string, bool) {
	name = strings.ToLower(strings.TrimSpace(name))
	for _, s := range pgSettings {
		if s[0] == name {
			return s[1], true
		}
	}
	return "", false
}

var emptyPGRelations = []struct {
	name string
	oid  int
	cols string
}{
	{"pg_attrdef", 2604, "oid BIGINT, adrelid BIGINT, adnum INTEGER, adbin VARCHAR, adsrc VARCHAR"},
	{"pg_index", 2610, `indexrelid BIGINT, indrelid BIGINT, indnatts INTEGER, indnkeyatts INTEGER, indisunique BOOLEAN, indisprimary BOOLEAN,
		indisexclusion BOOLEAN, indimmediate BOOLEAN, indisclustered BOOLEAN, indisvalid BOOLEAN, indcheckxmin BOOLEAN, indisready BOOLEAN,
		indislive BOOLEAN, indisreplident BOOLEAN, indkey INTEGER[], indcollation BIGINT[], indclass BIGINT[], indoption INTEGER[],
		indexprs VARCHAR, indpred VARCHAR, indnullsnotdistinct BOOLEAN`},
	{"pg_constraint", 2606, `oid BIGINT, conname VARCHAR, connamespace BIGINT, contype VARCHAR, condeferrable BOOLEAN, condeferred BOOLEAN,
		convalidated BOOLEAN, conrelid BIGINT, contypid BIGINT, conindid BIGINT, conparentid BIGINT, confrelid BIGINT, confupdtype VARCHAR,
		confdeltype VARCHAR, confmatchtype VARCHAR, conislocal BOOLEAN, coninhcount INTEGER, connoinherit BOOLEAN, conkey INTEGER[],
		confkey INTEGER[], conpfeqop BIGINT[], conppeqop BIGINT[], conffeqop BIGINT[], conexclop BIGINT[], conbin VARCHAR`},
	{"pg_inherits", 2611, "inhrelid BIGINT, inhparent BIGINT, inhseqno INTEGER, inhdetachpending BOOLEAN"},
	{"pg_proc", 1255, `oid BIGINT, proname VARCHAR, pronamespace BIGINT, proowner BIGINT, prolang BIGINT, procost FLOAT, prorows FLOAT,
		provariadic BIGINT, prosupport VARCHAR, prokind VARCHAR, prosecdef BOOLEAN, proleakproof BOOLEAN, proisstrict BOOLEAN, proretset BOOLEAN,
		provolatile VARCHAR, proparallel VARCHAR, pronargs INTEGER, pronargdefaults INTEGER, prorettype BIGINT, proargtypes BIGINT[],
		proallargtypes BIGINT[], proargmodes VARCHAR[], proargnames VARCHAR[], proargdefaults VARCHAR, protrftypes BIGINT[], prosrc VARCHAR,
		probin VARCHAR, prosqlbody VARCHAR, proconfig VARCHAR[], proacl VARCHAR[]`},
	{"pg_trigger", 2620, "oid BIGINT, tgrelid BIGINT, tgparentid BIGINT, tgname VARCHAR, tgfoid BIGINT, tgtype INTEGER, tgenabled VARCHAR, tgisinternal BOOLEAN, tgconstrrelid BIGINT, tgconstrindid BIGINT, tgconstraint BIGINT, tgdeferrable BOOLEAN, tginitdeferred BOOLEAN, tgnargs INTEGER, tgattr INTEGER[], tgargs VARCHAR, tgqual VARCHAR, tgoldtable VARCHAR, tgnewtable VARCHAR"},
	{"pg_rewrite", 2618, "oid BIGINT, rulename VARCHAR, ev_class BIGINT, ev_type VARCHAR, ev_enabled VARCHAR, is_instead BOOLEAN, ev_qual VARCHAR, ev_action VARCHAR"},
	{"pg_tablespace", 1213, "oid BIGINT, spcname VARCHAR, spcowner BIGINT, spcacl VARCHAR[], spcoptions VARCHAR[]"},
	{"pg_collation", 3456, "oid BIGINT, collname VARCHAR, collnamespace BIGINT, collowner BIGINT, collprovider VARCHAR, collisdeterministic BOOLEAN, collencoding INTEGER, collcollate VARCHAR, collctype VARCHAR"},
	{"pg_enum", 3501, "oid BIGINT, enumtypid BIGINT, enumsortorder FLOAT, enumlabel VARCHAR"},
	{"pg_range", 3541, "rngtypid BIGINT, rngsubtype BIGINT, rngmultitypid BIGINT, rngcollation BIGINT, rngsubopc BIGINT, rngcanonical VARCHAR, rngsubdiff VARCHAR"},
	{"pg_extension", 3079, "oid BIGINT, extname VARCHAR, extowner BIGINT, extnamespace BIGINT, extrelocatable BOOLEAN, extversion VARCHAR, extconfig BIGINT[], extcondition VARCHAR[]"},
	{"pg_foreign_table", 3118, "ftrelid BIGINT, ftserver BIGINT, ftoptions VARCHAR[]"},
	{"pg_foreign_server", 1417, "oid BIGINT, srvname VARCHAR, srvowner BIGINT, srvfdw BIGINT, srvtype VARCHAR, srvversion VARCHAR, srvacl VARCHAR[], srvoptions VARCHAR[]"},
	{"pg_matviews", 0, "schemaname VARCHAR, matviewname VARCHAR, matviewowner VARCHAR, tablespace VARCHAR, hasindexes BOOLEAN, ispopulated BOOLEAN, definition VARCHAR"},
	{"pg_indexes", 0, "schemaname VARCHAR, tablename VARCHAR, indexname VARCHAR, tablespace VARCHAR, indexdef VARCHAR"},
	{"pg_sequence", 2224, "seqrelid BIGINT, seqtypid BIGINT, seqstart BIGINT, seqincrement BIGINT, seqmax BIGINT, seqmin BIGINT, seqcache BIGINT, seqcycle BOOLEAN"},
	{"pg_partitioned_table", 3350, "partrelid BIGINT, partstrat VARCHAR, partnatts INTEGER, partdefid BIGINT, partattrs INTEGER[], partclass BIGINT[], partcollation BIGINT[], partexprs VARCHAR"},
	{"pg_statistic_ext", 3381, "oid BIGINT, stxrelid BIGINT, stxname VARCHAR, stxnamespace BIGINT, stxowner BIGINT, stxstattarget INTEGER, stxkeys INTEGER[], stxkind VARCHAR[], stxexprs VARCHAR"},
	{"pg_publication", 6104, "oid BIGINT, pubname VARCHAR, pubowner BIGINT, puballtables BOOLEAN, pubinsert BOOLEAN, pubupdate BOOLEAN, pubdelete BOOLEAN, pubtruncate BOOLEAN, pubviaroot BOOLEAN"},
	{"pg_publication_rel", 6106, "oid BIGINT, prpubid BIGINT, prrelid BIGINT, prqual VARCHAR, prattrs INTEGER[]"},
	{"pg_publication_namespace", 6237, "oid BIGINT, pnpubid BIGINT, pnnspid BIGINT"},
	{"pg_policy", 3256, "oid BIGINT, polname VARCHAR, polrelid BIGINT, polcmd VARCHAR, polpermissive BOOLEAN, polroles BIGINT[], polqual VARCHAR, polwithcheck VARCHAR"},
	{"pg_depend", 2608, "classid BIGINT, objid BIGINT, objsubid INTEGER, refclassid BIGINT, refobjid BIGINT, refobjsubid INTEGER, deptype VARCHAR"},
	{"pg_shdescription", 2396, "objoid BIGINT, classoid BIGINT, description VARCHAR"},
	{"pg_event_trigger", 3466, "oid BIGINT, evtname VARCHAR, evtevent VARCHAR, evtowner BIGINT, evtfoid BIGINT, evtenabled VARCHAR, evttags VARCHAR[]"},
	{"pg_language", 2612, "oid BIGINT, lanname VARCHAR, lanowner BIGINT, lanispl BOOLEAN, lanpltrusted BOOLEAN, lanplcallfoid BIGINT, laninline BIGINT, lanvalidator BIGINT, lanacl VARCHAR[]"},
	{"pg_operator", 2617, "oid BIGINT, oprname VARCHAR, oprnamespace BIGINT, oprowner BIGINT, oprkind VARCHAR, oprcanmerge BOOLEAN, oprcanhash BOOLEAN, oprleft BIGINT, oprright BIGINT, oprresult BIGINT, oprcom BIGINT, oprnegate BIGINT, oprcode VARCHAR, oprrest VARCHAR, oprjoin VARCHAR"},
	{"pg_cast", 2605, "oid BIGINT, castsource BIGINT, casttarget BIGINT, castfunc BIGINT, castcontext VARCHAR, castmethod VARCHAR"},
	{"pg_aggregate", 2600, "aggfnoid BIGINT, aggkind VARCHAR, aggnumdirectargs INTEGER, aggtransfn VARCHAR, aggfinalfn VARCHAR, aggtranstype BIGINT, agginitval VARCHAR"},
	{"pg_auth_members", 1261, "oid BIGINT, roleid BIGINT, member BIGINT, grantor BIGINT, admin_option BOOLEAN"},
	{"pg_opclass", 2616, "oid BIGINT, opcmethod BIGINT, opcname VARCHAR, opcnamespace BIGINT, opcowner BIGINT, opcfamily BIGINT, opcintype BIGINT, opcdefault BOOLEAN, opckeytype BIGINT"},
	{"pg_foreign_data_wrapper", 2328, "oid BIGINT, fdwname VARCHAR, fdwowner BIGINT, fdwhandler BIGINT, fdwvalidator BIGINT, fdwacl VARCHAR[], fdwoptions VARCHAR[]"},
	{"pg_stat_activity", 0, "datid BIGINT, datname VARCHAR, pid INTEGER, usesysid BIGINT, usename VARCHAR, application_name VARCHAR, client_addr VARCHAR, backend_start TIMESTAMPTZ, query_start TIMESTAMPTZ, state VARCHAR, query VARCHAR"},
	{"pg_locks", 0, "locktype VARCHAR, database BIGINT, relation BIGINT, pid INTEGER, mode VARCHAR, granted BOOLEAN"},
	{"pg_stat_user_tables", 0, "relid BIGINT, schemaname VARCHAR, relname VARCHAR, seq_scan BIGINT, n_live_tup BIGINT, n_dead_tup BIGINT"},
	{"pg_statio_user_tables", 0, "relid BIGINT, schemaname VARCHAR, relname VARCHAR, heap_blks_read BIGINT, heap_blks_hit BIGINT"},
	{"pg_timezone_names", 0, "name VARCHAR, abbrev VARCHAR, utc_offset INTERVAL, is_dst BOOLEAN"},
}

// infoSchemaRelations are information_schema.tables, columns, schemata
// and views, over the served tables only.
func infoSchemaRelations(cat *Catalog) []catalogRelation {
	schemata := catalogRelation{schema: isSchema, name: "schemata", cols: `catalog_name VARCHAR, schema_name VARCHAR, schema_owner VARCHAR,
		default_character_set_catalog VARCHAR, default_character_set_schema VARCHAR, default_character_set_name VARCHAR, sql_path VARCHAR`,
		rows: [][]any{{DatabaseName, SchemaName, catalogOwner, nil, nil, nil, nil}, {DatabaseName, "information_schema", catalogOwner, nil, nil, nil, nil},
			{DatabaseName, "pg_catalog", catalogOwner, nil, nil, nil, nil}}}
	tables := catalogRelation{schema: isSchema, name: "tables", cols: `table_catalog VARCHAR, table_schema VARCHAR, table_name VARCHAR,
		table_type VARCHAR, self_referencing_column_name VARCHAR, reference_generation VARCHAR, user_defined_type_catalog VARCHAR,
		user_defined_type_schema VARCHAR, user_defined_type_name VARCHAR, is_insertable_into VARCHAR, is_typed VARCHAR, commit_action VARCHAR,
		table_comment VARCHAR`}
	views := catalogRelation{schema: isSchema, name: "views", cols: `table_catalog VARCHAR, table_schema VARCHAR, table_name VARCHAR,
		view_definition VARCHAR, check_option VARCHAR, is_updatable VARCHAR, is_insertable_into VARCHAR, is_trigger_updatable VARCHAR,
		is_trigger_deletable VARCHAR, is_trigger_insertable_into VARCHAR`}
	columns := catalogRelation{schema: isSchema, name: "columns", cols: `table_catalog VARCHAR, table_schema VARCHAR, table_name VARCHAR,
		column_name VARCHAR, ordinal_position INTEGER, column_default VARCHAR, is_nullable VARCHAR, data_type VARCHAR,
		character_maximum_length INTEGER, character_octet_length INTEGER, numeric_precision INTEGER, numeric_precision_radix INTEGER,
		numeric_scale INTEGER, datetime_precision INTEGER, interval_type VARCHAR, interval_precision INTEGER, character_set_catalog VARCHAR,
		character_set_schema VARCHAR, character_set_name VARCHAR, collation_catalog VARCHAR, collation_schema VARCHAR, collation_name VARCHAR,
		domain_catalog VARCHAR, domain_schema VARCHAR, domain_name VARCHAR, udt_catalog VARCHAR, udt_schema VARCHAR, udt_name VARCHAR,
		scope_catalog VARCHAR, scope_schema VARCHAR, scope_name VARCHAR, maximum_cardinality INTEGER, dtd_identifier VARCHAR,
		is_self_referencing VARCHAR, is_identity VARCHAR, identity_generation VARCHAR, identity_start VARCHAR, identity_increment VARCHAR,
		identity_maximum VARCHAR, identity_minimum VARCHAR, identity_cycle VARCHAR, is_generated VARCHAR, generation_expression VARCHAR,
		is_updatable VARCHAR, column_comment VARCHAR`}
	// No served table has constraints; Metabase joins these for primary keys.
	constraints := catalogRelation{schema: isSchema, name: "table_constraints", cols: `constraint_catalog VARCHAR, constraint_schema VARCHAR,
		constraint_name VARCHAR, table_catalog VARCHAR, table_schema VARCHAR, table_name VARCHAR, constraint_type VARCHAR, is_deferrable VARCHAR,
		initially_deferred VARCHAR, enforced VARCHAR, nulls_distinct VARCHAR`}
	keyColumns := catalogRelation{schema: isSchema, name: "key_column_usage", cols: `constraint_catalog VARCHAR, constraint_schema VARCHAR,
		constraint_name VARCHAR, table_catalog VARCHAR, table_schema VARCHAR, table_name VARCHAR, column_name VARCHAR, ordinal_position INTEGER,
		position_in_unique_constraint INTEGER`}
	describe := catalogRelation{schema: isSchema, name: "describe", cols: "table_name VARCHAR, column_name VARCHAR, column_type VARCHAR, ordinal_position INTEGER"}
	for _, t := range cat.Tables {
		for j, c := range t.Columns {
			describe.rows = append(describe.rows, []any{t.Name, c.Name, c.Type, j + 1})
		}
		typ := "BASE TABLE"
		if relkind(t) == "v" {
			typ = "VIEW"
			views.rows = append(views.rows, []any{DatabaseName, SchemaName, t.Name, "-- " + t.Doc, "NONE", "NO", "NO", "NO", "NO", "NO"})
		}
		tables.rows = append(tables.rows, []any{DatabaseName, SchemaName, t.Name, typ, nil, nil, nil, nil, nil, "NO", "NO", nil, t.Doc})
		for j, c := range t.Columns {
			_, udt := PGType(c.Type)
			columns.rows = append(columns.rows, []any{DatabaseName, SchemaName, t.Name, c.Name, j + 1, nil, "YES", infoDataType(c.Type),
				nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, DatabaseName, "pg_catalog", udt,
				nil, nil, nil, nil, fmt.Sprint(j + 1), "NO", "NO", nil, nil, nil, nil, nil, "NO", "NEVER", nil, "NO", c.Doc})
		}
	}
	return []catalogRelation{schemata, tables, views, columns, describe, constraints, keyColumns}
}

// infoDataType is information_schema's data_type: PostgreSQL's SQL name.
func infoDataType(duck string) string {
	_, name := PGType(duck)
	return sqlTypeName(name)
}

// catalogMacros are the functions clients call on connect, by name, as
// DuckDB macros in the private schema; the sandbox points calls of these
// names (bare or pg_catalog.) at them.
var catalogMacros = map[string]string{
	"pg_get_userbyid":                 "(p_id) AS '" + catalogOwner + "'",
	"pg_table_is_visible":             "(p_id) AS true",
	"pg_type_is_visible":              "(p_id) AS true",
	"pg_function_is_visible":          "(p_id) AS true",
	"has_table_privilege":             "(p_a, p_b) AS true, (p_a, p_b, p_c) AS true",
	"has_schema_privilege":            "(p_a, p_b) AS true, (p_a, p_b, p_c) AS true",
	"has_database_privilege":          "(p_a, p_b) AS true, (p_a, p_b, p_c) AS true",
	"has_column_privilege":            "(p_a, p_b, p_c) AS true, (p_a, p_b, p_c, p_d) AS true",
	"has_any_column_privilege":        "(p_a, p_b) AS true, (p_a, p_b, p_c) AS true",
	"pg_has_role":                     "(p_a, p_b) AS true, (p_a, p_b, p_c) AS true",
	"obj_description":                 "(obj_id) AS (SELECT max(description) FROM " + pgSchema + ".pg_description d WHERE d.objoid = obj_id AND d.objsubid = 0), (obj_id, cls) AS (SELECT max(description) FROM " + pgSchema + ".pg_description d WHERE d.objoid = obj_id AND d.objsubid = 0)",
	"col_description":                 "(obj_id, sub_id) AS (SELECT max(description) FROM " + pgSchema + ".pg_description d WHERE d.objoid = obj_id AND d.objsubid = sub_id)",
	"shobj_description":               "(p_id, p_cls) AS NULL::VARCHAR",
	"format_type":                     "(type_id, type_mod) AS " + formatTypeCase(),
	"pg_get_expr":                     "(p_e, p_r) AS NULL::VARCHAR, (p_e, p_r, p_p) AS NULL::VARCHAR",
	"pg_get_viewdef":                  "(obj_id) AS (SELECT max('-- ' || description) FROM " + pgSchema + ".pg_description d WHERE d.objoid = obj_id AND d.objsubid = 0), (obj_id, pretty) AS (SELECT max('-- ' || description) FROM " + pgSchema + ".pg_description d WHERE d.objoid = obj_id AND d.objsubid = 0)",
	"pg_get_indexdef":                 "(p_id) AS NULL::VARCHAR, (p_id, p_c, p_p) AS NULL::VARCHAR",
	"pg_get_constraintdef":            "(p_id) AS NULL::VARCHAR, (p_id, p_p) AS NULL::VARCHAR",
	"pg_get_triggerdef":               "(p_id) AS NULL::VARCHAR, (p_id, p_p) AS NULL::VARCHAR",
	"pg_get_partkeydef":               "(p_id) AS NULL::VARCHAR",
	"pg_get_function_result":          "(p_id) AS NULL::VARCHAR",
	"pg_get_function_arguments":       "(p_id) AS NULL::VARCHAR",
	"pg_get_statisticsobjdef_columns": "(p_id) AS NULL::VARCHAR",
	"pg_tablespace_location":          "(p_id) AS ''",
	"pg_encoding_to_char":             "(p_id) AS 'UTF8'",
	"pg_is_in_recovery":               "() AS false",
	"pg_backend_pid":                  "() AS 0",
	"pg_postmaster_start_time":        "() AS TIMESTAMPTZ '2000-01-01 00:00:00+00'",
	"pg_total_relation_size":          "(p_id) AS 0::BIGINT",
	"pg_relation_size":                "(p_id) AS 0::BIGINT, (p_id, p_f) AS 0::BIGINT",
	"pg_table_size":                   "(p_id) AS 0::BIGINT",
	"pg_indexes_size":                 "(p_id) AS 0::BIGINT",
	"pg_database_size":                "(p_id) AS 0::BIGINT",
	"pg_size_pretty":                  "(size_bytes) AS size_bytes || ' bytes'",
	"txid_current":                    "() AS 1::BIGINT",
	"inet_server_addr":                "() AS NULL::VARCHAR",
	"inet_server_port":                "() AS NULL::INTEGER",
	"pg_get_keywords":                 "() AS NULL::VARCHAR",
	"version":                         "() AS 'PostgreSQL 14.0 (gridlake: DuckDB over the lake, read-only)'",
	"current_database":                "() AS '" + DatabaseName + "'",
	"current_catalog":                 "() AS '" + DatabaseName + "'",
	"current_schema":                  "() AS '" + SchemaName + "'",
	"current_schemas":                 "(p_b) AS ['pg_catalog', '" + SchemaName + "']",
	"current_user":                    "() AS '" + catalogOwner + "'",
	"session_user":                    "() AS '" + catalogOwner + "'",
	"current_setting":                 "(setting_name) AS " + settingCase() + ", (setting_name, missing_ok) AS " + settingCase(),
	// regclass_of is a ::regclass cast of an expression: an OID stays one,
	// a name ('"main"."battery_now"', as Metabase formats it) is looked up.
	"regclass_of":          "(x) AS coalesce(TRY_CAST(x AS BIGINT), (SELECT max(c.oid) FROM " + pgSchema + ".pg_class c WHERE c.relname = lower(trim(string_split(x::VARCHAR, '.')[-1], '\"'))))",
	"quote_literal":        "(s) AS CASE WHEN s IS NULL THEN NULL ELSE '''' || replace(s::VARCHAR, '''', '''''') || '''' END",
	"regclass_oid":         "(rel_name) AS (SELECT max(c.oid) FROM " + pgSchema + ".pg_class c WHERE c.relname = lower(trim(string_split(rel_name, '.')[-1], '\"')))",
	"array_lower":          "(arr, dim) AS CASE WHEN len(arr) > 0 THEN 1 END",
	"array_upper":          "(arr, dim) AS CASE WHEN len(arr) > 0 THEN len(arr) END",
	"pg_stat_get_numscans": "(p_id) AS 0::BIGINT",
	// quote_ident and parse_ident, as Grafana's table and column lists
	// call them (keywords are not quoted: no served name is one).
	"quote_ident": "(s) AS CASE WHEN regexp_full_match(s::VARCHAR, '[a-z_][a-z0-9_$]*') THEN s::VARCHAR ELSE '\"' || replace(s::VARCHAR, '\"', '\"\"') || '\"' END",
	"parse_ident": "(s) AS list_transform(string_split(s::VARCHAR, '.'), x -> CASE WHEN x LIKE '\"%' THEN replace(x[2:-2], '\"\"', '\"') ELSE lower(x) END)",
	// information_schema._pg_expandarray: one row (x element, n index) per
	// element; JDBC's getPrimaryKeys and DBeaver read index keys with it.
	"_pg_expandarray": "(arr) AS unnest(list_transform(generate_series(1, len(arr)), i -> {'x': arr[i], 'n': i}))",
}

// settingCase is current_setting's body: a CASE over the settings, not a
// subquery, so that it may stand in a table function's arguments
// (Grafana's generate_series over the search_path).
func settingCase() string {
	var b strings.Builder
	b.WriteString("CASE lower(setting_name)")
	for _, st := range pgSettings {
		fmt.Fprintf(&b, " WHEN %s THEN %s", lit(st[0]), lit(st[1]))
	}
	b.WriteString(" END")
	return b.String()
}

// formatTypeCase is format_type's body: PostgreSQL's SQL name of each
// type (double precision, timestamp with time zone).
func formatTypeCase() string {
	var b strings.Builder
	b.WriteString("CASE type_id")
	for _, t := range pgTypes {
		name := t.name
		if t.category != "A" {
			if n := sqlTypeName(t.name); n != "" {
				name = n
			}
		} else {
			name = sqlTypeName(strings.TrimPrefix(t.name, "_")) + "[]"
		}
		fmt.Fprintf(&b, " WHEN %d THEN %s", t.oid, lit(name))
	}
	b.WriteString(" END")
	return b.String()
}

// sqlTypeName is the SQL name of a PostgreSQL type ("" if it is its own).
func sqlTypeName(pg string) string {
	switch pg {
	case "bool":
		return "boolean"
	case "int2":
		return "smallint"
	case "int4":
		return "integer"
	case "int8":
		return "bigint"
	case "float4":
		return "real"
	case "float8":
		return "double precision"
	case "timestamptz":
		return "timestamp with time zone"
	case "timestamp":
		return "timestamp without time zone"
	case "time":
		return "time without time zone"
	case "varchar":
		return "character varying"
	case "bpchar":
		return "character"
	case "char":
		return `"char"`
	}
	return pg
}

// installCatalog creates the private schemas, their tables and macros.
func installCatalog(ctx context.Context, db *sql.DB, cat *Catalog) error {
	stmts := []string{"CREATE SCHEMA " + pgSchema, "CREATE SCHEMA " + isSchema}
	for _, r := range catalogRelations(cat) {
		stmts = append(stmts, fmt.Sprintf("CREATE TABLE %s.%s (%s)", r.schema, r.name, r.cols))
		for start := 0; start < len(r.rows); start += 500 {
			var b strings.Builder
			fmt.Fprintf(&b, "INSERT INTO %s.%s VALUES ", r.schema, r.name)
			for i, row := range r.rows[start:min(start+500, len(r.rows))] {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString("(")
				for j, v := range row {
					if j > 0 {
						b.WriteString(", ")
					}
					b.WriteString(lit(v))
				}
				b.WriteString(")")
			}
			stmts = append(stmts, b.String())
		}
	}
	for name, body := range catalogMacros {
		stmts = append(stmts, fmt.Sprintf("CREATE MACRO %s.%s%s", pgSchema, name, body))
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("install the PostgreSQL catalog (%.80s): %w", s, err)
		}
	}
	return nil
}
