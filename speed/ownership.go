package speed

import (
	"context"
	"slices"
	"sort"
	"time"

	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/objstore"
)

// Ownership is what this process holds now: its consumer-group
// generation, the batch version it applied and its partitions. A serving
// process that fans a query out checks that the owners it asked hold
// every partition once, in one generation, each ready.
type Ownership struct {
	Generation int32                 `json:"generation"`
	Version    int64                 `json:"manifest_version"`
	Partitions []lake.OwnedPartition `json:"partitions"`
}

// Same reports whether two ownerships hold the same partitions in the same
// generation and readiness.
func (o Ownership) Same(p Ownership) bool {
	return o.Generation == p.Generation && slices.Equal(o.Partitions, p.Partitions)
}

// Ownership reports what this process holds.
func (l *Layer) Ownership() Ownership {
	o, _ := l.ownership()
	return o
}

// ownership also returns the states it saw, so an answer can tell that no
// partition's state was replaced (rebuilt) while it was computed.
func (l *Layer) ownership() (Ownership, []*part) {
	l.mu.RLock()
	o := Ownership{Generation: l.groupGen}
	if l.manifest != nil {
		o.Version = l.manifest.Version
	}
	parts := make([]*part, 0, len(l.parts))
	for _, p := range l.parts {
		parts = append(parts, p)
	}
	l.mu.RUnlock()
	sort.Slice(parts, func(i, j int) bool {
		a, b := parts[i].key, parts[j].key
		if a.topic != b.topic {
			return a.topic < b.topic
		}
		return a.id < b.id
	})
	for _, p := range parts {
		p.mu.RLock()
		ready := p.next >= p.replayTo && !p.rebuild
		p.mu.RUnlock()
		o.Partitions = append(o.Partitions, lake.OwnedPartition{Topic: p.key.topic, Partition: p.key.id, Ready: ready})
	}
	return o, parts
}

// Announce publishes this process as a member of its group in the lake
// every interval, with addr as the base URL serving processes reach its
// /speed/v1 interface at, until ctx ends; then it removes the member so
// serving processes stop asking it at once. ttl is how long a published
// member counts as live without a newer publication.
func (l *Layer) Announce(ctx context.Context, store objstore.Bucket, id, addr string, every, ttl time.Duration) error {
	publish := func() {
		o := l.Ownership()
		m := lake.Member{ID: id, Addr: addr, Generation: o.Generation, Version: o.Version, Lag: l.MaxLag(), Partitions: o.Partitions, Updated: l.opts.Now(), TTL: ttl}
		if err := lake.PublishMember(ctx, store, l.opts.Group, m); err != nil && ctx.Err() == nil {
			l.opts.Log.Warn("announce speed member", "err", err)
		}
	}
	publish()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			rm, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := lake.RemoveMember(rm, store, l.opts.Group, id); err != nil {
				l.opts.Log.Warn("remove speed member", "err", err)
			}
			return nil
		case <-t.C:
			publish()
		}
	}
}
