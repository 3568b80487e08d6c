package alerts

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"regexp"
	"time"

	"gopkg.in/yaml.v3"
)

// Rule is one alerting rule. Which fields apply depends on Kind; Parse
// checks each rule's fields in one place and names what is wrong.
type Rule struct {
	Name     string `yaml:"name"`
	Kind     Kind   `yaml:"kind"`
	Severity string `yaml:"severity"` // critical, warning or info
	Summary  string `yaml:"summary"`  // optional; a default names the rule's condition

	// Threshold: Metric (temperature_c, soc_pct, voltage_v, current_a)
	// Op Fire for For fires; Op reversed Clear resolves (hysteresis).
	Metric string   `yaml:"metric"`
	Op     string   `yaml:"op"` // ">" or "<"
	Fire   float64  `yaml:"fire"`
	Clear  float64  `yaml:"clear"`
	For    Duration `yaml:"for"`

	// Silent: a battery that sent nothing for After. RoomWaste: a device
	// on while its room is vacant or unsold for After.
	After Duration `yaml:"after"`

	// FleetShare: fewer than Below (0..1) of the known batteries sent a
	// reading within a minute, for For.
	Below float64 `yaml:"below"`

	// Pipeline: Check is speed_lag (records, Above), dlq_rate (dead
	// letters per minute, Above), job_failed (a job's last run failed or
	// was abandoned), store_unreachable (for For), ingest_stale (no record
	// reached the speed layer for For: the whole fleet silent).
	Check string  `yaml:"check"`
	Above float64 `yaml:"above"`
}

// Duration is a time.Duration written as "90s", "5m" or "1h" in YAML.
type Duration time.Duration

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (write 90s, 5m or 1h)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Metrics are the battery metrics a threshold rule may watch.
var Metrics = []string{"temperature_c", "soc_pct", "voltage_v", "current_a"}

// Checks are the pipeline checks.
var Checks = []string{"speed_lag", "dlq_rate", "job_failed", "store_unreachable", "ingest_stale"}

// Limits bound a rules file before it is parsed.
const (
	MaxRulesBytes = 1 << 20
	MaxRules      = 1000
)

var ruleName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// Parse reads a rules file: a YAML document `rules: [...]`. Every error is
// collected and named by rule and field, as config does.
func Parse(b []byte) ([]Rule, error) {
	if len(b) > MaxRulesBytes {
		return nil, fmt.Errorf("rules file is %d bytes, more than %d", len(b), MaxRulesBytes)
	}
	var doc struct {
		Rules []Rule `yaml:"rules"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("rules file: %w", err)
	}
	if len(doc.Rules) > MaxRules {
		return nil, fmt.Errorf("rules file has %d rules, more than %d", len(doc.Rules), MaxRules)
	}
	return doc.Rules, Validate(doc.Rules)
}

// Validate checks every rule and returns all problems at once.
func Validate(rules []Rule) error {
	var errs []error
	seen := map[string]bool{}
	for i, r := range rules {
		bad := func(field, format string, args ...any) {
			errs = append(errs, fmt.Errorf("rule %d (%s): %s: %s", i+1, r.Name, field, fmt.Sprintf(format, args...)))
		}
		if !ruleName.MatchString(r.Name) {
			bad("name", "%q must be lower-case letters, digits and _, starting with a letter, at most 63", r.Name)
		}
		if seen[r.Name] {
			bad("name", "%q is used by an earlier rule", r.Name)
		}
		seen[r.Name] = true
		switch r.Severity {
		case "critical", "warning", "info":
		default:
			bad("severity", "%q must be critical, warning or info", r.Severity)
		}
		finite := func(field string, v float64) {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				bad(field, "must be a finite number")
			}
		}
		positive := func(field string, d Duration) {
			if d <= 0 || time.Duration(d) > 30*24*time.Hour {
				bad(field, "%s must be above 0 and at most 720h", time.Duration(d))
			}
		}
		switch r.Kind {
		case KindThreshold:
			if !contains(Metrics, r.Metric) {
				bad("metric", "%q is not one of %v", r.Metric, Metrics)
			}
			finite("fire", r.Fire)
			finite("clear", r.Clear)
			switch r.Op {
			case ">":
				if r.Clear > r.Fire {
					bad("clear", "%g must not be above fire %g for op >", r.Clear, r.Fire)
				}
			case "<":
				if r.Clear < r.Fire {
					bad("clear", "%g must not be below fire %g for op <", r.Clear, r.Fire)
				}
			default:
				bad("op", "%q must be > or <", r.Op)
			}
			if r.For < 0 || time.Duration(r.For) > 30*24*time.Hour {
				bad("for", "%s must be 0 to 720h", time.Duration(r.For))
			}
		case KindSilent, KindRoomWaste:
			positive("after", r.After)
		case KindFleetShare:
			if !(r.Below > 0 && r.Below <= 1) {
				bad("below", "%g must be above 0 and at most 1", r.Below)
			}
			if r.For < 0 || time.Duration(r.For) > 24*time.Hour {
				bad("for", "%s must be 0 to 24h", time.Duration(r.For))
			}
		case KindPipeline:
			switch r.Check {
			case "speed_lag", "dlq_rate":
				finite("above", r.Above)
				if r.Above < 0 {
					bad("above", "%g must not be negative", r.Above)
				}
			case "job_failed":
			case "store_unreachable", "ingest_stale":
				positive("for", r.For)
			default:
				bad("check", "%q is not one of %v", r.Check, Checks)
			}
		default:
			bad("kind", "%q is not one of threshold, silent, fleet_share, room_waste, pipeline", r.Kind)
		}
	}
	return errors.Join(errs...)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Defaults are the rules that ship enabled, sized for the reference fleet
// (lithium packs: hot above 45 °C, cleared below 42 °C) and hotel.
func Defaults() []Rule {
	return []Rule{
		{Name: "battery_hot", Kind: KindThreshold, Severity: "critical", Metric: "temperature_c", Op: ">", Fire: 45, Clear: 42, For: Duration(30 * time.Second)},
		{Name: "battery_soc_low", Kind: KindThreshold, Severity: "warning", Metric: "soc_pct", Op: "<", Fire: 10, Clear: 15, For: Duration(time.Minute)},
		{Name: "battery_silent", Kind: KindSilent, Severity: "warning", After: Duration(5 * time.Minute)},
		{Name: "fleet_reporting_low", Kind: KindFleetShare, Severity: "critical", Below: 0.9, For: Duration(2 * time.Minute)},
		{Name: "room_device_wasting", Kind: KindRoomWaste, Severity: "warning", After: Duration(time.Hour)},
		{Name: "speed_lag_high", Kind: KindPipeline, Severity: "warning", Check: "speed_lag", Above: 100_000},
		{Name: "dead_letters_high", Kind: KindPipeline, Severity: "warning", Check: "dlq_rate", Above: 100},
		{Name: "job_failed", Kind: KindPipeline, Severity: "warning", Check: "job_failed"},
		{Name: "store_unreachable", Kind: KindPipeline, Severity: "critical", Check: "store_unreachable", For: Duration(time.Minute)},
		{Name: "fleet_silent", Kind: KindPipeline, Severity: "critical", Check: "ingest_stale", For: Duration(time.Minute)},
	}
}
