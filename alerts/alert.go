// Package alerts is the control room's alerting (DESIGN §11): rules, their
// evaluation on event time, and the transitions they produce.
//
// The contract every part shares (the speed layer's evaluator, the
// gridlake.alerts topic, the serving API, webhooks and the dashboard):
//
//   - An alert's identity is (rule, subject, start): the rule's name, what
//     it is about (a battery id, "room/device", "fleet", a job or topic
//     name) and the event time (Unix ms) its condition began. The same
//     events always give the same identities.
//   - A transition is an alert going firing or resolved. Each goes to the
//     Kafka topic gridlake.alerts keyed by ID(), so a copy written again
//     after a restart is recognisable and consumers de-duplicate on
//     (ID, State).
//
// Event-time rules (threshold, silent, fleet share, room waste) are
// evaluated in the speed layer in ts order, on events that were on time:
// an event counts for alerts when its ts is at or after its partition's
// watermark when it arrived, the greatest record time seen before it in
// the partition minus alerts.lateness. The watermark is a function of the
// log, so a replay, any batch commit and any restart give the same
// transitions; reordering within the lateness gives the same transitions
// too. Pipeline rules (lag, dead letters, jobs, the object store, ingest
// staleness) are about the running system and use the wall clock.
package alerts

import (
	"strconv"
	"strings"
)

// Topic is the Kafka topic of alert transitions, keyed by ID.
const Topic = "gridlake.alerts"

// State is an alert's state after a transition.
type State string

const (
	Firing   State = "firing"
	Resolved State = "resolved"
)

// Transition is an alert changing state: the unit on the topic, in the
// API's history and in webhooks. Times are Unix ms: event time for the
// event-time rules, wall-clock time for pipeline rules.
type Transition struct {
	Rule     string `json:"rule"`
	Kind     Kind   `json:"kind"`
	Subject  string `json:"subject"`
	Start    int64  `json:"start_ms"` // when the condition began
	State    State  `json:"state"`
	At       int64  `json:"at_ms"` // when it fired (the condition held long enough) or resolved
	Severity string `json:"severity"`
	// Value is the observation that caused the transition (a temperature,
	// a share, seconds silent), with its unit.
	Value   float64 `json:"value"`
	Unit    string  `json:"unit,omitempty"`
	Summary string  `json:"summary"`
}

// ID is the alert's identity: rule, subject and start, joined so that it
// sorts by rule and subject and reads well in logs and dedup keys.
func (t Transition) ID() string { return ID(t.Rule, t.Subject, t.Start) }

// ID builds an identity from its parts.
func ID(rule, subject string, start int64) string {
	var b strings.Builder
	b.Grow(len(rule) + len(subject) + 24)
	b.WriteString(rule)
	b.WriteByte('|')
	b.WriteString(subject)
	b.WriteByte('|')
	b.WriteString(strconv.FormatInt(start, 10))
	return b.String()
}

// Kind is what a rule watches.
type Kind string

const (
	// KindThreshold: a battery metric beyond a threshold for a duration,
	// clearing on the other side of a separate clear threshold.
	KindThreshold Kind = "threshold"
	// KindSilent: a battery that sent nothing for longer than a duration,
	// by the record time its partition reached.
	KindSilent Kind = "silent"
	// KindFleetShare: the share of known batteries reporting in a minute
	// below a fraction.
	KindFleetShare Kind = "fleet_share"
	// KindRoomWaste: a device on while its room is vacant or unsold for
	// longer than a duration.
	KindRoomWaste Kind = "room_waste"
	// KindPipeline: the pipeline's own health on the wall clock.
	KindPipeline Kind = "pipeline"
)
