package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// sqlAnswer is POST /v1/sql's JSON answer, numbers kept as written.
type sqlAnswer struct {
	Columns []struct{ Name, Type string }
	Rows    [][]any
	Error   string // an answer cut short after rows went out
	Fresh   struct {
		BatchVersion int64 `json:"batch_version"`
		SpeedLag     int64 `json:"speed_lag_records"`
	} `json:"freshness"`
}

func decodeAnswer(data []byte) (*sqlAnswer, error) {
	var res sqlAnswer
	dec := json.NewDecoder(strings.NewReader(string(data)))
	// Integers stay integers: count(*) prints 6407000, not 6.407e+06.
	dec.UseNumber()
	if err := dec.Decode(&res); err != nil {
		return nil, fmt.Errorf("read the answer: %w", err)
	}
	return &res, nil
}

// cellText renders one value for the table: numbers as the server wrote
// them, timestamps in RFC 3339 in the site zone, NULL as NULL.
func cellText(v any, typ string, loc *time.Location) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case json.Number:
		return x.String()
	case string:
		if strings.HasPrefix(typ, "TIMESTAMP") {
			if t, err := time.Parse(time.RFC3339Nano, x); err == nil {
				return t.In(loc).Format(time.RFC3339Nano)
			}
		}
		return x
	case map[string]any, []any:
		b, _ := json.Marshal(x)
		return string(b)
	}
	return fmt.Sprint(v)
}

// renderTable prints the answer as aligned columns and a footer naming
// the rows, the time taken, the freshness and the zone of the timestamps.
func renderTable(out io.Writer, res *sqlAnswer, loc *time.Location, took time.Duration) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	for i, c := range res.Columns {
		if i > 0 {
			fmt.Fprint(tw, "\t")
		}
		fmt.Fprint(tw, c.Name)
	}
	fmt.Fprintln(tw)
	for _, row := range res.Rows {
		for i, v := range row {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			typ := ""
			if i < len(res.Columns) {
				typ = res.Columns[i].Type
			}
			fmt.Fprint(tw, cellText(v, typ, loc))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	fmt.Fprintf(out, "(%d rows, %.0f ms, batch version %d, speed lag %d records; times in %s)\n", len(res.Rows),
		float64(took.Microseconds())/1000, res.Fresh.BatchVersion, res.Fresh.SpeedLag, loc)
}

// metaQuery turns a psql-style shortcut into the query the server answers:
// \dt lists the tables, \d TABLE describes one. ok is false for a line
// that is no shortcut.
func metaQuery(line string) (query string, ok bool, err error) {
	f := strings.Fields(strings.TrimRight(strings.TrimSpace(line), ";"))
	if len(f) == 0 || !strings.HasPrefix(f[0], `\`) {
		return "", false, nil
	}
	switch {
	case f[0] == `\dt` && len(f) == 1:
		return "SELECT table_name, table_type FROM information_schema.tables ORDER BY table_name", true, nil
	case (f[0] == `\d` || f[0] == `\dt`) && len(f) == 2:
		name := f[1]
		if !plainIdent(name) {
			return "", true, fmt.Errorf(`\d %s: name a table (letters, digits and _)`, name)
		}
		return "DESCRIBE " + name, true, nil
	case f[0] == `\d` && len(f) == 1:
		return "SELECT table_name, table_type FROM information_schema.tables ORDER BY table_name", true, nil
	}
	return "", true, fmt.Errorf(`unknown command %s: \dt lists the tables, \d TABLE describes one`, f[0])
}

func plainIdent(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
