package alertd

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gridlake/gridlake/alerts"
	"github.com/gridlake/gridlake/objstore"
)

// SilencesKey is the lake object holding every silence. All serving
// replicas read it and change it with conditional writes, so each sees
// every silence and a restart loses none; the lake is already the shared,
// durable state of a deployment (job leases, manifests), so silences need
// no compacted topic of their own.
const SilencesKey = "_alerts/silences.json"

// Matcher selects alerts by rule or subject, exactly or by prefix.
type Matcher struct {
	Field  string `json:"field"` // rule or subject
	Value  string `json:"value"`
	Prefix bool   `json:"prefix,omitempty"`
}

func (m Matcher) match(t alerts.Transition) bool {
	v := t.Rule
	if m.Field == "subject" {
		v = t.Subject
	}
	if m.Prefix {
		return strings.HasPrefix(v, m.Value)
	}
	return v == m.Value
}

// Silence mutes the webhooks of the alerts every matcher selects while it
// is active; the alerts still show, marked silenced.
type Silence struct {
	ID        string    `json:"id"`
	Matchers  []Matcher `json:"matchers"`
	StartsAt  time.Time `json:"starts_at"`
	EndsAt    time.Time `json:"ends_at"`
	Comment   string    `json:"comment"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
}

// Active reports whether the silence mutes alerts at now.
func (s *Silence) Active(now time.Time) bool { return !now.Before(s.StartsAt) && now.Before(s.EndsAt) }

// Matches reports whether every matcher selects t.
func (s *Silence) Matches(t alerts.Transition) bool {
	for _, m := range s.Matchers {
		if !m.match(t) {
			return false
		}
	}
	return len(s.Matchers) > 0
}

// Bounds of one silence request.
const (
	maxSilenceBody = 16 << 10
	maxMatchers    = 8
	maxComment     = 1000
	maxMatchValue  = 256
)

// ParseSilence reads a POST /v1/alerts/silences body: matchers, starts_at
// (default now), ends_at or duration, comment. maxDur bounds how long a
// silence may last (config notify.max_silence).
func ParseSilence(body []byte, now time.Time, maxDur time.Duration) (Silence, error) {
	var s Silence
	if len(body) > maxSilenceBody {
		return s, fmt.Errorf("the body is %d bytes, more than %d", len(body), maxSilenceBody)
	}
	var in struct {
		Matchers []Matcher  `json:"matchers"`
		StartsAt *time.Time `json:"starts_at"`
		EndsAt   *time.Time `json:"ends_at"`
		Duration string     `json:"duration"`
		Comment  string     `json:"comment"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return s, fmt.Errorf(`send {"matchers":[{"field":"rule","value":"battery_hot"}],"duration":"2h","comment":"why"}: %v`, err)
	}
	if len(in.Matchers) == 0 || len(in.Matchers) > maxMatchers {
		return s, fmt.Errorf("matchers: send 1 to %d matchers (got %d); a silence of everything is not allowed", maxMatchers, len(in.Matchers))
	}
	for i, m := range in.Matchers {
		if m.Field != "rule" && m.Field != "subject" {
			return s, fmt.Errorf("matchers[%d].field: send rule or subject (got %q)", i, clip(m.Field))
		}
		if m.Value == "" || len(m.Value) > maxMatchValue || strings.ContainsFunc(m.Value, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			return s, fmt.Errorf("matchers[%d].value: send 1 to %d printable bytes", i, maxMatchValue)
		}
	}
	comment := strings.TrimSpace(in.Comment)
	if comment == "" || len(comment) > maxComment {
		return s, fmt.Errorf("comment: say why, in 1 to %d bytes", maxComment)
	}
	start := now.UTC().Truncate(time.Millisecond)
	if in.StartsAt != nil {
		start = in.StartsAt.UTC()
	}
	var end time.Time
	switch {
	case in.EndsAt != nil && in.Duration != "":
		return s, errors.New("send ends_at or duration, not both")
	case in.EndsAt != nil:
		end = in.EndsAt.UTC()
	case in.Duration != "":
		d, err := time.ParseDuration(in.Duration)
		if err != nil || d <= 0 {
			return s, fmt.Errorf("duration: send a positive duration such as 2h (got %q)", clip(in.Duration))
		}
		if d > maxDur {
			return s, fmt.Errorf("duration: %s is longer than notify.max_silence (%s)", d, maxDur)
		}
		end = start.Add(d)
	default:
		return s, errors.New("send ends_at (RFC 3339) or duration (such as 2h)")
	}
	if start.Year() < 2000 || start.Year() > 9000 {
		return s, errors.New("starts_at: send a time from the year 2000 on")
	}
	if !end.After(start) || !end.After(now) {
		return s, errors.New("ends_at must be after starts_at and in the future")
	}
	if end.Sub(start) > maxDur {
		return s, fmt.Errorf("the silence lasts %s, more than notify.max_silence (%s)", end.Sub(start), maxDur)
	}
	return Silence{Matchers: in.Matchers, StartsAt: start, EndsAt: end, Comment: comment, CreatedAt: now.UTC()}, nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// Silences are the silences of the deployment, kept in the lake and
// cached; Refresh re-reads them (every notify.silence_poll).
type Silences struct {
	store objstore.Bucket
	max   int
	now   func() time.Time

	mu   sync.RWMutex
	list []Silence
	etag string
}

// NewSilences returns the silences kept in store, at most max of them.
func NewSilences(store objstore.Bucket, max int, now func() time.Time) *Silences {
	if now == nil {
		now = time.Now
	}
	return &Silences{store: store, max: max, now: now}
}

type silencesDoc struct {
	Silences []Silence `json:"silences"`
}

// Refresh reads the silences from the lake.
func (s *Silences) Refresh(ctx context.Context) error {
	list, etag, err := s.read(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.list, s.etag = list, etag
	s.mu.Unlock()
	return nil
}

func (s *Silences) read(ctx context.Context) ([]Silence, string, error) {
	b, info, err := s.store.Get(ctx, SilencesKey)
	if objstore.IsNotFound(err) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("read silences %s: %w", SilencesKey, err)
	}
	var doc silencesDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, "", fmt.Errorf("read silences %s: %w", SilencesKey, err)
	}
	return doc.Silences, info.ETag, nil
}

// List returns the silences, newest first.
func (s *Silences) List() []Silence {
	s.mu.RLock()
	out := append([]Silence(nil), s.list...)
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.After(out[j].CreatedAt) })
	return out
}

// Silenced returns the active silence that mutes t, if any.
func (s *Silences) Silenced(t alerts.Transition) (string, bool) {
	now := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	for i := range s.list {
		if s.list[i].Active(now) && s.list[i].Matches(t) {
			return s.list[i].ID, true
		}
	}
	return "", false
}

// ErrTooMany means the deployment holds notify.max_silences silences.
var ErrTooMany = errors.New("too many silences")

// ErrNoSilence means no silence has the id.
var ErrNoSilence = errors.New("no such silence")

// Add stores a new silence and returns it with its id.
func (s *Silences) Add(ctx context.Context, sl Silence) (Silence, error) {
	var id [8]byte
	rand.Read(id[:])
	sl.ID = hex.EncodeToString(id[:])
	err := s.change(ctx, func(list []Silence) ([]Silence, error) {
		if len(list) >= s.max {
			return nil, fmt.Errorf("%w: %d silences, notify.max_silences is %d; delete ended ones", ErrTooMany, len(list), s.max)
		}
		return append(list, sl), nil
	})
	return sl, err
}

// Delete removes a silence.
func (s *Silences) Delete(ctx context.Context, id string) error {
	return s.change(ctx, func(list []Silence) ([]Silence, error) {
		for i := range list {
			if list[i].ID == id {
				return append(list[:i:i], list[i+1:]...), nil
			}
		}
		return nil, fmt.Errorf("%w: %q", ErrNoSilence, clip(id))
	})
}

// change applies fn to the stored list with a conditional write, retrying
// when another replica changed it meanwhile. Silences that ended a day
// ago are dropped on the way.
func (s *Silences) change(ctx context.Context, fn func([]Silence) ([]Silence, error)) error {
	for attempt := 0; attempt < 10; attempt++ {
		list, etag, err := s.read(ctx)
		if err != nil {
			return err
		}
		kept := list[:0:0]
		for _, sl := range list {
			if s.now().Sub(sl.EndsAt) < 24*time.Hour {
				kept = append(kept, sl)
			}
		}
		next, err := fn(kept)
		if err != nil {
			return err
		}
		b, err := json.Marshal(silencesDoc{Silences: next})
		if err != nil {
			return fmt.Errorf("encode silences: %w", err)
		}
		var newTag string
		if etag == "" {
			newTag, err = s.store.PutIfAbsent(ctx, SilencesKey, b)
		} else {
			newTag, err = s.store.PutIfMatch(ctx, SilencesKey, b, etag)
		}
		if objstore.IsConditionNotMet(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("write silences %s: %w", SilencesKey, err)
		}
		s.mu.Lock()
		s.list, s.etag = next, newTag
		s.mu.Unlock()
		return nil
	}
	return fmt.Errorf("write silences %s: other replicas kept changing them; try again", SilencesKey)
}

// Poll refreshes the silences every d until ctx ends; a failed read keeps
// the ones known and is reported to onErr.
func (s *Silences) Poll(ctx context.Context, d time.Duration, onErr func(error)) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		if err := s.Refresh(ctx); err != nil && ctx.Err() == nil {
			onErr(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
