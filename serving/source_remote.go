package serving

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/segmentio/kafka-go"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/speed"
)

// remoteSource is the speed side one speed process holds, asked over its
// source interface (speed.RegisterSource) at one manifest version. It asks
// only when the query may touch its partitions, and takes an answer only
// when the process held what the owner set says it holds: otherwise the
// answer would count a partition twice or miss one.
type remoteSource struct {
	f       *Fanout
	set     *ownerSet
	idx     int // the member in set
	version int64
	group   *fanGroup // shared by the owners of one query
}

// get asks op and decodes the items into T. A new method of Source is one
// more op on the speed side and one more call of get here. A question for
// every owner (no id) is sent to all owners of the query at once, in
// parallel, the first time one of them is asked (fanGroup).
func get[T any](ctx context.Context, p *remoteSource, op string, q url.Values, everyOwner bool) (items []T, found bool, err error) {
	ans, err := sourceAnswer[T](ctx, p, op, q, everyOwner)
	if err != nil {
		return nil, false, err
	}
	return ans.Items, ans.Found, nil
}

// sourceAnswer is get's whole answer, with what it says beside its items.
func sourceAnswer[T any](ctx context.Context, p *remoteSource, op string, q url.Values, everyOwner bool) (*speed.SourceAnswer[T], error) {
	if q == nil {
		q = url.Values{}
	}
	q.Set("version", strconv.FormatInt(p.version, 10))
	var body []byte
	var err error
	if everyOwner && p.group != nil {
		body, err = p.group.fetch(ctx, p, op, q)
	} else {
		body, err = p.fetch(ctx, op, q)
	}
	if err != nil {
		return nil, err
	}
	m := p.set.members[p.idx]
	var ans speed.SourceAnswer[T]
	if err := json.Unmarshal(body, &ans); err != nil {
		return nil, fmt.Errorf("decode the answer of speed process %s: %w", m.ID, err)
	}
	if ans.Ownership.Generation != m.Generation || !slices.Equal(ans.Ownership.Partitions, m.Partitions) {
		p.f.unsettle()
		return nil, fmt.Errorf("%w: speed process %s answered holding other partitions (generation %d) than it published (generation %d)",
			ErrOwnersUnsettled, m.ID, ans.Ownership.Generation, m.Generation)
	}
	return &ans, nil
}

// fetch sends one question to this owner and returns its 200 answer.
func (p *remoteSource) fetch(ctx context.Context, op string, q url.Values) ([]byte, error) {
	m := p.set.members[p.idx]
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(m.Addr, "/")+speed.SourcePath+op+"?"+q.Encode(), nil)
	if err != nil {
		return nil, fmt.Errorf("ask speed process %s: %w", m.ID, err)
	}
	if p.f.opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+p.f.opts.Token)
	}
	resp, err := p.f.opts.Client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		p.f.unsettle()
		return nil, fmt.Errorf("%w: ask speed process %s at %s: %w", ErrOwnersUnsettled, m.ID, m.Addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, p.f.opts.MaxAnswerBytes+1))
	if err != nil {
		p.f.unsettle()
		return nil, fmt.Errorf("%w: read the answer of speed process %s: %w", ErrOwnersUnsettled, m.ID, err)
	}
	if int64(len(body)) > p.f.opts.MaxAnswerBytes {
		return nil, fmt.Errorf("speed process %s answered %s with more than %d bytes (serve.speed_max_answer_bytes)", m.ID, op, p.f.opts.MaxAnswerBytes)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Code, Error string }
		_ = json.Unmarshal(body, &e)
		switch {
		case resp.StatusCode == http.StatusConflict && e.Code == speed.CodeCutUnavailable:
			return nil, fmt.Errorf("speed process %s at version %d: %w", m.ID, p.version, speed.ErrCutUnavailable)
		case resp.StatusCode == http.StatusConflict, resp.StatusCode == http.StatusServiceUnavailable:
			p.f.unsettle()
			return nil, fmt.Errorf("%w: speed process %s: HTTP %d: %s", ErrOwnersUnsettled, m.ID, resp.StatusCode, e.Error)
		}
		return nil, fmt.Errorf("speed process %s %s: HTTP %d: %s", m.ID, op, resp.StatusCode, e.Error)
	}
	return body, nil
}

// fanGroup is the owners of one query: a question for every owner is sent
// to all of them in parallel once, and each owner's Source takes its
// answer from there.
type fanGroup struct {
	mu      sync.Mutex
	pending map[string]*fanCall // op?query → the call to every owner

	// The owners' replicas of their newest readings, brought up to date
	// once for the query (latest_replica.go).
	latestOnce  sync.Once
	replicas    []*latestReplica
	replicaErrs []error
}

type fanCall struct {
	done   chan struct{}
	bodies [][]byte // per member
	errs   []error
}

func (g *fanGroup) fetch(ctx context.Context, p *remoteSource, op string, q url.Values) ([]byte, error) {
	key := op + "?" + q.Encode()
	g.mu.Lock()
	c := g.pending[key]
	if c == nil {
		n := len(p.set.members)
		c = &fanCall{done: make(chan struct{}), bodies: make([][]byte, n), errs: make([]error, n)}
		if g.pending == nil {
			g.pending = map[string]*fanCall{}
		}
		g.pending[key] = c
		g.mu.Unlock()
		p.eachOwner(func(i int, o *remoteSource) { c.bodies[i], c.errs[i] = o.fetch(ctx, op, q) })
		close(c.done)
	} else {
		g.mu.Unlock()
		select {
		case <-c.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return c.bodies[p.idx], c.errs[p.idx]
}

// eachOwner calls fn, in parallel, with a copy of p for each owner of its
// set (member i), and waits for every call.
func (p *remoteSource) eachOwner(fn func(i int, o *remoteSource)) {
	var wg sync.WaitGroup
	for i := range p.set.members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := *p
			o.idx = i
			fn(i, &o)
		}()
	}
	wg.Wait()
}

// disjointGroup: the owners of one set hold disjoint partitions, so
// disjoint batteries (a battery's records are keyed to one partition, the
// same murmur2 of its id owns assumes).
func (p *remoteSource) disjointGroup() any { return p.set }

// owns reports whether this member holds id's partition of topic.
func (p *remoteSource) owns(topic, id string) bool {
	own := p.set.owner[topic]
	part := (&kafka.Murmur2Balancer{}).Balance(kafka.Message{Key: []byte(id)}, seq(len(own))...)
	return own[part] == p.idx
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func rangeValues(res agg.Res, from, to int64) url.Values {
	return url.Values{"res": {res.String()}, "from": {strconv.FormatInt(from, 10)}, "to": {strconv.FormatInt(to, 10)}}
}

func (p *remoteSource) Windows(ctx context.Context, id string, res agg.Res, from, to int64, fn func(string, agg.Window)) (bool, error) {
	if id != "" && !p.owns(schemas.TopicBattery, id) {
		return false, nil
	}
	q := rangeValues(res, from, to)
	q.Set("id", id)
	items, found, err := get[speed.WindowItem](ctx, p, "windows", q, id == "")
	for _, it := range items {
		fn(it.ID, agg.Window{Start: it.Start, Stats: it.Stats})
	}
	return found, err
}

func (p *remoteSource) FleetWindows(ctx context.Context, res agg.Res, from, to int64, fn func(agg.FleetWindow)) error {
	items, _, err := get[agg.FleetWindow](ctx, p, "fleet", rangeValues(res, from, to), true)
	for _, w := range items {
		fn(w)
	}
	return err
}

func (p *remoteSource) Batteries(ctx context.Context, res agg.Res, starts []int64, fn func(int64, string)) error {
	if len(starts) == 0 {
		return nil
	}
	ss := make([]string, len(starts))
	for i, s := range starts {
		ss[i] = strconv.FormatInt(s, 10)
	}
	items, _, err := get[speed.StartItem](ctx, p, "batteries", url.Values{"res": {res.String()}, "starts": {strings.Join(ss, ",")}}, true)
	for _, it := range items {
		fn(it.Start, it.ID)
	}
	return err
}

func (p *remoteSource) Latest(ctx context.Context, id string, fn func(string, agg.Reading)) (bool, error) {
	if id == "" {
		return p.latestAll(ctx, fn)
	}
	if !p.owns(schemas.TopicBattery, id) {
		return false, nil
	}
	items, found, err := get[speed.LatestItem](ctx, p, "latest", url.Values{"id": {id}}, id == "")
	for _, it := range items {
		fn(it.ID, it.Reading)
	}
	return found, err
}

// ClosedThrough: the speed side closes no day.
func (*remoteSource) ClosedThrough() (agg.Day, bool) { return agg.Day{}, false }

func (*remoteSource) ClosedDay(context.Context, string, agg.Day, func(RoomDay)) error { return nil }

func (p *remoteSource) Rooms(ctx context.Context) ([]string, error) {
	rooms, _, err := get[string](ctx, p, "rooms", nil, true)
	return rooms, err
}

func (*remoteSource) RoomStart(context.Context, string, agg.Day, func(string, agg.RoomState)) error {
	return nil
}

func (p *remoteSource) RoomEvents(ctx context.Context, room string, from, to int64, fn func(string, []agg.RoomEvent, int64)) error {
	if room != "" && !p.owns(schemas.TopicRoom, room) {
		return nil
	}
	q := url.Values{"room": {room}, "from": {strconv.FormatInt(from, 10)}, "to": {strconv.FormatInt(to, 10)}}
	items, _, err := get[speed.RoomEventsItem](ctx, p, "roomevents", q, room == "")
	for _, it := range items {
		fn(it.Room, it.Events, it.Untaken)
	}
	return err
}

// failingSource stands for owners that did not settle: every call fails
// with why, and the merger retries.
type failingSource struct{ err error }

func (s failingSource) Windows(context.Context, string, agg.Res, int64, int64, func(string, agg.Window)) (bool, error) {
	return false, s.err
}
func (s failingSource) FleetWindows(context.Context, agg.Res, int64, int64, func(agg.FleetWindow)) error {
	return s.err
}
func (s failingSource) Batteries(context.Context, agg.Res, []int64, func(int64, string)) error {
	return s.err
}
func (s failingSource) Latest(context.Context, string, func(string, agg.Reading)) (bool, error) {
	return false, s.err
}
func (failingSource) ClosedThrough() (agg.Day, bool)                                    { return agg.Day{}, false }
func (s failingSource) ClosedDay(context.Context, string, agg.Day, func(RoomDay)) error { return s.err }
func (s failingSource) Rooms(context.Context) ([]string, error)                         { return nil, s.err }
func (s failingSource) RoomStart(context.Context, string, agg.Day, func(string, agg.RoomState)) error {
	return s.err
}
func (s failingSource) RoomEvents(context.Context, string, int64, int64, func(string, []agg.RoomEvent, int64)) error {
	return s.err
}
