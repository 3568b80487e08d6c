-- Queries DBeaver's PostgreSQL plugin sends on connect and when it opens a
-- schema's tables and columns, from its public source:
-- plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/
-- @ 2428359b748778a5a345432906ab3da69289c20c, with the default connection
-- settings (no template or unavailable databases shown). DBeaver reads
-- them through the PostgreSQL JDBC driver: its ? are $n here. Format: see
-- grafana.sql.

-- query: dbeaver-databases
-- source: dbeaver/dbeaver .../model/PostgreDataSource.java @ 2428359b748778a5a345432906ab3da69289c20c (prepareReadDatabaseListStatement)
-- args: ["gridlake"]
-- expect: gridlake
SELECT db.oid,db.* FROM pg_catalog.pg_database db WHERE 1 = 1 AND datallowconn AND NOT datistemplate OR db.datname =$1
ORDER BY db.datname

-- query: dbeaver-current-database
-- source: dbeaver/dbeaver .../model/PostgreDataSource.java @ 2428359b748778a5a345432906ab3da69289c20c (initializeRemoteInstance)
-- expect: gridlake
SELECT current_database()

-- query: dbeaver-version
-- source: dbeaver/dbeaver .../model/PostgreDataSource.java @ 2428359b748778a5a345432906ab3da69289c20c (initialize)
-- expect: PostgreSQL 14
SELECT version()

-- query: dbeaver-pg-enum-exists
-- source: dbeaver/dbeaver .../PostgreUtils.java @ 2428359b748778a5a345432906ab3da69289c20c (isMetaObjectExists(session, "pg_enum", "*"))
SELECT * FROM pg_catalog.pg_enum WHERE 1<>1 LIMIT 1

-- query: dbeaver-reltype-exists
-- source: dbeaver/dbeaver .../PostgreUtils.java @ 2428359b748778a5a345432906ab3da69289c20c (isMetaObjectExists(session, "pg_class", "reltype"))
SELECT reltype FROM pg_catalog.pg_class WHERE 1<>1 LIMIT 1

-- query: dbeaver-settings
-- source: dbeaver/dbeaver .../model/PostgreDataSource.java @ 2428359b748778a5a345432906ab3da69289c20c (SettingCache)
-- expect: server_version|
select * from pg_catalog.pg_settings

-- query: dbeaver-data-types
-- source: dbeaver/dbeaver .../model/PostgreDatabase.java @ 2428359b748778a5a345432906ab3da69289c20c (cacheDataTypes, with PostgreDataTypeCache.getBaseTypeNameClause)
-- expect: 1184|timestamptz|
-- expect: 701|float8|
SELECT t.oid,t.*,c.relkind,format_type(nullif(t.typbasetype, 0), t.typtypmod) as base_type_name, d.description
FROM pg_catalog.pg_type t
LEFT OUTER JOIN pg_catalog.pg_type et ON et.oid=t.typelem 
LEFT OUTER JOIN pg_catalog.pg_class c ON c.oid=t.typrelid
LEFT OUTER JOIN pg_catalog.pg_description d ON t.oid=d.objoid
WHERE t.typname IS NOT NULL
AND (c.relkind IS NULL OR c.relkind = 'c') AND (et.typcategory IS NULL OR et.typcategory <> 'C')

-- query: dbeaver-schemas
-- source: dbeaver/dbeaver .../model/PostgreDatabase.java @ 2428359b748778a5a345432906ab3da69289c20c (SchemaCache)
-- expect: 2200|main|
SELECT n.oid,n.*,d.description FROM pg_catalog.pg_namespace n
LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=n.oid AND d.objsubid=0 AND d.classoid='pg_namespace'::regclass
 ORDER BY nspname

-- query: dbeaver-roles
-- source: dbeaver/dbeaver .../model/PostgreDatabase.java @ 2428359b748778a5a345432906ab3da69289c20c (RoleCache)
SELECT a.oid,a.*,pd.description FROM pg_catalog.pg_roles a 
left join pg_catalog.pg_shdescription pd on a.oid = pd.objoid
ORDER BY a.rolname

-- query: dbeaver-tables
-- source: dbeaver/dbeaver .../model/PostgreSchema.java @ 2428359b748778a5a345432906ab3da69289c20c (TableCache.prepareLookupStatement, the schema's main OID)
-- args: [2200]
-- expect: |battery_now|2200|
-- expect: |battery_stats_1m|2200|
SELECT c.oid,c.*,d.description,pg_catalog.pg_get_expr(c.relpartbound, c.oid) as partition_expr,  pg_catalog.pg_get_partkeydef(c.oid) as partition_key 
FROM pg_catalog.pg_class c
LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0 AND d.classoid='pg_class'::regclass
WHERE c.relnamespace=$1 AND c.relkind not in ('i','I','c')

-- query: dbeaver-columns
-- source: dbeaver/dbeaver .../model/PostgreSchema.java @ 2428359b748778a5a345432906ab3da69289c20c (TableCache.prepareChildrenStatement, all tables of the schema)
-- args: [2200]
-- expect: battery_stats_1m|
-- expect: |window_start|1184|
SELECT c.relname,a.*,pg_catalog.pg_get_expr(ad.adbin, ad.adrelid, true) as def_value,dsc.description,dep.objid
FROM pg_catalog.pg_attribute a
INNER JOIN pg_catalog.pg_class c ON (a.attrelid=c.oid)
LEFT OUTER JOIN pg_catalog.pg_attrdef ad ON (a.attrelid=ad.adrelid AND a.attnum = ad.adnum)
LEFT OUTER JOIN pg_catalog.pg_description dsc ON (c.oid=dsc.objoid AND a.attnum = dsc.objsubid)
LEFT OUTER JOIN pg_depend dep on dep.refobjid = a.attrelid AND dep.deptype = 'i' and dep.refobjsubid = a.attnum and dep.classid = dep.refclassid
WHERE NOT a.attisdropped AND c.relkind not in ('i','I','c') AND c.relnamespace=$1
ORDER BY a.attnum

-- query: dbeaver-constraints
-- source: dbeaver/dbeaver .../model/PostgreSchema.java @ 2428359b748778a5a345432906ab3da69289c20c (ConstraintCache, all tables of the schema)
-- args: [2200]
SELECT c.oid,c.*,t.relname as tabrelname,rt.relnamespace as refnamespace,d.description, case when c.contype='c' then "substring"(pg_get_constraintdef(c.oid), 7) else null end consrc_copy
FROM pg_catalog.pg_constraint c
INNER JOIN pg_catalog.pg_class t ON t.oid=c.conrelid
LEFT OUTER JOIN pg_catalog.pg_class rt ON rt.oid=c.confrelid
LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0 AND d.classoid='pg_constraint'::regclass
WHERE t.relnamespace=$1
ORDER BY c.oid

-- query: dbeaver-indexes
-- source: dbeaver/dbeaver .../model/PostgreSchema.java @ 2428359b748778a5a345432906ab3da69289c20c (IndexCache, all tables of the schema)
-- args: [2200]
SELECT i.*,i.indkey as keys,c.relname,c.relnamespace,c.relam,c.reltablespace,tc.relname as tabrelname,dsc.description,pg_catalog.pg_get_expr(i.indpred, i.indrelid) as pred_expr,pg_catalog.pg_get_expr(i.indexprs, i.indrelid, true) as expr,pg_catalog.pg_relation_size(i.indexrelid) as index_rel_size,pg_catalog.pg_stat_get_numscans(i.indexrelid) as index_num_scans
FROM pg_catalog.pg_index i
INNER JOIN pg_catalog.pg_class c ON c.oid=i.indexrelid
INNER JOIN pg_catalog.pg_class tc ON tc.oid=i.indrelid
LEFT OUTER JOIN pg_catalog.pg_description dsc ON i.indexrelid=dsc.objoid
WHERE  c.relnamespace=$1 ORDER BY c.relname
