package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/gridlake/gridlake/auth"
)

const sqlSynopsis = `A terminal SQL client for analysts: it sends read-only DuckDB queries to
a running gridlake (serve or up) over HTTP (POST /v1/sql) and prints the rows.
Without -c it reads queries from stdin, one per ';'. \dt lists the tables
and \d TABLE describes one. The table format prints integers as integers and
timestamps in RFC 3339 in the site time zone (site.timezone); csv and json
print the server's answer as it is (timestamps in UTC).

Tables: battery_raw, room_raw, battery_1m/1h/1d, fleet_1m/1h, battery_latest,
room_day (batch), battery_stats_1m/1h/1d, fleet_stats_1m/1h/1d, battery_now,
room_day_live, hotel_day (batch merged with the speed layer: exact and fresh).
Site-local time without ICU: local_day(ts), local_hour(ts), local_time(ts),
local_today(), local_days_ago(n), local_now(), and local_day/local_hour columns.

Examples:
  gridlake sql -c "SELECT battery_id, soc_pct FROM battery_now ORDER BY soc_pct LIMIT 5"
  gridlake sql --format csv -c "SELECT * FROM fleet_stats_1h" > fleet.csv
  gridlake sql -c "SELECT room_id, sum(waste_wh) FROM room_day_live WHERE day = local_days_ago(1) GROUP BY 1"
  psql -h 127.0.0.1 -p 15432 -U demo   (the same tables over the PostgreSQL protocol)

It sends the token in $GRIDLAKE_TOKEN, else the demo token that gridlake up
keeps in <data_dir>/auth/demo-token.`

func runSQL(ctx context.Context, e *env, args []string) error {
	fs, loader := flags(e, "sql", sqlSynopsis)
	query := fs.String("c", "", "run this one query and exit")
	format := fs.String("format", "table", "output: table, csv or json")
	cfg, err := load(fs, loader, e, args)
	if err != nil {
		return err
	}
	accept := map[string]string{"table": "application/json", "json": "application/json", "csv": "text/csv"}[*format]
	if accept == "" {
		return fmt.Errorf("--format %q: send table, csv or json", *format)
	}
	cl, err := newAPIClient(e, &cfg)
	if err != nil {
		return err
	}
	loc, err := cfg.Location()
	if err != nil {
		return err
	}
	runOne := func(q string) error {
		if mq, ok, err := metaQuery(q); ok {
			if err != nil {
				return err
			}
			q = mq
		}
		return sqlOnce(ctx, e.stdout, cl, q, *format, accept, loc)
	}
	if *query != "" {
		return runOne(*query)
	}
	in := bufio.NewScanner(os.Stdin)
	var buf strings.Builder
	failed := false
	for in.Scan() {
		if strings.TrimSpace(buf.String()) == "" && strings.HasPrefix(strings.TrimSpace(in.Text()), `\`) {
			// A shortcut ends at its line, as in psql.
			if err := runOne(in.Text()); err != nil {
				fmt.Fprintln(e.stderr, "error:", err)
				failed = true
			}
			continue
		}
		buf.WriteString(in.Text())
		buf.WriteByte('\n')
		if strings.HasSuffix(strings.TrimSpace(in.Text()), ";") {
			if err := runOne(buf.String()); err != nil {
				fmt.Fprintln(e.stderr, "error:", err)
				failed = true
			}
			buf.Reset()
		}
	}
	if strings.TrimSpace(buf.String()) != "" {
		if err := runOne(buf.String()); err != nil {
			return err
		}
	}
	if failed {
		return fmt.Errorf("some queries failed")
	}
	return in.Err()
}

func sqlOnce(ctx context.Context, out io.Writer, cl *apiClient, q, format, accept string, loc *time.Location) error {
	body, _ := json.Marshal(map[string]string{"sql": strings.TrimRight(strings.TrimSpace(q), ";")})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cl.base+"/v1/sql", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", accept)
	t0 := time.Now()
	resp, err := cl.do(req)
	if err != nil {
		return fmt.Errorf("%w\nis gridlake running? start it with gridlake up, or point --http-addr at it", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			if resp.StatusCode == http.StatusUnauthorized {
				return fmt.Errorf("%s\nset %s to a token of role analyst or above (gridlake auth add-token NAME --role analyst)", e.Error, auth.TokenEnv)
			}
			return fmt.Errorf("%s", e.Error)
		}
		return fmt.Errorf("%s: %s", resp.Status, data)
	}
	if format != "table" {
		_, err = out.Write(data)
		return err
	}
	res, err := decodeAnswer(data)
	if err != nil {
		return err
	}
	renderTable(out, res, loc, time.Since(t0))
	if res.Error != "" {
		return fmt.Errorf("the answer was cut short: %s", res.Error)
	}
	return nil
}
