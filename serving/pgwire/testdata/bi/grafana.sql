-- Introspection queries of Grafana's PostgreSQL data source, copied from its
-- public source (the query texts only). TestClients_RealEngine replays each
-- over pgx, in the simple and the extended protocol; each must succeed and
-- list what its expect lines name. Format: "-- query: NAME" starts an entry;
-- "-- args:" is a JSON array of parameters; each "-- expect:" is text that
-- must appear in a row (columns joined by |).

-- query: grafana-version
-- source: grafana/grafana public/app/plugins/datasource/grafana-postgresql-datasource/postgresMetaQuery.ts @ 12f912ab8d010f4d95a4043a0efaa20fc4ca0100 (getVersion, on saving the data source)
-- expect: 1400
SELECT current_setting('server_version_num')::int/100 as version

-- query: grafana-timescaledb
-- source: grafana/grafana public/app/plugins/datasource/grafana-postgresql-datasource/postgresMetaQuery.ts @ 12f912ab8d010f4d95a4043a0efaa20fc4ca0100 (getTimescaleDBVersion)
SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'

-- query: grafana-schemas
-- source: grafana/grafana public/app/plugins/datasource/grafana-postgresql-datasource/postgresMetaQuery.ts @ 12f912ab8d010f4d95a4043a0efaa20fc4ca0100 (showSchemas)
-- expect: main
SELECT schema_name AS "name"
    FROM information_schema.schemata
    WHERE schema_name NOT IN ('information_schema',
                              'pg_catalog',
                              'pg_toast',
                              '_timescaledb_cache',
                              '_timescaledb_catalog',
                              '_timescaledb_internal',
                              '_timescaledb_config',
                              'timescaledb_information',
                              'timescaledb_experimental')
    ORDER BY schema_name

-- query: grafana-tables-of-schema
-- source: grafana/grafana public/app/plugins/datasource/grafana-postgresql-datasource/postgresMetaQuery.ts @ 12f912ab8d010f4d95a4043a0efaa20fc4ca0100 (showTables('main'))
-- expect: battery_now
-- expect: battery_stats_1m
SELECT quote_ident(table_name) AS "table"
      FROM information_schema.tables
      WHERE quote_ident(table_schema) = 'main'
      ORDER BY 1

-- query: grafana-tables
-- source: grafana/grafana public/app/plugins/datasource/grafana-postgresql-datasource/postgresMetaQuery.ts @ 12f912ab8d010f4d95a4043a0efaa20fc4ca0100 (showTables(), the query editor's table list)
-- expect: battery_now
-- expect: battery_stats_1m
SELECT
    CASE WHEN 
          quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          )
      THEN quote_ident(table_name)
      ELSE quote_ident(table_schema) || '.' || quote_ident(table_name)
    END AS "table"
    FROM information_schema.tables
    WHERE quote_ident(table_schema) NOT IN ('information_schema',
                             'pg_catalog',
                             '_timescaledb_cache',
                             '_timescaledb_catalog',
                             '_timescaledb_internal',
                             '_timescaledb_config',
                             'timescaledb_information',
                             'timescaledb_experimental')
    ORDER BY CASE WHEN 
          quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          ) THEN 0 ELSE 1 END, 1

-- query: grafana-columns
-- source: grafana/grafana public/app/plugins/datasource/grafana-postgresql-datasource/postgresMetaQuery.ts @ 12f912ab8d010f4d95a4043a0efaa20fc4ca0100 (getSchema('battery_stats_1m'), the query editor's column list)
-- expect: window_start|timestamp with time zone
-- expect: n|bigint
SELECT quote_ident(column_name) AS "column", data_type AS "type"
    FROM information_schema.columns
    WHERE
      CASE WHEN array_length(parse_ident('battery_stats_1m'),1) = 2
        THEN quote_ident(table_schema) = (parse_ident('battery_stats_1m'))[1]
          AND quote_ident(table_name) = (parse_ident('battery_stats_1m'))[2]
        ELSE quote_ident(table_name) = 'battery_stats_1m'
          AND 
          quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          )
      END

-- query: grafana-health
-- source: grafana/grafana pkg/tsdb/grafana-postgresql-datasource/pgx/handler_checkhealth.go @ 1b13755cdccfbc5420c9fcb7d6cf2dad7b2888e6 (CheckHealth calls pgx's Ping, which sends this)
-- ping: yes
-- ping

-- query: grafana-backend-schemas
-- source: grafana/grafana pkg/tsdb/grafana-postgresql-datasource/schema.go @ 043dd88a47944c35205994c4da317e100dc9b12e (querySchemas)
-- expect: main
SELECT schema_name FROM information_schema.schemata
		 WHERE schema_name NOT LIKE 'pg_%' AND schema_name != 'information_schema'
		 ORDER BY schema_name

-- query: grafana-backend-tables
-- source: grafana/grafana pkg/tsdb/grafana-postgresql-datasource/schema.go @ 043dd88a47944c35205994c4da317e100dc9b12e (queryTables)
-- args: ["main"]
-- expect: battery_now
-- expect: battery_raw
SELECT table_name FROM information_schema.tables
		 WHERE table_schema = $1 AND table_type IN ('BASE TABLE', 'VIEW')
		 ORDER BY table_name

-- query: grafana-backend-columns
-- source: grafana/grafana pkg/tsdb/grafana-postgresql-datasource/schema.go @ 043dd88a47944c35205994c4da317e100dc9b12e (queryColumns)
-- args: ["main", "battery_stats_1m"]
-- expect: window_start|timestamp with time zone|timestamptz
-- expect: voltage_v_mean|double precision|float8
SELECT column_name, data_type, udt_name, numeric_precision, numeric_scale
		 FROM information_schema.columns
		 WHERE table_schema = $1 AND table_name = $2
		 ORDER BY ordinal_position
