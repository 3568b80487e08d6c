// Package alertd is everything downstream of the gridlake.alerts topic
// (DESIGN §11): the book of firing alerts and their history that every
// serving process rebuilds from the topic, silences shared through the
// lake, webhooks in the Alertmanager format with at-least-once delivery,
// and the pipeline rules evaluated on the wall clock by the serving
// process, whose transitions go to the same topic.
package alertd

import (
	"sort"
	"strings"
	"sync"

	"github.com/gridlake/gridlake/alerts"
	"github.com/gridlake/gridlake/metrics"
)

// Book holds the firing alerts and a bounded history of transitions,
// de-duplicated by (ID, State): the topic may hold a transition twice
// (a restarted writer), and a firing copy read after its resolution must
// not bring the alert back.
type Book struct {
	limit int

	mu      sync.RWMutex
	firing  map[string]alerts.Transition // ID → its firing transition
	history []alerts.Transition          // oldest first, at most limit
	// resolved remembers the IDs resolved, in order, so a late copy of a
	// firing transition is recognised; bounded like the history.
	resolved  map[string]bool
	resolvedQ []string
	seq       uint64 // transitions applied, for pollers

	transitions func(rule string, st alerts.State) *metrics.Counter
}

// NewBook returns a book keeping at most limit transitions of history
// (config notify.history_limit). reg may be nil.
func NewBook(limit int, reg *metrics.Registry) *Book {
	if limit < 1 {
		limit = 1
	}
	b := &Book{limit: limit, firing: map[string]alerts.Transition{}, resolved: map[string]bool{}}
	if reg == nil {
		reg = metrics.NewRegistry()
	}
	b.transitions = func(rule string, st alerts.State) *metrics.Counter {
		return reg.Counter("gridlake_alert_transitions_total", "alert transitions read from gridlake.alerts, de-duplicated", "rule", rule, "state", string(st))
	}
	reg.GaugeFunc("gridlake_alerts_firing", "alerts firing now, by rule", b.firingSamples)
	return b
}

// Apply records a transition and reports whether it was new.
func (b *Book) Apply(t alerts.Transition) bool {
	id := t.ID()
	b.mu.Lock()
	defer b.mu.Unlock()
	switch t.State {
	case alerts.Firing:
		if _, ok := b.firing[id]; ok || b.resolved[id] {
			return false
		}
		b.firing[id] = t
	case alerts.Resolved:
		if b.resolved[id] {
			return false
		}
		delete(b.firing, id)
		b.resolved[id] = true
		b.resolvedQ = append(b.resolvedQ, id)
		if len(b.resolvedQ) > 2*b.limit {
			for _, old := range b.resolvedQ[:b.limit] {
				delete(b.resolved, old)
			}
			b.resolvedQ = append(b.resolvedQ[:0], b.resolvedQ[b.limit:]...)
		}
	default:
		return false
	}
	if len(b.history) >= b.limit {
		// Drop the oldest tenth at once so the copy is amortised.
		drop := max(1, b.limit/10)
		b.history = append(b.history[:0], b.history[drop:]...)
	}
	b.history = append(b.history, t)
	b.seq++
	b.transitions(t.Rule, t.State).Add(1)
	return true
}

// Seq counts the transitions applied so far.
func (b *Book) Seq() uint64 {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.seq
}

// Filter selects alerts; empty fields match everything.
type Filter struct {
	Rule, Kind, Severity string
	// Subject matches exactly, or as a prefix when it ends in '*'.
	Subject string
	// From and To bound the transition time At (ms, [From, To)); 0: open.
	From, To int64
}

// Match reports whether t passes the filter.
func (f Filter) Match(t alerts.Transition) bool {
	if f.Rule != "" && t.Rule != f.Rule || f.Kind != "" && string(t.Kind) != f.Kind || f.Severity != "" && t.Severity != f.Severity {
		return false
	}
	if p, ok := strings.CutSuffix(f.Subject, "*"); ok {
		if !strings.HasPrefix(t.Subject, p) {
			return false
		}
	} else if f.Subject != "" && t.Subject != f.Subject {
		return false
	}
	return (f.From == 0 || t.At >= f.From) && (f.To == 0 || t.At < f.To)
}

// Firing returns the firing alerts that match f, most severe first, then
// oldest first.
func (b *Book) Firing(f Filter) []alerts.Transition {
	b.mu.RLock()
	out := make([]alerts.Transition, 0, len(b.firing))
	for _, t := range b.firing {
		if f.Match(t) {
			out = append(out, t)
		}
	}
	b.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		a, c := out[i], out[j]
		if sa, sc := severityRank(a.Severity), severityRank(c.Severity); sa != sc {
			return sa < sc
		}
		if a.Start != c.Start {
			return a.Start < c.Start
		}
		return a.ID() < c.ID()
	})
	return out
}

// IsFiring reports whether the alert id fires.
func (b *Book) IsFiring(id string) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	_, ok := b.firing[id]
	return ok
}

// History returns up to limit transitions matching f, newest first, that
// come before cursor (a position from an earlier page; 0: the newest), and
// the cursor of the next page (0 when there is none). Cursors count
// transitions ever applied, so a page stays put while new ones arrive.
func (b *Book) History(f Filter, cursor uint64, limit int) ([]alerts.Transition, uint64) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	// history[i] has position first+i+1, the newest position is seq.
	first := b.seq - uint64(len(b.history))
	end := len(b.history)
	if cursor != 0 {
		if cursor <= first {
			return nil, 0
		}
		end = int(min(cursor-1-first, uint64(len(b.history))))
	}
	var out []alerts.Transition
	for i := end - 1; i >= 0; i-- {
		if !f.Match(b.history[i]) {
			continue
		}
		if len(out) == limit {
			return out, first + uint64(i) + 2
		}
		out = append(out, b.history[i])
	}
	return out, 0
}

func (b *Book) firingSamples() []metrics.Sample {
	b.mu.RLock()
	n := map[string]int{}
	for _, t := range b.firing {
		n[t.Rule]++
	}
	b.mu.RUnlock()
	out := make([]metrics.Sample, 0, len(n))
	for rule, c := range n {
		out = append(out, metrics.Sample{Labels: []string{"rule", rule}, Value: float64(c)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Labels[1] < out[j].Labels[1] })
	return out
}

func severityRank(s string) int {
	switch s {
	case "critical":
		return 0
	case "warning":
		return 1
	}
	return 2
}
