package batch

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gridlake/gridlake/internal/reference"
	"github.com/gridlake/gridlake/internal/testenv"
	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/objstore"
	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/simulate"
)

// TestHousekeeping_MergeRetainCollect: small files of old hours merge into
// one per partition without losing or doubling a row, views stay equal to
// the reference, replaced files disappear only after the grace period, and
// retention empties the lake of expired hours.
func TestHousekeeping_MergeRetainCollect(t *testing.T) {
	ctx := context.Background()
	start := time.Date(2026, 11, 21, 1, 30, 0, 0, time.UTC)
	now := start.Add(2 * time.Hour)
	addr, store, w, rc := lakeTestAt(t, 2, Site{CloseGrace: time.Hour, Now: func() time.Time { return now }})
	sim := simulate.New(simulate.Options{Batteries: 12, Rooms: 3, Rate: 1, Seed: 6, Start: start,
		Faults: simulate.Faults{Duplicate: 0.05, Reorder: 10 * time.Second}})
	if err := sim.Run(ctx, w, simulate.RunOptions{Duration: 2 * time.Hour, Fast: true}); err != nil {
		t.Fatal(err)
	}
	c := NewCompactor(CompactOptions{Brokers: []string{addr}, Store: store, Limits: schemas.DefaultLimits(), Views: rc, MaxRecords: 2500})
	var m *lake.Manifest
	for {
		next, err := c.Run(ctx)
		if errors.Is(err, ErrNothingToDo) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		m = next
	}
	before := lakeRecords(t, ctx, store, m)

	now = start.Add(6 * time.Hour)
	ho := HousekeepOptions{Store: store, Views: rc, MergeAfter: time.Hour, Retention: 30 * 24 * time.Hour, Grace: time.Hour, Now: func() time.Time { return now }}
	hk := NewHousekeeper(ho)
	merged, err := hk.Merge(ctx)
	if err != nil {
		t.Fatal(err)
	}
	groups := map[string]int{}
	for _, f := range merged.Files {
		groups[fmt.Sprintf("%s|%s|%d", f.Topic, f.Hour, f.Partition)]++
	}
	for k, n := range groups {
		if n != 1 {
			t.Fatalf("%s still has %d files after merge", k, n)
		}
	}
	after := lakeRecords(t, ctx, store, merged)
	if len(after) != len(before) {
		t.Fatalf("merge changed the rows: %d before, %d after", len(before), len(after))
	}
	seen := map[coord]bool{}
	for _, c := range before {
		seen[c] = true
	}
	for _, c := range after {
		if !seen[c] {
			t.Fatalf("merge invented row %+v", c)
		}
		delete(seen, c)
	}
	ref := reference.Build(schemas.DefaultLimits(), testenv.ReadAll(t, addr, schemas.TopicBattery, schemas.TopicRoom))
	checkViews(t, ctx, rc, merged, ref)
	if len(merged.Garbage) == 0 {
		t.Fatal("replaced files were not recorded as garbage")
	}

	// Files the merge replaced stay readable for the grace period (older
	// garbage, the views replaced by earlier compactions, may go).
	var fresh []string
	for _, g := range merged.Garbage {
		if g.Since.Equal(now) {
			fresh = append(fresh, g.Key)
		}
	}
	if len(fresh) == 0 {
		t.Fatal("the merge recorded no garbage")
	}
	if _, err := hk.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	for _, k := range fresh {
		if _, err := store.Stat(ctx, k); err != nil {
			t.Fatalf("%s deleted inside the grace period: %v", k, err)
		}
	}
	now = now.Add(2 * time.Hour)
	if _, err := hk.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	for _, k := range fresh {
		if _, err := store.Stat(ctx, k); !errors.Is(err, objstore.ErrNotFound) {
			t.Fatalf("garbage %s still there after the grace period: %v", k, err)
		}
	}
	latest, _ := lake.Latest(ctx, store)
	if len(latest.Garbage) != 0 {
		t.Fatalf("collected garbage still listed: %d", len(latest.Garbage))
	}
	checkViews(t, ctx, rc, latest, ref)

	// Retention: everything is older than an hour now.
	ho.Retention = time.Hour
	hk = NewHousekeeper(ho)
	retained, err := hk.Retain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(retained.Files) != 0 {
		t.Fatalf("%d raw files survived retention", len(retained.Files))
	}
	now = now.Add(2 * time.Hour)
	if _, err := hk.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	left, err := store.List(ctx, "raw/")
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Fatalf("%d raw objects left after retention and collection", len(left))
	}
}

// unreachable is a lake whose every read fails, as during an outage.
type unreachable struct{ objstore.Bucket }

var errUnreachable = errors.New("object store unreachable")

func (unreachable) Get(context.Context, string) ([]byte, objstore.ObjectInfo, error) {
	return nil, objstore.ObjectInfo{}, errUnreachable
}

// TestHousekeeping_OutageIsAnErrorNotNothingToDo: merge and retain report
// a store that cannot be read as the failure it is, so the job fails and is
// retried, instead of "nothing to do".
func TestHousekeeping_OutageIsAnErrorNotNothingToDo(t *testing.T) {
	hk := NewHousekeeper(HousekeepOptions{Store: unreachable{}, MergeAfter: time.Hour, Retention: time.Hour, Now: time.Now})
	for name, step := range map[string]func(context.Context) (*lake.Manifest, error){"merge": hk.Merge, "retain": hk.Retain} {
		m, err := step(context.Background())
		if !errors.Is(err, errUnreachable) || errors.Is(err, ErrNothingToDo) || m != nil {
			t.Errorf("%s during an outage: %v, %v; want the store's error alone", name, m, err)
		}
	}
}
