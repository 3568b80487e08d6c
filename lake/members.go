package lake

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/gridlake/gridlake/objstore"
)

// Member is what one speed process publishes of itself, so serving
// processes find the owners of the partitions a query needs (DESIGN §12)
// without configuration: its address, the consumer-group generation it
// holds its partitions in, the batch version it applied, and when it last
// said so. A member not updated within its TTL is gone.
type Member struct {
	ID         string           `json:"id"`
	Addr       string           `json:"addr"` // base URL of its /speed/v1 interface
	Generation int32            `json:"generation"`
	Version    int64            `json:"manifest_version"`
	Lag        int64            `json:"lag_records"` // the largest lag over its partitions
	Partitions []OwnedPartition `json:"partitions"`
	Updated    time.Time        `json:"updated"`
	TTL        time.Duration    `json:"ttl_ns"`
}

// OwnedPartition is a partition a speed process holds. Ready is false
// while it replays the partition after taking it over: its state is then
// behind what the previous owner answered.
type OwnedPartition struct {
	Topic     string `json:"topic"`
	Partition int    `json:"partition"`
	Ready     bool   `json:"ready"`
}

// Live reports whether the member published within its TTL of now.
func (m Member) Live(now time.Time) bool { return now.Sub(m.Updated) <= m.TTL }

// maxMembers bounds how many member objects a reader loads.
const maxMembers = 1024

func membersPrefix(group string) string { return fmt.Sprintf("_speed/%s/members/", group) }

// MemberKey is where a speed process of group publishes itself.
func MemberKey(group, id string) string { return membersPrefix(group) + id + ".json" }

// PublishMember writes m.
func PublishMember(ctx context.Context, s objstore.Bucket, group string, m Member) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if _, err := s.Put(ctx, MemberKey(group, m.ID), data); err != nil {
		return fmt.Errorf("publish speed member %s: %w", m.ID, err)
	}
	return nil
}

// RemoveMember deletes m's object, when its process stops.
func RemoveMember(ctx context.Context, s objstore.Bucket, group, id string) error {
	if err := s.Delete(ctx, MemberKey(group, id)); err != nil && !objstore.IsNotFound(err) {
		return fmt.Errorf("remove speed member %s: %w", id, err)
	}
	return nil
}

// Members reads every published member of group, live or not; an object
// that does not parse is skipped (a member rewrites it within its TTL).
func Members(ctx context.Context, s objstore.Bucket, group string) ([]Member, error) {
	infos, err := s.List(ctx, membersPrefix(group))
	if err != nil {
		return nil, fmt.Errorf("list speed members of %s: %w", group, err)
	}
	if len(infos) > maxMembers {
		return nil, fmt.Errorf("list speed members of %s: %d objects, more than %d", group, len(infos), maxMembers)
	}
	out := make([]Member, 0, len(infos))
	for _, in := range infos {
		if !strings.HasSuffix(in.Key, ".json") {
			continue
		}
		data, _, err := s.Get(ctx, in.Key)
		if objstore.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read speed member %s: %w", in.Key, err)
		}
		var m Member
		if json.Unmarshal(data, &m) == nil && m.ID != "" {
			out = append(out, m)
		}
	}
	return out, nil
}
