package alerts

import (
	"strings"
	"testing"
)

func TestDefaults_AreValid(t *testing.T) {
	if err := Validate(Defaults()); err != nil {
		t.Fatal(err)
	}
}

func TestParse_NamesEveryProblem(t *testing.T) {
	_, err := Parse([]byte(`rules:
  - {name: hot, kind: threshold, severity: critical, metric: temperature_c, op: ">", fire: 45, clear: 50, for: 30s}
  - {name: hot, kind: silent, severity: loud, after: 0s}
  - {name: Bad-Name, kind: pipeline, severity: info, check: disk_full}
`))
	if err == nil {
		t.Fatal("bad rules parsed")
	}
	for _, want := range []string{"clear: 50 must not be above fire 45", `"hot" is used by an earlier rule`, `severity: "loud"`, "after: 0s must be above 0", `name: "Bad-Name"`, `check: "disk_full"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if _, err := Parse([]byte("rules:\n  - {name: x, kind: silent, severity: info, after: 5 minutes}\n")); err == nil || !strings.Contains(err.Error(), "not a duration") {
		t.Errorf("a bad duration: %v", err)
	}
	if _, err := Parse([]byte("rules:\n  - {name: x, kind: silent, severity: info, after: 5m, colour: red}\n")); err == nil {
		t.Error("an unknown field parsed")
	}
}

func TestID_IsRuleSubjectStart(t *testing.T) {
	tr := Transition{Rule: "battery_hot", Subject: "B-00042", Start: 1795434115105}
	if got := tr.ID(); got != "battery_hot|B-00042|1795434115105" {
		t.Fatal(got)
	}
}
