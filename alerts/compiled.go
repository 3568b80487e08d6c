package alerts

import (
	"fmt"
	"math"
	"time"
)

// compiled are the event-time rules of one rule set, split by kind, in
// rules-file order (the order transitions of one instant come out in).
type compiled struct {
	thresholds []thresholdRule
	silents    []durationRule
	fleets     []fleetRule
	wastes     []durationRule
	// metrics are the battery metrics the threshold rules watch; a buffered
	// reading keeps only these (stride len(metrics)).
	metrics []int
}

type thresholdRule struct {
	Rule
	metric int // index into the stride of a buffered reading
	above  bool
	forMS  int64
	unit   string
}

type durationRule struct {
	Rule
	afterMS int64
}

type fleetRule struct {
	Rule
	forMS int64
}

// metricIndex is the position of a metric in a decoded battery reading's
// values (see readingValues).
func metricIndex(name string) int {
	for i, m := range Metrics {
		if m == name {
			return i
		}
	}
	return -1
}

var metricUnits = [...]string{"°C", "%", "V", "A"}

func compile(rules []Rule) compiled {
	var c compiled
	for _, r := range rules {
		switch r.Kind {
		case KindThreshold:
			mi := metricIndex(r.Metric)
			slot := -1
			for i, m := range c.metrics {
				if m == mi {
					slot = i
				}
			}
			if slot < 0 {
				slot = len(c.metrics)
				c.metrics = append(c.metrics, mi)
			}
			c.thresholds = append(c.thresholds, thresholdRule{Rule: r, metric: slot, above: r.Op == ">",
				forMS: time.Duration(r.For).Milliseconds(), unit: metricUnits[mi]})
		case KindSilent:
			c.silents = append(c.silents, durationRule{Rule: r, afterMS: time.Duration(r.After).Milliseconds()})
		case KindFleetShare:
			c.fleets = append(c.fleets, fleetRule{Rule: r, forMS: time.Duration(r.For).Milliseconds()})
		case KindRoomWaste:
			c.wastes = append(c.wastes, durationRule{Rule: r, afterMS: time.Duration(r.After).Milliseconds()})
		}
	}
	return c
}

// beyond reports whether v is past the fire threshold.
func (r *thresholdRule) beyond(v float64) bool {
	if r.above {
		return v > r.Fire
	}
	return v < r.Fire
}

// cleared reports whether v is on the clear side of the clear threshold.
func (r *thresholdRule) cleared(v float64) bool {
	if r.above {
		return v < r.Clear
	}
	return v > r.Clear
}

func (r *Rule) transition(subject string, start, at int64, st State, value float64, unit, summary string) Transition {
	if r.Summary != "" {
		summary = r.Summary
	}
	if math.IsNaN(value) || math.IsInf(value, 0) {
		value = 0
	}
	return Transition{Rule: r.Name, Kind: r.Kind, Subject: subject, Start: start, State: st, At: at, Severity: r.Severity,
		Value: value, Unit: unit, Summary: summary}
}

func (r *thresholdRule) summary(subject string) string {
	return fmt.Sprintf("%s %s %s %g for %s", subject, r.Metric, r.Op, r.Fire, time.Duration(r.For))
}
