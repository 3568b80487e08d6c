package main

import (
	"strings"
	"testing"
	"time"
)

// TestSQLClient_TablePrintsIntegersAndLocalTimes: an answer as POST
// /v1/sql writes it prints count(*) and epoch milliseconds as integers,
// floats as written, timestamps in RFC 3339 in the site zone, and says
// which zone.
func TestSQLClient_TablePrintsIntegersAndLocalTimes(t *testing.T) {
	data := []byte(`{"columns":[{"name":"count_star()","type":"BIGINT"},{"name":"ts_ms","type":"BIGINT"},{"name":"ts","type":"TIMESTAMP WITH TIME ZONE"},{"name":"v","type":"DOUBLE"},{"name":"id","type":"VARCHAR"}],
"freshness":{"batch_version":3,"speed_lag_records":0},"rows":[[6407000,1795434115105,"2026-11-21T10:00:00.123Z",51.25,null]],"row_count":1}`)
	res, err := decodeAnswer(data)
	if err != nil {
		t.Fatal(err)
	}
	seoul, _ := time.LoadLocation("Asia/Seoul")
	var out strings.Builder
	renderTable(&out, res, seoul, 5*time.Millisecond)
	got := out.String()
	for _, want := range []string{"6407000", "1795434115105", "2026-11-21T19:00:00.123+09:00", "51.25", "NULL", "times in Asia/Seoul", "batch version 3"} {
		if !strings.Contains(got, want) {
			t.Errorf("the table lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "e+") {
		t.Errorf("a number printed in exponent form:\n%s", got)
	}
}

func TestSQLClient_Shortcuts(t *testing.T) {
	for _, c := range []struct {
		line, query string
		ok, fails   bool
	}{
		{`\dt`, "SELECT table_name, table_type FROM information_schema.tables ORDER BY table_name", true, false},
		{` \d battery_stats_1m `, "DESCRIBE battery_stats_1m", true, false},
		{`\d battery_now;`, "DESCRIBE battery_now", true, false},
		{`\d '/etc/passwd'`, "", true, true},
		{`\x`, "", true, true},
		{"SELECT 1", "", false, false},
	} {
		q, ok, err := metaQuery(c.line)
		if q != c.query || ok != c.ok || (err != nil) != c.fails {
			t.Errorf("%q: %q %v %v, want %q %v fails=%v", c.line, q, ok, err, c.query, c.ok, c.fails)
		}
	}
}
