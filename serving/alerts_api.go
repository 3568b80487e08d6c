package serving

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/gridlake/gridlake/alertd"
	"github.com/gridlake/gridlake/alerts"
	"github.com/gridlake/gridlake/auth"
	"github.com/gridlake/gridlake/internal/httpx"
	"github.com/gridlake/gridlake/objstore"
)

// Alerts is what the alert endpoints serve: the book the feed keeps, the
// silences, the active rules and the state of ingest.
type Alerts struct {
	Book     *alertd.Book
	Silences *alertd.Silences
	Rules    func() []alerts.Rule
	// CaughtUp says whether the book holds every transition on the topic
	// (false while the feed replays it after a start).
	CaughtUp func() bool
	// Ingest is the ingest_stale state, nil when no such rule is on.
	Ingest func() (stale bool, last time.Time, after time.Duration, ok bool)
	// MaxSilence bounds one silence (notify.max_silence).
	MaxSilence time.Duration
	Now        func() time.Time
}

// WithAlerts mounts the alert endpoints (/v1/alerts...).
func (a *API) WithAlerts(al *Alerts) *API {
	a.alerts = al
	return a
}

// RegisterAlerts mounts only the alert endpoints, for a process that
// wires them after the rest of the API.
func (a *API) RegisterAlerts(mux *http.ServeMux) { a.registerAlerts(mux) }

func (a *API) registerAlerts(mux *http.ServeMux) {
	if a.alerts == nil {
		return
	}
	mux.HandleFunc("GET /v1/alerts", a.alertsFiring)
	mux.HandleFunc("GET /v1/alerts/history", a.alertsHistory)
	mux.HandleFunc("GET /v1/alerts/rules", a.alertRules)
	mux.HandleFunc("GET /v1/alerts/silences", a.silencesList)
	mux.HandleFunc("POST /v1/alerts/silences", a.silenceCreate)
	mux.HandleFunc("DELETE /v1/alerts/silences/{id}", a.silenceDelete)
}

// AlertOut is an alert as the API shows it.
type AlertOut struct {
	alerts.Transition
	ID          string    `json:"id"`
	Fingerprint string    `json:"fingerprint"`
	StartTime   time.Time `json:"start"`
	AtTime      time.Time `json:"at"`
	Silenced    bool      `json:"silenced"`
	SilenceID   string    `json:"silence_id,omitempty"`
}

func (a *API) alertOut(t alerts.Transition) AlertOut {
	id := t.ID()
	o := AlertOut{Transition: t, ID: id, Fingerprint: alertd.Fingerprint(id), StartTime: time.UnixMilli(t.Start).UTC(), AtTime: time.UnixMilli(t.At).UTC()}
	if a.alerts.Silences != nil {
		o.SilenceID, o.Silenced = a.alerts.Silences.Silenced(t)
	}
	return o
}

func (a *API) ingestOut() map[string]any {
	if a.alerts.Ingest == nil {
		return nil
	}
	stale, last, after, ok := a.alerts.Ingest()
	if !ok {
		return nil
	}
	out := map[string]any{"stale": stale, "stale_after_s": after.Seconds()}
	if !last.IsZero() {
		out["last_record_at"] = last.UTC()
		out["silent_s"] = max(0, a.alerts.Now().Sub(last).Seconds())
	}
	return out
}

func (a *API) alertsFiring(w http.ResponseWriter, r *http.Request) {
	f, err := parseAlertFilter(r.URL.Query(), false)
	if err != nil {
		badRequest(w, err)
		return
	}
	list := a.alerts.Book.Firing(f)
	out := make([]AlertOut, len(list))
	for i, t := range list {
		out[i] = a.alertOut(t)
	}
	body := map[string]any{"alerts": out, "count": len(out), "complete": a.alerts.CaughtUp(), "as_of": a.alerts.Now().UTC()}
	if in := a.ingestOut(); in != nil {
		body["ingest"] = in
	}
	httpx.WriteJSON(w, http.StatusOK, body)
}

func (a *API) alertsHistory(w http.ResponseWriter, r *http.Request) {
	p, err := parseHistory(r.URL.Query(), a.lim)
	if err != nil {
		badRequest(w, err)
		return
	}
	list, next := a.alerts.Book.History(p.filter, p.cursor, p.limit)
	out := make([]AlertOut, len(list))
	for i, t := range list {
		out[i] = a.alertOut(t)
	}
	body := map[string]any{"transitions": out, "complete": a.alerts.CaughtUp()}
	if next != 0 {
		body["next_cursor"] = next
	}
	httpx.WriteJSON(w, http.StatusOK, body)
}

// RuleOut is a rule as the API shows it: durations in seconds, only the
// fields of its kind.
type RuleOut struct {
	Name     string   `json:"name"`
	Kind     string   `json:"kind"`
	Severity string   `json:"severity"`
	Summary  string   `json:"summary,omitempty"`
	Metric   string   `json:"metric,omitempty"`
	Op       string   `json:"op,omitempty"`
	Fire     *float64 `json:"fire,omitempty"`
	Clear    *float64 `json:"clear,omitempty"`
	ForS     float64  `json:"for_s,omitempty"`
	AfterS   float64  `json:"after_s,omitempty"`
	Below    float64  `json:"below,omitempty"`
	Check    string   `json:"check,omitempty"`
	Above    *float64 `json:"above,omitempty"`
}

func ruleOut(r alerts.Rule) RuleOut {
	o := RuleOut{Name: r.Name, Kind: string(r.Kind), Severity: r.Severity, Summary: r.Summary,
		ForS: time.Duration(r.For).Seconds(), AfterS: time.Duration(r.After).Seconds()}
	switch r.Kind {
	case alerts.KindThreshold:
		fire, clear := r.Fire, r.Clear
		o.Metric, o.Op, o.Fire, o.Clear = r.Metric, r.Op, &fire, &clear
	case alerts.KindFleetShare:
		o.Below = r.Below
	case alerts.KindPipeline:
		o.Check = r.Check
		if r.Check == "speed_lag" || r.Check == "dlq_rate" {
			above := r.Above
			o.Above = &above
		}
	}
	return o
}

func (a *API) alertRules(w http.ResponseWriter, r *http.Request) {
	rules := a.alerts.Rules()
	out := make([]RuleOut, len(rules))
	for i, rl := range rules {
		out[i] = ruleOut(rl)
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"rules": out})
}

func (a *API) silencesList(w http.ResponseWriter, r *http.Request) {
	now := a.alerts.Now()
	type out struct {
		alertd.Silence
		Active bool `json:"active"`
	}
	list := a.alerts.Silences.List()
	res := make([]out, len(list))
	for i := range list {
		res[i] = out{list[i], list[i].Active(now)}
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"silences": res})
}

func (a *API) silenceCreate(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		fail(w, http.StatusRequestEntityTooLarge, "the body is too large: send at most 64 KiB")
		return
	}
	s, err := alertd.ParseSilence(body, a.alerts.Now(), a.alerts.MaxSilence)
	if err != nil {
		badRequest(w, err)
		return
	}
	// Who asked, as the job history keeps it (auth.Protect put them in
	// the context).
	s.CreatedBy = "anonymous"
	if p, ok := auth.FromContext(r.Context()); ok {
		s.CreatedBy = p.String()
	}
	s, err = a.alerts.Silences.Add(r.Context(), s)
	if err != nil {
		silenceError(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, map[string]any{"silence": s})
}

func (a *API) silenceDelete(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := checkSilenceID(id); err != nil {
		badRequest(w, err)
		return
	}
	if err := a.alerts.Silences.Delete(r.Context(), id); err != nil {
		silenceError(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"deleted": id})
}

func silenceError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, alertd.ErrNoSilence):
		fail(w, http.StatusNotFound, "%s", err)
	case errors.Is(err, alertd.ErrTooMany):
		fail(w, http.StatusConflict, "%s", err)
	case objstore.IsUnavailable(err), errors.Is(err, context.DeadlineExceeded):
		fail(w, http.StatusServiceUnavailable, "%s; the silences live in the object store, try again once it answers", err)
	default:
		fail(w, http.StatusInternalServerError, "%s", err)
	}
}
