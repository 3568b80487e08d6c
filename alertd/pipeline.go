package alertd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/gridlake/gridlake/alerts"
)

// Probe is what the pipeline rules watch in the serving process.
type Probe interface {
	// SpeedLag is how many records the speed layer trails Kafka by.
	SpeedLag() int64
	// DeadLetters counts the messages sent to the dead-letter queue.
	DeadLetters() uint64
	// Records counts the records that reached the speed layer; it moving
	// is what ingest_stale watches. ok is false until the speed layer has
	// replayed what Kafka held when it started (the replay is no arrival).
	Records() (n int64, ok bool)
	// Store says whether the object store is unreachable, and since when.
	Store() (down bool, since time.Time, why string)
	// Jobs lists the jobs whose newest finished run failed or was
	// abandoned, with when that run ended.
	Jobs(ctx context.Context) ([]FailedJob, error)
}

// FailedJob is a job whose last run failed.
type FailedJob struct {
	Name  string
	Ended time.Time
	Error string
}

// Subjects of the pipeline alerts.
const (
	SubjectSpeed = "speed"
	SubjectDLQ   = "gridlake.dlq"
	SubjectStore = "object_store"
	SubjectFleet = "fleet"
)

// Pipeline evaluates the pipeline rules on the wall clock in the serving
// process and writes their transitions to gridlake.alerts, beside the
// speed layer's, so every consumer reads one stream. An alert's start is
// when its condition began (wall clock ms): for ingest_stale the time the
// last record reached the speed layer.
//
// With several serving processes one writes (Leader); the others evaluate
// too, so /readyz and a takeover know what holds, but write nothing. A
// process that becomes the writer first reads the topic to its end (Sync)
// and takes over from the book what fires, identity and all, so a
// handover neither starts a second alert for a condition nor loses one.
type Pipeline struct {
	Rules func() []alerts.Rule
	Probe Probe
	// Write puts transitions on the topic; a failed write is tried again
	// at the next evaluation.
	Write func(ctx context.Context, ts ...alerts.Transition) error
	// Book is read whenever this process becomes the writer (the first
	// evaluation, when Leader is nil): pipeline alerts a previous writer
	// left firing are taken over (same identity) and resolved when their
	// condition no longer holds.
	Book *Book
	// Leader says whether this process writes; nil: it always does.
	Leader Leader
	// Sync, if not nil, waits until Book holds every transition on the
	// topic; it runs before the book is read on becoming the writer.
	Sync  func(ctx context.Context) error
	Every time.Duration
	Now   func() time.Time
	Log   *slog.Logger

	mu    sync.Mutex
	conds map[string]*condition // rule|subject
	// term is the lead this process took the book over for (Leading's
	// context), nil while it does not lead: a new term, even right after
	// an old one, reads the book again.
	term context.Context
	// orphans are firing copies of a condition already held under
	// another identity (two writers once overlapped): resolved on the
	// first write after the book is read.
	orphans     []alerts.Transition
	lastRecords int64
	lastArrival time.Time // zero until the speed layer caught up
	// moved: this process saw a record arrive (the count change), so
	// lastArrival is its own observation, not its start.
	moved bool
	dlq   []dlqSample
}

type condition struct {
	rule, subject string
	start         int64
	firing        bool
}

type dlqSample struct {
	at time.Time
	n  uint64
}

// observation is one subject of one rule at one evaluation.
type observation struct {
	subject string
	holds   bool
	since   time.Time // when the condition began; zero: first seen now
	value   float64
	unit    string
	summary string
}

// Run evaluates every Every until ctx ends. ready, if not nil, is waited
// for first (the feed caught up, so the book knows what fires).
func (p *Pipeline) Run(ctx context.Context, ready <-chan struct{}) error {
	if p.Log == nil {
		p.Log = slog.New(slog.DiscardHandler)
	}
	if ready != nil {
		select {
		case <-ready:
		case <-ctx.Done():
			return nil
		}
	}
	t := time.NewTicker(p.Every)
	defer t.Stop()
	for {
		if err := p.Evaluate(ctx); err != nil && ctx.Err() == nil {
			p.Log.Warn("pipeline alert rules", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (p *Pipeline) log() *slog.Logger {
	if p.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Log
}

func (p *Pipeline) now() time.Time {
	if p.Now == nil {
		return time.Now()
	}
	return p.Now()
}

// Stale reports whether no record reached the speed layer for the
// ingest_stale rule's duration, and since when none did; ok is false when
// no such rule is on.
func (p *Pipeline) Stale() (stale bool, last time.Time, after time.Duration, ok bool) {
	r, ok := p.ingestRule()
	if !ok {
		return false, time.Time{}, 0, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lastArrival.IsZero() {
		return false, time.Time{}, time.Duration(r.For), true
	}
	return p.now().Sub(p.lastArrival) >= time.Duration(r.For), p.lastArrival, time.Duration(r.For), true
}

func (p *Pipeline) ingestRule() (alerts.Rule, bool) {
	for _, r := range p.Rules() {
		if r.Kind == alerts.KindPipeline && r.Check == "ingest_stale" {
			return r, true
		}
	}
	return alerts.Rule{}, false
}

// Evaluate runs every pipeline rule once.
func (p *Pipeline) Evaluate(ctx context.Context) error {
	lead, leadCtx := true, context.Background()
	if p.Leader != nil {
		leadCtx, lead = p.Leader.Leading()
	}
	p.mu.Lock()
	if p.conds == nil {
		p.conds = map[string]*condition{}
	}
	was := p.term
	p.term = nil
	p.mu.Unlock()
	switch {
	case lead && leadCtx != was:
		if err := p.takeOver(ctx); err != nil {
			return err // not taken over: the next evaluation tries again
		}
	case !lead && was != nil:
		p.log().Info("pipeline alerts: another process writes them now")
	}
	if lead {
		p.mu.Lock()
		p.term = leadCtx
		p.mu.Unlock()
	}
	now := p.now()
	n, caught := p.Probe.Records()
	silent, silentSince := p.bookSilence()
	p.mu.Lock()
	if caught {
		switch {
		case p.lastArrival.IsZero():
			p.lastRecords, p.lastArrival = n, now
		case n != p.lastRecords:
			p.lastRecords, p.lastArrival, p.moved = n, now, true
		}
		// Until this process sees a record arrive, a silence the book
		// says began earlier (another process, or this one before a
		// restart, saw it begin) is the silence: /readyz and a takeover
		// agree with the alert.
		if !p.moved && silent && silentSince.Before(p.lastArrival) {
			p.lastArrival = silentSince
		}
	}
	p.mu.Unlock()

	rules := p.Rules()
	var out []alerts.Transition
	seen := map[string]bool{}
	var errs []error
	for i := range rules {
		r := &rules[i]
		if r.Kind != alerts.KindPipeline {
			continue
		}
		obs, err := p.observe(ctx, r, now)
		if err != nil {
			if !errors.Is(err, errNotYet) {
				errs = append(errs, fmt.Errorf("rule %s: %w", r.Name, err))
			}
			// Keep the rule's alerts as they are: nothing was observed.
			p.mu.Lock()
			for k, c := range p.conds {
				if c.rule == r.Name {
					seen[k] = true
				}
			}
			p.mu.Unlock()
			continue
		}
		for _, o := range obs {
			seen[r.Name+"|"+o.subject] = true
			out = p.step(r, o, now, out)
		}
		// Subjects of the rule not observed this time (a job no longer
		// failing is simply absent) have cleared.
		p.mu.Lock()
		for k, c := range p.conds {
			if c.rule == r.Name && !seen[k] {
				seen[k] = true
				out = p.clear(k, c, now, out)
			}
		}
		p.mu.Unlock()
	}
	// Alerts of rules that were removed resolve.
	p.mu.Lock()
	for k, c := range p.conds {
		if !seen[k] {
			out = p.clear(k, c, now, out)
		}
	}
	for _, o := range p.orphans {
		o.State, o.At, o.Summary = alerts.Resolved, now.UnixMilli(), fmt.Sprintf("%s on %s: a copy under another identity, cleared", o.Rule, o.Subject)
		out = append(out, o)
	}
	p.mu.Unlock()
	// A process that does not lead writes nothing but follows each
	// condition as if it had (what it fired, it would resolve), so its
	// conditions start and end when it sees them; the book overrides them
	// when it takes over.
	if len(out) > 0 && !lead {
		p.commit(out)
	}
	if len(out) > 0 && lead {
		// The write ends with the lead: a process that lost it must not
		// write on.
		wctx, cancel := context.WithCancel(ctx)
		stop := context.AfterFunc(leadCtx, cancel)
		err := p.Write(wctx, out...)
		stop()
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("write %d transitions to %s: %w", len(out), alerts.Topic, err))
		} else {
			p.commit(out)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%v", errs)
	}
	return nil
}

// step advances one subject's condition and appends a transition when
// it fires or resolves. State changes only when the write succeeded
// (commit), so a failed write is retried with the same identity.
func (p *Pipeline) step(r *alerts.Rule, o observation, now time.Time, out []alerts.Transition) []alerts.Transition {
	key := r.Name + "|" + o.subject
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.conds[key]
	if !o.holds {
		if c != nil {
			out = p.clear(key, c, now, out)
		}
		return out
	}
	if c == nil {
		since := o.since
		if since.IsZero() {
			since = now
		}
		c = &condition{rule: r.Name, subject: o.subject, start: since.UnixMilli()}
		p.conds[key] = c
	}
	if !c.firing && now.UnixMilli()-c.start >= time.Duration(r.For).Milliseconds() {
		out = append(out, alerts.Transition{Rule: r.Name, Kind: alerts.KindPipeline, Subject: o.subject, Start: c.start, State: alerts.Firing,
			At: now.UnixMilli(), Severity: r.Severity, Value: o.value, Unit: o.unit, Summary: summary(r, o.summary)})
	}
	return out
}

// clear resolves a firing condition or forgets a pending one. Called with
// p.mu held.
func (p *Pipeline) clear(key string, c *condition, now time.Time, out []alerts.Transition) []alerts.Transition {
	if !c.firing {
		delete(p.conds, key)
		return out
	}
	sev := "warning"
	for _, r := range p.Rules() {
		if r.Name == c.rule {
			sev = r.Severity
		}
	}
	return append(out, alerts.Transition{Rule: c.rule, Kind: alerts.KindPipeline, Subject: c.subject, Start: c.start, State: alerts.Resolved,
		At: now.UnixMilli(), Severity: sev, Summary: fmt.Sprintf("%s on %s cleared", c.rule, c.subject)})
}

func (p *Pipeline) commit(out []alerts.Transition) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.orphans = nil
	for _, t := range out {
		key := t.Rule + "|" + t.Subject
		c := p.conds[key]
		if c == nil || c.start != t.Start {
			continue
		}
		if t.State == alerts.Firing {
			c.firing = true
		} else {
			delete(p.conds, key)
		}
	}
}

// takeOver makes this process the writer: once the book holds what the
// previous writer wrote, each pipeline condition firing there goes on
// under its identity, and a condition this process saw begin but no
// writer fired stays pending with the start this process saw.
func (p *Pipeline) takeOver(ctx context.Context) error {
	if p.Book == nil {
		return nil
	}
	if p.Sync != nil {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := p.Sync(sctx)
		cancel()
		if err != nil {
			return fmt.Errorf("take over the pipeline alerts: %w", err)
		}
	}
	firing := p.Book.Firing(Filter{Kind: string(alerts.KindPipeline)})
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conds {
		c.firing = false
	}
	// Oldest first (per severity), so the oldest identity of a condition
	// is the one kept.
	sort.SliceStable(firing, func(i, j int) bool { return firing[i].Start < firing[j].Start })
	p.orphans = p.orphans[:0]
	for _, t := range firing {
		key := t.Rule + "|" + t.Subject
		if c := p.conds[key]; c != nil && c.firing {
			p.orphans = append(p.orphans, t)
			continue
		}
		p.conds[key] = &condition{rule: t.Rule, subject: t.Subject, start: t.Start, firing: true}
	}
	p.log().Info("pipeline alerts: this process writes them; taken over from the book", "firing", len(firing)-len(p.orphans), "copies_to_resolve", len(p.orphans))
	return nil
}

// bookSilence is the start of the oldest fleet silence firing in the
// book.
func (p *Pipeline) bookSilence() (bool, time.Time) {
	if p.Book == nil {
		return false, time.Time{}
	}
	f := p.Book.Firing(Filter{Kind: string(alerts.KindPipeline), Subject: SubjectFleet})
	if len(f) == 0 {
		return false, time.Time{}
	}
	oldest := f[0].Start
	for _, t := range f {
		oldest = min(oldest, t.Start)
	}
	return true, time.UnixMilli(oldest)
}

func summary(r *alerts.Rule, s string) string {
	if r.Summary != "" {
		return r.Summary + ": " + s
	}
	return s
}

// errNotYet: the speed layer is still replaying; ingest_stale waits.
var errNotYet = errors.New("the speed layer has not caught up with Kafka yet")

// observe reads what one rule watches.
func (p *Pipeline) observe(ctx context.Context, r *alerts.Rule, now time.Time) ([]observation, error) {
	switch r.Check {
	case "speed_lag":
		lag := p.Probe.SpeedLag()
		return []observation{{subject: SubjectSpeed, holds: float64(lag) > r.Above, value: float64(lag), unit: "records",
			summary: fmt.Sprintf("the speed layer trails Kafka by %d records (above %g)", lag, r.Above)}}, nil
	case "dlq_rate":
		rate := p.dlqRate(now)
		return []observation{{subject: SubjectDLQ, holds: rate > r.Above, value: rate, unit: "per minute",
			summary: fmt.Sprintf("%.0f dead letters a minute (above %g)", rate, r.Above)}}, nil
	case "job_failed":
		failed, err := p.Probe.Jobs(ctx)
		if err != nil {
			return nil, err
		}
		out := make([]observation, 0, len(failed))
		for _, j := range failed {
			out = append(out, observation{subject: j.Name, holds: true, since: j.Ended,
				summary: fmt.Sprintf("job %s: the last run failed: %s", j.Name, j.Error)})
		}
		return out, nil
	case "store_unreachable":
		down, since, why := p.Probe.Store()
		o := observation{subject: SubjectStore, holds: down, since: since, unit: "s"}
		if down {
			o.value = now.Sub(since).Seconds()
			o.summary = fmt.Sprintf("the object store has not answered since %s: %s", since.UTC().Format(time.RFC3339), why)
		}
		return []observation{o}, nil
	case "ingest_stale":
		p.mu.Lock()
		last := p.lastArrival
		p.mu.Unlock()
		if last.IsZero() {
			return nil, errNotYet
		}
		silent := now.Sub(last)
		return []observation{{subject: SubjectFleet, holds: silent > 0, since: last, value: silent.Seconds(), unit: "s",
			summary: fmt.Sprintf("no record reached the speed layer since %s: the whole fleet is silent", last.UTC().Format(time.RFC3339))}}, nil
	}
	return nil, nil
}

// dlqRate is dead letters per minute over about the last minute.
func (p *Pipeline) dlqRate(now time.Time) float64 {
	n := p.Probe.DeadLetters()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dlq = append(p.dlq, dlqSample{now, n})
	for len(p.dlq) > 2 && now.Sub(p.dlq[1].at) >= time.Minute {
		p.dlq = p.dlq[1:]
	}
	first := p.dlq[0]
	el := now.Sub(first.at)
	if el < time.Second || n < first.n {
		return 0
	}
	return float64(n-first.n) / el.Minutes()
}
