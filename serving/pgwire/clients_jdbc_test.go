package pgwire

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// jdbcJar is where Debian's libpostgresql-jdbc-java puts the driver;
// `make deps` installs it.
const jdbcJar = "/usr/share/java/postgresql.jar"

// testJDBC compiles testdata/clients/GridlakeJDBC.java against the
// PostgreSQL JDBC driver and runs it against addr: DatabaseMetaData lists
// the merged tables and their columns, a prepared statement takes a
// timestamptz parameter, and every column type reads back.
func testJDBC(t *testing.T, addr string) {
	javac, err1 := exec.LookPath("javac")
	java, err2 := exec.LookPath("java")
	if err1 != nil || err2 != nil {
		t.Fatal("javac/java missing: make deps installs a JDK")
	}
	if _, err := os.Stat(jdbcJar); err != nil {
		t.Fatalf("the PostgreSQL JDBC driver is missing (%v): make deps installs libpostgresql-jdbc-java", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	classes := t.TempDir()
	src, err := filepath.Abs(filepath.Join("testdata", "clients", "GridlakeJDBC.java"))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.CommandContext(ctx, javac, "-cp", jdbcJar, "-d", classes, src).CombinedOutput(); err != nil {
		t.Fatalf("javac: %v\n%s", err, out)
	}
	host, port, _ := splitHostPort(addr)
	url := "jdbc:postgresql://" + host + ":" + port + "/gridlake?sslmode=disable&connectTimeout=10&socketTimeout=60"
	cmd := exec.CommandContext(ctx, java, "-Xshare:auto", "-cp", classes+string(os.PathListSeparator)+jdbcJar, "GridlakeJDBC", url, "analyst", analystPassword)
	out, err := cmd.CombinedOutput()
	text := string(out)
	if err != nil {
		t.Fatalf("java GridlakeJDBC: %v\n%s", err, text)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(text, "\n") {
		lines[l] = true
	}
	for _, w := range []string{
		"schema|main",
		"table|main|battery_now|VIEW|Merged, exact now: each battery's latest reading, batch and speed layers together.",
		"table|main|battery_stats_1m|VIEW|Merged, exact now: per battery and minute, batch and speed layers together; the table to query for battery statistics.",
		"table|main|battery_raw|TABLE|Every valid battery reading as it arrived in Kafka",
		"column|battery_stats_1m|battery_id|12|text|1|The battery's id (the Kafka key of its readings).",
		"column|battery_stats_1m|window_start|93|timestamptz|2|Start of the window (timestamp with time zone, UTC).",
		"column|battery_stats_1m|n|-5|int8|4|Readings in the window.",
		"column|battery_now|soc_pct|8|float8|",
		"primary_keys|0",
		"result_column|battery_id|text|12", "result_column|window_start|timestamptz|93", "result_column|n|int8|-5",
		"result_column|voltage_v_mean|float8|8", "result_column|flag|bool|-7", "result_column|big|numeric|2", "result_column|small|int4|4",
		"run|1|3", "run|2|3", "run|6|3", "run|7|3",
		"done",
	} {
		if strings.HasSuffix(w, "|") || strings.HasSuffix(w, "Kafka") {
			if !hasPrefixLine(text, w) {
				t.Errorf("JDBC printed no line starting %q:\n%s", w, text)
			}
			continue
		}
		if !lines[w] {
			t.Errorf("JDBC printed no line %q:\n%s", w, text)
		}
	}
	// Each row read every type; rows of the first run and of the last
	// (binary, named statement) agree.
	var first, last []string
	for _, l := range strings.Split(text, "\n") {
		f := strings.Split(l, "|")
		switch {
		case f[0] == "row1" || f[0] == "row7":
			// id|start|start>=since|n|mean>0|flag|big|big==2n|small
			if len(f) != 10 || f[1] == "" || f[3] != "true" || f[4] == "0" || f[5] != "true" || f[6] != "true" || f[8] != "true" || f[9] != "7" {
				t.Errorf("JDBC row %q: want an id, a window_start since the parameter, n > 0, mean > 0, true, 2n, 7", l)
			}
			if !strings.HasSuffix(f[2], "Z") {
				t.Errorf("JDBC getObject(OffsetDateTime) %q: want UTC", f[2])
			}
			if f[0] == "row1" {
				first = append(first, strings.Join(f[1:], "|"))
			} else {
				last = append(last, strings.Join(f[1:], "|"))
			}
		case f[0] == "count":
			if len(f) != 6 || f[1] == "0" || f[2] != "héllo" || f[3] != "0.0" || f[4] != "true" || f[5] != "1.5" {
				t.Errorf("JDBC simple statement %q: want a count > 0, héllo, NULL read as 0.0 with wasNull, 1.5", l)
			}
		}
	}
	if strings.Join(first, "\n") != strings.Join(last, "\n") {
		t.Errorf("JDBC first run (text) and last run (prepared, binary) differ:\n%v\n%v", first, last)
	}
}

func hasPrefixLine(text, prefix string) bool {
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}
