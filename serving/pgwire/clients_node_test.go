package pgwire

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// nodeModules finds the node_modules folder holding node-postgres: the
// one GRIDLAKE_NODE_MODULES names, else bin/node/node_modules in a folder
// above the test (where `make deps` installs it).
func nodeModules(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("GRIDLAKE_NODE_MODULES"); p != "" {
		return p
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		p := filepath.Join(dir, "bin", "node", "node_modules")
		if _, err := os.Stat(filepath.Join(p, "pg", "package.json")); err == nil {
			return p
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	t.Fatalf("node-postgres is missing from bin/node/node_modules above %s: run `make deps`, or set GRIDLAKE_NODE_MODULES", wd)
	return ""
}

// nodeResult is what testdata/clients/gridlake-pg.js prints.
type nodeResult struct {
	Version string   `json:"version"`
	Tables  []string `json:"tables"`
	Fields  []struct {
		Name string `json:"name"`
		OID  uint32 `json:"oid"`
	} `json:"fields"`
	Rows []struct {
		BatteryID   string   `json:"battery_id"`
		WindowStart string   `json:"window_start"`
		SinceOK     bool     `json:"since_ok"`
		N           any      `json:"n"`
		NType       string   `json:"n_type"`
		Mean        any      `json:"mean"`
		MeanType    string   `json:"mean_type"`
		Flag        any      `json:"flag"`
		Big         any      `json:"big"`
		Small       any      `json:"small"`
		Missing     *float64 `json:"missing"`
	} `json:"rows"`
	NamedSame bool `json:"named_same"`
	Count     any  `json:"count"`
}

// testNodePostgres runs testdata/clients/gridlake-pg.js with node-postgres
// against addr: SCRAM sign-in, a parameter, each type as pg reads it.
func testNodePostgres(t *testing.T, addr string) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is missing: make deps installs Node.js")
	}
	modules := nodeModules(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	host, port, _ := splitHostPort(addr)
	cmd := exec.CommandContext(ctx, node, filepath.Join("testdata", "clients", "gridlake-pg.js"), host, port, "analyst", analystPassword)
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules, "PGSSLMODE=disable", "TZ=UTC")
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("node gridlake-pg.js: %v\n%s\n%s", err, out, stderr)
	}
	var r nodeResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("node printed %s: %v", out, err)
	}
	if r.Version == "" || !contains(r.Tables, "battery_now") || !contains(r.Tables, "battery_stats_1m") || !contains(r.Tables, "battery_raw") {
		t.Errorf("node-postgres: version %q, tables %v: want battery_now, battery_stats_1m, battery_raw", r.Version, r.Tables)
	}
	var oids []uint32
	for _, f := range r.Fields {
		oids = append(oids, f.OID)
	}
	if want := []uint32{25, 1184, 20, 701, 16, 1700, 23, 701}; !equalOIDs(oids, want) {
		t.Errorf("node-postgres field OIDs %v, want %v", oids, want)
	}
	if len(r.Rows) != 3 {
		t.Fatalf("node-postgres read %d rows, want 3: %s", len(r.Rows), out)
	}
	for _, row := range r.Rows {
		// pg reads int8 and numeric as strings (they may not fit a JS
		// number), float8 and int4 as numbers, timestamptz as a Date.
		n, _ := row.N.(string)
		big, _ := row.Big.(string)
		nv, err1 := strconv.ParseInt(n, 10, 64)
		bv, err2 := strconv.ParseInt(big, 10, 64)
		mean, _ := row.Mean.(float64)
		if row.BatteryID == "" || !row.SinceOK || row.NType != "string" || err1 != nil || nv <= 0 || err2 != nil || bv != 2*nv ||
			row.MeanType != "number" || mean <= 0 || row.Flag != true || row.Small != float64(7) || row.Missing != nil {
			t.Errorf("node-postgres row %+v", row)
		}
		if _, err := time.Parse(time.RFC3339Nano, row.WindowStart); err != nil {
			t.Errorf("node-postgres window_start %q: %v", row.WindowStart, err)
		}
	}
	if !r.NamedSame {
		t.Error("node-postgres: the named prepared statement read other rows than the unnamed query")
	}
	if c := fmt.Sprint(r.Count); c == "" || c == "0" {
		t.Errorf("node-postgres count %v", r.Count)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
