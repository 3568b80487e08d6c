package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/gridlake/gridlake/alerts"
	"github.com/gridlake/gridlake/internal/testenv"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/schemas"
)

// TestRules_ReloadOnFileChangeAndSIGHUPOnUp runs `gridlake up` (speed
// layer and serving in one process) with a rules file and one battery
// whose readings are released one at a time, and changes the rules under
// it: a rewritten file is picked up by its modification time, a file
// swapped in with the old modification time only on SIGHUP, and a file
// that does not parse is refused with a log line while the rules in use
// stay. After each step /v1/alerts/rules lists the rules in force, and the
// transitions on gridlake.alerts are exactly those the rules in force at
// each reading give: a threshold raised resolves the alert it fired, a new
// rule fires under its own name, a removed one is gone.
func TestRules_ReloadOnFileChangeAndSIGHUPOnUp(t *testing.T) {
	// The SIGHUPs go to this test process, which runs `up`: catch them
	// here too, so one that came before up's watcher listens does not
	// stop the test.
	hup := make(chan os.Signal, 8)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	dir := t.TempDir()
	path := filepath.Join(dir, "rules.yaml")
	const (
		v1 = "rules:\n  - {name: hot, kind: threshold, severity: critical, metric: temperature_c, op: \">\", fire: 45, clear: 42, for: 0s}\n"
		v2 = "rules:\n  - {name: hot, kind: threshold, severity: critical, metric: temperature_c, op: \">\", fire: 60, clear: 55, for: 0s}\n" +
			"  - {name: warm, kind: threshold, severity: warning, metric: temperature_c, op: \">\", fire: 48, clear: 46, for: 0s}\n"
		v3 = "rules:\n  - {name: warm, kind: threshold, severity: warning, metric: temperature_c, op: \">\", fire: 53, clear: 52, for: 0s}\n" +
			"  - {name: soc_low, kind: threshold, severity: warning, metric: soc_pct, op: \"<\", fire: 30, clear: 35, for: 0s}\n"
		// Valid but for its second rule: were it applied in part, warm
		// would fire at 45 °C.
		bad = "rules:\n  - {name: warm, kind: threshold, severity: warning, metric: temperature_c, op: \">\", fire: 40, clear: 38, for: 0s}\n" +
			"  - {name: cold, kind: threshold, severity: warning, metric: temperature_c, op: \"=\", fire: 5, clear: 5, for: 0s}\n"
	)
	if err := os.WriteFile(path, []byte(v1), 0o600); err != nil {
		t.Fatal(err)
	}
	// No simulator: the test's battery is the only one. Every reading is
	// released as it arrives: its record time is 5 s after its ts and the
	// lateness 1 s.
	u := startUp(t, "--simulate=false", "--jobs-enabled=false", "--alerts-rules-file", path, "--alerts-lateness", "1s")
	c := apiCaller{t: t, base: "http://" + u.http}
	w := kafkaio.NewWriter([]string{u.kafka})
	defer w.Close()
	const battery = "B-RELOAD"
	t0 := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	send := func(i int, temp, soc float64) int64 {
		t.Helper()
		ts := t0.Add(time.Duration(i) * 10 * time.Second)
		v := fmt.Sprintf(`{"battery_id":%q,"ts":%d,"voltage_v":50,"current_a":1,"temperature_c":%g,"soc_pct":%g}`, battery, ts.UnixMilli(), temp, soc)
		if err := w.WriteMessages(context.Background(), kafka.Message{Topic: schemas.TopicBattery, Key: []byte(battery), Value: []byte(v), Time: ts.Add(5 * time.Second)}); err != nil {
			t.Fatal(err)
		}
		return ts.UnixMilli()
	}
	type key struct {
		id    string
		state alerts.State
	}
	want := map[key]int64{} // → At
	expect := func(rule string, start int64, st alerts.State, at int64) {
		want[key{alerts.ID(rule, battery, start), st}] = at
	}
	// transitions waits until the topic holds every wanted transition and
	// then checks that it holds nothing else.
	transitions := func(step string) {
		t.Helper()
		var got map[key]int64
		testenv.WaitUntil(t, 60*time.Second, step+": the transitions on "+alerts.Topic, func() bool {
			got = map[key]int64{}
			for _, m := range testenv.ReadAll(t, u.kafka, alerts.Topic) {
				var tr alerts.Transition
				if err := json.Unmarshal(m.Value, &tr); err != nil {
					t.Fatal(err)
				}
				if string(m.Key) != tr.ID() {
					t.Fatalf("transition keyed %q, its ID is %q", m.Key, tr.ID())
				}
				got[key{tr.ID(), tr.State}] = tr.At
			}
			for k := range want {
				if _, ok := got[k]; !ok {
					return false
				}
			}
			return true
		}, stringer(func() string { return fmt.Sprintf("on the topic: %v\nwanted: %v\n%s", got, want, u.stderr) }))
		for k, at := range got {
			if w, ok := want[k]; !ok || w != at {
				t.Errorf("%s: %s %s at %d on the topic; want %v", step, k.id, k.state, at, want)
			}
		}
	}
	// rulesNow waits until /v1/alerts/rules lists want (name:fire).
	rulesNow := func(step string, want ...string) {
		t.Helper()
		testenv.WaitUntil(t, 30*time.Second, step+": /v1/alerts/rules lists "+strings.Join(want, ","), func() bool {
			var out struct {
				Rules []struct {
					Name string   `json:"name"`
					Fire *float64 `json:"fire"`
				} `json:"rules"`
			}
			if code, _ := c.do(u.token, "GET", "/v1/alerts/rules", "", &out); code != 200 {
				return false
			}
			var got []string
			for _, r := range out.Rules {
				got = append(got, fmt.Sprintf("%s:%g", r.Name, *r.Fire))
			}
			sort.Strings(got)
			return strings.Join(got, ",") == strings.Join(want, ",")
		}, u.stderr)
		// The speed layer takes new rules up from each partition's next
		// fetch, and a fetch waits at most 250 ms for records: a reading
		// sent now could still go to the old rules.
		time.Sleep(1500 * time.Millisecond)
	}
	rulesNow("v1", "hot:45")

	// v1: 50 °C is hot.
	ts := send(0, 50, 60)
	expect("hot", ts, alerts.Firing, ts)
	transitions("v1")
	hotStart := ts

	// v2, by rewriting the file: hot now fires above 60 and clears below
	// 55, so 50 °C resolves it; warm is new and fires.
	if err := os.WriteFile(path, []byte(v2), 0o600); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Hour) // a modification time that differs whatever the file system's resolution
	if err := os.Chtimes(path, future, future); err != nil {
		t.Fatal(err)
	}
	rulesNow("v2 (file changed)", "hot:60", "warm:48")
	testenv.WaitUntil(t, 30*time.Second, "the reload logged", func() bool { return strings.Contains(u.stderr.String(), "alert rules reloaded") }, u.stderr)
	ts = send(1, 50, 60)
	expect("hot", hotStart, alerts.Resolved, ts)
	expect("warm", ts, alerts.Firing, ts)
	transitions("v2")
	warmStart := ts

	// v3, swapped in with v2's modification time, so that only SIGHUP
	// makes the process read it: hot is gone, warm fires above 53 and
	// clears below 52, soc_low is new.
	swap := func(content string) {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(dir, "rules.new")
		if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(tmp, fi.ModTime(), fi.ModTime()); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	swap(v3)
	time.Sleep(3 * time.Second) // more than the watcher's poll: the modification time alone does not reload it
	rulesNow("v3 before SIGHUP", "hot:60", "warm:48")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	rulesNow("v3 (SIGHUP)", "soc_low:30", "warm:53")
	ts = send(2, 50, 20)
	expect("warm", warmStart, alerts.Resolved, ts)
	expect("soc_low", ts, alerts.Firing, ts)
	transitions("v3")
	socStart := ts

	// A file that does not parse: refused, named in the log, v3 stays.
	swap(bad)
	logged := strings.Count(u.stderr.String(), "alert rules not reloaded")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testenv.WaitUntil(t, 30*time.Second, "the refusal logged", func() bool {
		s := u.stderr.String()
		return strings.Count(s, "alert rules not reloaded") > logged && strings.Contains(s[strings.LastIndex(s, "alert rules not reloaded"):], `op: \"=\" must be > or <`)
	}, u.stderr)
	rulesNow("after the bad file", "soc_low:30", "warm:53")
	// Under v3, 45 °C and 50 % resolve soc_low and leave warm quiet;
	// under the bad file's warm, 45 °C would fire.
	ts = send(3, 45, 50)
	expect("soc_low", socStart, alerts.Resolved, ts)
	transitions("after the bad file")
	time.Sleep(2 * time.Second) // time for a wrong warm to show
	transitions("after the bad file, later")
}

// stringer turns a function into a fmt.Stringer, for WaitUntil's logs.
type stringer func() string

func (s stringer) String() string { return s() }
