// A client of node-postgres (pg from npm): sign in with a password
// (SCRAM-SHA-256), list the tables, run a query with a timestamp
// parameter, unnamed and as a named prepared statement, and read each
// type as pg converts it. TestClients_RealEngine runs it against the real
// engine and asserts on the JSON it prints.
//
// Usage: NODE_PATH=.../node_modules node gridlake-pg.js HOST PORT USER PASSWORD
'use strict';
const { Client } = require('pg');

async function main() {
  const [host, port, user, password] = process.argv.slice(2);
  const client = new Client({ host, port: Number(port), user, password, database: 'gridlake',
    application_name: 'gridlake-node-test', connectionTimeoutMillis: 10000, query_timeout: 60000 });
  await client.connect();
  const out = {};
  try {
    out.version = (await client.query('SELECT version() AS v')).rows[0].v;
    out.tables = (await client.query(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY table_name")).rows.map((r) => r.table_name);
    const since = new Date(Date.now() - 24 * 3600 * 1000);
    const text = 'SELECT battery_id, window_start, n, voltage_v_mean, true AS flag, n::HUGEINT * 2 AS big, 7::INTEGER AS small, ' +
      'NULL::DOUBLE AS missing FROM battery_stats_1m WHERE window_start >= $1 ORDER BY window_start, battery_id LIMIT 3';
    const unnamed = await client.query(text, [since]);
    const named = await client.query({ name: 'stats_since', text, values: [since] });
    const again = await client.query({ name: 'stats_since', text, values: [since] });
    out.fields = unnamed.fields.map((f) => ({ name: f.name, oid: f.dataTypeID }));
    out.rows = unnamed.rows.map((r) => ({
      battery_id: r.battery_id,
      window_start: r.window_start instanceof Date ? r.window_start.toISOString() : 'not a Date: ' + typeof r.window_start,
      since_ok: r.window_start instanceof Date && r.window_start >= since,
      n: r.n, n_type: typeof r.n,
      mean: r.voltage_v_mean, mean_type: typeof r.voltage_v_mean,
      flag: r.flag, big: r.big, small: r.small, missing: r.missing,
    }));
    out.named_same = JSON.stringify(named.rows) === JSON.stringify(unnamed.rows) &&
      JSON.stringify(again.rows) === JSON.stringify(unnamed.rows);
    out.count = (await client.query('SELECT count(*) AS n FROM battery_now WHERE battery_id <> $1', ['nobody'])).rows[0].n;
  } finally {
    await client.end();
  }
  console.log(JSON.stringify(out));
}

main().catch((err) => {
  console.error('gridlake-pg:', err && err.stack ? err.stack : err);
  process.exit(1);
});
