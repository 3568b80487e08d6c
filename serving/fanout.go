package serving

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/objstore"
	"github.com/gridlake/gridlake/schemas"
)

// ErrOwnersUnsettled means the speed processes did not form one
// consistent owner set: a rebalance is under way (a partition unowned,
// owned twice, replaying, or owners in different group generations), or an
// owner did not answer. The merger retries briefly, then answers 503.
var ErrOwnersUnsettled = errors.New("the speed processes' partition owners are changing")

// FanoutOptions configure a Fanout.
type FanoutOptions struct {
	Store objstore.Bucket
	Group string // the speed layer's consumer group
	// Partitions is each speed topic's partition count, which maps an id
	// to its partition the way producers do (murmur2 of the key).
	Partitions map[string]int
	Token      string       // a bearer token of a role that may read the source interface
	Client     *http.Client // bounds each call with its timeout
	// Refresh is how long a read of the members serves queries.
	Refresh time.Duration
	// MaxAnswerBytes bounds one owner's answer.
	MaxAnswerBytes int64
	Now            func() time.Time
	Log            *slog.Logger
}

// Fanout is the speed side of the merge when the speed layer runs in
// other processes (DESIGN §12): it finds the owners of the partitions in
// what they publish in the lake, and hands the merge one Source per owner
// (remoteSource), which asks only the owner of a battery's or room's
// partition, and every owner for the fleet. It is a Speed to the Merger.
type Fanout struct {
	opts FanoutOptions

	mu      sync.Mutex
	set     *ownerSet
	err     error
	readAt  time.Time
	stale   bool          // an owner failed an answer: read again before answering
	reading chan struct{} // closed when the read under way ends; nil when none
	last    *ownerSet     // the last set that settled

	// replicas are the owners' newest readings by owner and version
	// (latest_replica.go).
	replicas map[string]*latestReplica
}

// NewFanout returns a fanout over the published members of opts.Group.
func NewFanout(o FanoutOptions) (*Fanout, error) {
	if o.Store == nil {
		return nil, errors.New("fanout: no object store to discover speed processes in")
	}
	for _, t := range []string{schemas.TopicBattery, schemas.TopicRoom} {
		if o.Partitions[t] <= 0 {
			return nil, fmt.Errorf("fanout: no partition count of %s", t)
		}
	}
	if o.Group == "" {
		o.Group = lake.SpeedGroup
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 5 * time.Second}
	}
	if o.Refresh <= 0 {
		o.Refresh = 250 * time.Millisecond
	}
	if o.MaxAnswerBytes <= 0 {
		o.MaxAnswerBytes = 256 << 20
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Fanout{opts: o}, nil
}

// ownerSet is one consistent assignment: every partition of both topics
// held by exactly one live member, ready, all in one group generation.
type ownerSet struct {
	members []lake.Member
	owner   map[string][]int // topic → partition → index in members
	version int64            // the newest batch version a member applied
	lag     int64
}

// current returns the owner set, re-reading the members once Refresh
// passed or after a failed answer. One read runs at a time, detached from
// the asking query; meanwhile queries take the previous set unless it
// failed them (stale), then they wait for the read.
func (f *Fanout) current(ctx context.Context) (*ownerSet, error) {
	f.mu.Lock()
	now := f.opts.Now()
	known := f.set != nil || f.err != nil
	if known && !f.stale && (f.reading != nil || now.Sub(f.readAt) < f.opts.Refresh) {
		defer f.mu.Unlock()
		return f.set, f.err
	}
	if done := f.reading; done != nil {
		f.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.set, f.err
	}
	done := make(chan struct{})
	f.reading, f.stale = done, false
	f.mu.Unlock()
	ms, err := lake.Members(context.WithoutCancel(ctx), f.opts.Store, f.opts.Group)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		f.set, f.err = nil, fmt.Errorf("%w: %w", ErrOwnersUnsettled, err)
	} else {
		f.set, f.err = f.settle(ms, now)
	}
	if f.set != nil {
		f.last = f.set
	}
	f.readAt, f.reading = now, nil
	close(done)
	return f.set, f.err
}

// unsettle makes the next query re-read the members.
func (f *Fanout) unsettle() {
	f.mu.Lock()
	f.stale = true
	f.mu.Unlock()
}

// settle checks that the live members form one consistent owner set.
func (f *Fanout) settle(all []lake.Member, now time.Time) (*ownerSet, error) {
	set := &ownerSet{owner: map[string][]int{}}
	for _, m := range all {
		if m.Live(now) {
			set.members = append(set.members, m)
		}
	}
	if len(set.members) == 0 {
		return nil, fmt.Errorf("%w: no live speed process in group %s", ErrOwnersUnsettled, f.opts.Group)
	}
	for t, n := range f.opts.Partitions {
		set.owner[t] = make([]int, n)
		for i := range set.owner[t] {
			set.owner[t][i] = -1
		}
	}
	gen := set.members[0].Generation
	for i, m := range set.members {
		if m.Generation != gen {
			return nil, fmt.Errorf("%w: %s is in group generation %d, %s in %d", ErrOwnersUnsettled, m.ID, m.Generation, set.members[0].ID, gen)
		}
		set.version, set.lag = max(set.version, m.Version), max(set.lag, m.Lag)
		for _, p := range m.Partitions {
			own := set.owner[p.Topic]
			if p.Partition < 0 || p.Partition >= len(own) {
				return nil, fmt.Errorf("%w: %s holds %s/%d, which the topic does not have", ErrOwnersUnsettled, m.ID, p.Topic, p.Partition)
			}
			if !p.Ready {
				return nil, fmt.Errorf("%w: %s is replaying %s/%d", ErrOwnersUnsettled, m.ID, p.Topic, p.Partition)
			}
			if own[p.Partition] >= 0 {
				return nil, fmt.Errorf("%w: %s/%d is held by %s and %s", ErrOwnersUnsettled, p.Topic, p.Partition, set.members[own[p.Partition]].ID, m.ID)
			}
			own[p.Partition] = i
		}
	}
	for t, own := range set.owner {
		for p, i := range own {
			if i < 0 {
				return nil, fmt.Errorf("%w: no live speed process holds %s/%d", ErrOwnersUnsettled, t, p)
			}
		}
	}
	return set, nil
}

// ManifestVersion is the newest batch version a current owner applied;
// every owner answers above that version's cut (it still holds the
// generation boundary there), or says it cannot and the query is retried.
func (f *Fanout) ManifestVersion() int64 {
	set, err := f.current(context.Background())
	if err != nil {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.last != nil {
			return f.last.version
		}
		return 0
	}
	return set.version
}

// MaxLag is the largest lag the owners published.
func (f *Fanout) MaxLag() int64 {
	set, err := f.current(context.Background())
	if err != nil {
		return 0
	}
	return set.lag
}

// speedSources are the owners as Sources at version v; when the owners
// are unsettled, one Source that fails every call with why.
func (f *Fanout) speedSources(ctx context.Context, v int64) []Source {
	set, err := f.current(ctx)
	if err != nil {
		return []Source{failingSource{err}}
	}
	out := make([]Source, 0, len(set.members))
	g := &fanGroup{}
	for i := range set.members {
		out = append(out, &remoteSource{f: f, set: set, idx: i, version: v, group: g})
	}
	return out
}
