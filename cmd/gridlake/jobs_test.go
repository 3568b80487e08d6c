package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gridlake/gridlake/internal/testenv"
	"github.com/gridlake/gridlake/jobs"
)

// TestJobs_UpSchedulesAndCLI: `gridlake up` schedules compaction (every 2s
// here) so the lake fills by itself; /v1/jobs lists the jobs, triggers one
// and shows its history; `gridlake jobs` reads the same history from the
// lake, runs a job and a backfill, and exits non-zero on what fails.
func TestJobs_UpSchedulesAndCLI(t *testing.T) {
	ctx := context.Background()
	u := startUp(t, "--jobs-compact-every", "2s", "--jobs-lease", "5s")
	base := "http://" + u.http

	var list struct {
		Jobs []jobs.Status `json:"jobs"`
	}
	testenv.WaitUntil(t, 60*time.Second, "a scheduled compaction to commit", func() bool {
		getJSON(t, u.token, base+"/v1/jobs", &list)
		for _, s := range list.Jobs {
			if s.Name == jobs.JobCompact && s.LastOK != nil && s.LastOK.Version > 0 && s.LastOK.Rows > 0 {
				return s.LastOK.Trigger == "schedule" && s.LastOK.By == jobs.BySchedule
			}
		}
		return false
	}, u.stderr)
	if len(list.Jobs) != 7 {
		t.Fatalf("%d jobs listed, want 7: %+v", len(list.Jobs), list.Jobs)
	}

	// Trigger over HTTP; the run shows up in the history.
	resp, err := tokenClient(u.token, 0).Post(base+"/v1/jobs/recompute/run", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	var accepted struct{ Number int64 }
	json.NewDecoder(resp.Body).Decode(&accepted)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || accepted.Number < 1 {
		t.Fatalf("trigger: %d %+v", resp.StatusCode, accepted)
	}
	testenv.WaitUntil(t, 30*time.Second, "the triggered recompute to finish", func() bool {
		var h struct{ Runs []jobs.Run }
		getJSON(t, u.token, base+"/v1/jobs/recompute/runs", &h)
		for _, r := range h.Runs {
			if r.Number == accepted.Number {
				return r.Status == jobs.StatusOK && r.Trigger == "manual" && r.By == "token:demo"
			}
		}
		return false
	}, u.stderr)
	for path, want := range map[string]int{"/v1/jobs/nope/run": 404, "/v1/jobs/backfill/run": 400} {
		resp, err := tokenClient(u.token, 0).Post(base+path, "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("POST %s: %d, want %d", path, resp.StatusCode, want)
		}
	}

	// The CLI, as a separate client of the same lake.
	cli := func(args ...string) (string, error) {
		var stdout, stderr syncBuffer
		e := &env{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
		args = append(args, "--s3-endpoint", u.s3, "--kafka-brokers", u.kafka, "--data-dir", t.TempDir())
		err := run(ctx, e, args)
		return stdout.String(), err
	}
	out, err := cli("jobs", "history", "compact", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var runs []jobs.Run
	if err := json.Unmarshal([]byte(out), &runs); err != nil || len(runs) == 0 {
		t.Fatalf("history: %v\n%s", err, out)
	}
	for i := 1; i < len(runs); i++ {
		if runs[i].Number >= runs[i-1].Number {
			t.Fatalf("history not newest first: %d after %d", runs[i].Number, runs[i-1].Number)
		}
	}
	out, err = cli("jobs", "run", "compact")
	if err != nil || !strings.Contains(out, "compact run ") || !strings.Contains(out, ": ok in") {
		t.Fatalf("jobs run compact: %v\n%s", err, out)
	}
	// The CLI's run records the operating-system user who asked.
	if out, err = cli("jobs", "history", "compact", "--json", "--limit", "1"); err != nil || json.Unmarshal([]byte(out), &runs) != nil ||
		len(runs) != 1 || runs[0].By != cliUser() || !strings.HasPrefix(runs[0].By, "cli:") {
		t.Fatalf("the CLI's compact run does not record who asked (%s): %v\n%s", cliUser(), err, out)
	}
	if out, err = cli("jobs", "history", "compact"); err != nil || !strings.Contains(out, "BY") || !strings.Contains(out, cliUser()) {
		t.Fatalf("jobs history lacks the BY column: %v\n%s", err, out)
	}
	today := time.Now().In(mustLoc(t, "Asia/Seoul")).Format("2006-01-02")
	out, err = cli("jobs", "backfill", "--from", today, "--to", today)
	if err != nil || !strings.Contains(out, "backfill run ") {
		t.Fatalf("jobs backfill: %v\n%s", err, out)
	}
	out, err = cli("jobs", "status")
	if err != nil {
		t.Fatalf("jobs status: %v\n%s", err, out)
	}
	for _, name := range []string{"compact", "recompute", "close", "merge", "retain", "collect", "backfill"} {
		if !strings.Contains(out, name) {
			t.Fatalf("jobs status lacks %s:\n%s", name, out)
		}
	}
	if _, err := cli("jobs", "run", "nope"); err == nil || !strings.Contains(err.Error(), `no job "nope"`) {
		t.Fatalf("unknown job: %v", err)
	}
	if _, err := cli("jobs", "backfill", "--from", today); !errors.Is(err, errUsage) {
		t.Fatalf("backfill without --to: %v", err)
	}
	// Bad ranges are usage errors, refused before any slot is claimed.
	if _, err := cli("jobs", "backfill", "--from", "yesterday", "--to", today); !errors.Is(err, errUsage) {
		t.Fatalf("backfill with a bad day: %v", err)
	}
	before, err := cli("jobs", "history", "backfill", "--json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli("jobs", "backfill", "--from", "2026-11-07", "--to", "2026-11-01"); !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "after") {
		t.Fatalf("backwards backfill: %v", err)
	}
	if after, err := cli("jobs", "history", "backfill", "--json"); err != nil || after != before {
		t.Fatalf("a refused backfill changed the history: %v\n%s\nwas\n%s", err, after, before)
	}
	if err := u.stop(); err != nil {
		t.Fatal(err)
	}
}

func getJSON(t *testing.T, token, url string, v any) {
	t.Helper()
	resp, err := tokenClient(token, 0).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

func mustLoc(t *testing.T, name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}
