package serving

import (
	"errors"
	"testing"
	"time"

	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/objstore"
	"github.com/gridlake/gridlake/schemas"
)

// TestFanoutSettle_OnlyOneConsistentOwnerSetAnswers checks the rule that
// keeps fanned-out answers exact across a rebalance: the live members must
// hold every partition once, ready, in one group generation; anything else
// is ErrOwnersUnsettled (a retry, then a 503), never a partial owner set.
func TestFanoutSettle_OnlyOneConsistentOwnerSetAnswers(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	f, err := NewFanout(FanoutOptions{Store: nilStore{}, Partitions: map[string]int{schemas.TopicBattery: 2, schemas.TopicRoom: 1}})
	if err != nil {
		t.Fatal(err)
	}
	bat := func(p int, ready bool) lake.OwnedPartition {
		return lake.OwnedPartition{Topic: schemas.TopicBattery, Partition: p, Ready: ready}
	}
	room := lake.OwnedPartition{Topic: schemas.TopicRoom, Partition: 0, Ready: true}
	member := func(id string, gen int32, version int64, age time.Duration, parts ...lake.OwnedPartition) lake.Member {
		return lake.Member{ID: id, Addr: "http://" + id, Generation: gen, Version: version, Partitions: parts, Updated: now.Add(-age), TTL: 5 * time.Second}
	}
	for _, c := range []struct {
		name    string
		members []lake.Member
		ok      bool
		version int64
	}{
		{"two owners split the partitions", []lake.Member{member("a", 7, 3, 0, bat(0, true), room), member("b", 7, 4, time.Second, bat(1, true))}, true, 4},
		{"a dead owner's stale claim is ignored", []lake.Member{member("a", 7, 3, 0, bat(0, true), bat(1, true), room), member("dead", 6, 3, time.Minute, bat(1, true))}, true, 3},
		{"owners in different generations", []lake.Member{member("a", 7, 3, 0, bat(0, true), room), member("b", 8, 3, 0, bat(1, true))}, false, 0},
		{"a partition replaying", []lake.Member{member("a", 7, 3, 0, bat(0, true), room), member("b", 7, 3, 0, bat(1, false))}, false, 0},
		{"a partition held twice", []lake.Member{member("a", 7, 3, 0, bat(0, true), bat(1, true), room), member("b", 7, 3, 0, bat(1, true))}, false, 0},
		{"a partition nobody holds", []lake.Member{member("a", 7, 3, 0, bat(0, true), room)}, false, 0},
		{"its owner expired", []lake.Member{member("a", 7, 3, 0, bat(0, true), room), member("b", 7, 3, 6*time.Second, bat(1, true))}, false, 0},
		{"a partition the topic does not have", []lake.Member{member("a", 7, 3, 0, bat(0, true), bat(1, true), bat(2, true), room)}, false, 0},
		{"no member", nil, false, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			set, err := f.settle(c.members, now)
			if !c.ok {
				if !errors.Is(err, ErrOwnersUnsettled) {
					t.Fatalf("settled (%v); want ErrOwnersUnsettled", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if set.version != c.version {
				t.Errorf("version %d, want %d (the newest an owner applied)", set.version, c.version)
			}
			// Each id is asked of exactly one owner: its partition's.
			for _, id := range []string{"B-00001", "B-00002", "B-00003", "B-00004", "B-00005"} {
				askers := 0
				for i := range set.members {
					if (&remoteSource{set: set, idx: i}).owns(schemas.TopicBattery, id) {
						askers++
					}
				}
				if askers != 1 {
					t.Errorf("battery %s would be asked of %d owners", id, askers)
				}
			}
		})
	}
}

// nilStore stands in for the store settle never reads.
type nilStore struct{ objstore.Bucket }
