package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gridlake/gridlake/objstore"
)

// Why a slot could not be claimed.
var (
	ErrSlotDone = errors.New("slot already ran")
	ErrSlotHeld = errors.New("slot is running on another replica")
	// ErrLeaseLost means a run's lease expired or a newer run took it.
	ErrLeaseLost = errors.New("lease lost")
)

// Claim states.
const (
	stateRunning = "running"
	stateDone    = "done"
	stateFailed  = "failed"
	// stateAbandoned: the holder's lease ran out on a slot nobody takes
	// over (manual triggers, backfills, slots past the sweeper's window).
	stateAbandoned = "abandoned"
)

// claim is the object that gives one run a job's slot: created with a
// conditional put (one winner per slot), renewed while the run lives, and
// taken over with a higher token once its lease has expired.
type claim struct {
	Job       string    `json:"job"`
	Slot      string    `json:"slot"`
	Token     int64     `json:"token"`
	Holder    string    `json:"holder"`
	Expires   time.Time `json:"expires"`
	State     string    `json:"state"`
	Takeovers int       `json:"takeovers,omitempty"`
}

// locks claims slots in the object store for one holder (a replica).
type locks struct {
	store  objstore.Bucket
	holder string
	ttl    time.Duration
	now    func() time.Time
}

func jobPrefix(job string) string { return "_jobs/" + job + "/" }

// slotName names a slot: its UTC time, or "manual-<time>" for a trigger.
func slotName(slot time.Time, manual bool) string {
	name := slot.UTC().Format("20060102T150405.000Z")
	if manual {
		return "manual-" + name
	}
	return name
}

// claim takes a job's slot: a fresh claim, or a takeover of a claim whose
// holder stopped renewing it. takeoverOnly refuses fresh claims (the
// sweeper only finishes abandoned slots).
func (l *locks) claim(ctx context.Context, job, slot string, takeoverOnly bool) (*Lease, error) {
	key := slotKey(job, slot)
	c := claim{Job: job, Slot: slot, Holder: l.holder, Expires: l.now().Add(l.ttl), State: stateRunning}
	if !takeoverOnly {
		etag, err := l.store.PutIfAbsent(ctx, key, mustJSON(c))
		if err == nil {
			// The winner alone draws a job number, so numbers have no gaps
			// from lost races.
			if c.Token, err = l.nextToken(ctx, job); err != nil {
				return nil, err
			}
			if etag, err = l.store.PutIfMatch(ctx, key, mustJSON(c), etag); err != nil {
				return nil, fmt.Errorf("number claim of %s slot %s: %w", job, slot, err)
			}
			return l.lease(key, c, etag), nil
		}
		if !objstore.IsConditionNotMet(err) {
			return nil, fmt.Errorf("claim %s slot %s: %w", job, slot, err)
		}
	}
	data, info, err := l.store.Get(ctx, key)
	if objstore.IsNotFound(err) && takeoverOnly {
		return nil, ErrSlotDone // never claimed: not the sweeper's business
	}
	if err != nil {
		return nil, fmt.Errorf("read claim of %s slot %s: %w", job, slot, err)
	}
	var old claim
	if err := json.Unmarshal(data, &old); err != nil {
		return nil, fmt.Errorf("claim of %s slot %s is corrupt: %w", job, slot, err)
	}
	if old.State != stateRunning {
		return nil, ErrSlotDone
	}
	if l.now().Before(old.Expires) {
		return nil, fmt.Errorf("%w: run %d on %s", ErrSlotHeld, old.Token, old.Holder)
	}
	// The holder died or stalled: take the slot with a newer job number,
	// which fences off any commit the old holder still attempts.
	if c.Token, err = l.nextToken(ctx, job); err != nil {
		return nil, err
	}
	c.Takeovers = old.Takeovers + 1
	etag, err := l.store.PutIfMatch(ctx, key, mustJSON(c), info.ETag)
	if objstore.IsConditionNotMet(err) {
		return nil, fmt.Errorf("%w: another replica took it over first", ErrSlotHeld)
	}
	if err != nil {
		return nil, fmt.Errorf("take over %s slot %s: %w", job, slot, err)
	}
	ls := l.lease(key, c, etag)
	ls.Previous = old.Token
	return ls, nil
}

func (l *locks) lease(key string, c claim, etag string) *Lease {
	return &Lease{locks: l, key: key, claim: c, etag: etag, Takeover: c.Takeovers > 0}
}

func slotKey(job, slot string) string { return jobPrefix(job) + "slots/" + slot + ".json" }

// readClaim reads a slot's claim and its ETag.
func (l *locks) readClaim(ctx context.Context, job, slot string) (claim, string, error) {
	var c claim
	data, info, err := l.store.Get(ctx, slotKey(job, slot))
	if err != nil {
		return c, "", fmt.Errorf("read claim of %s slot %s: %w", job, slot, err)
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, "", fmt.Errorf("claim of %s slot %s is corrupt: %w", job, slot, err)
	}
	return c, info.ETag, nil
}

// newestToken is the job's newest number (0: it never ran).
func (l *locks) newestToken(ctx context.Context, job string) (int64, error) {
	n, _, err := l.readToken(ctx, job)
	return n, err
}

// readToken reads the job's number counter and its ETag ("" when the job
// never ran).
func (l *locks) readToken(ctx context.Context, job string) (int64, string, error) {
	data, info, err := l.store.Get(ctx, jobPrefix(job)+"seq")
	if objstore.IsNotFound(err) {
		return 0, "", nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("read job number of %s: %w", job, err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return 0, "", fmt.Errorf("job number of %s is corrupt: %q", job, data)
	}
	return n, info.ETag, nil
}

// nextToken draws the job's next number: a counter object advanced by
// compare-and-swap, so numbers only rise, across replicas and restarts.
func (l *locks) nextToken(ctx context.Context, job string) (int64, error) {
	key := jobPrefix(job) + "seq"
	for attempt := 0; attempt < 50; attempt++ {
		n, etag, err := l.readToken(ctx, job)
		if err != nil {
			return 0, err
		}
		next := []byte(strconv.FormatInt(n+1, 10))
		if etag == "" {
			_, err = l.store.PutIfAbsent(ctx, key, next)
		} else {
			_, err = l.store.PutIfMatch(ctx, key, next, etag)
		}
		if err == nil {
			return n + 1, nil
		}
		if !objstore.IsConditionNotMet(err) {
			return 0, fmt.Errorf("advance job number of %s: %w", job, err)
		}
	}
	return 0, fmt.Errorf("advance job number of %s: too much contention", job)
}

// Lease is a run's hold on its slot. It is the run's fence (lake.Fence):
// a commit checks that the claim still names this run and has not expired.
type Lease struct {
	locks    *locks
	key      string
	Takeover bool  // the slot was taken over from a dead holder
	Previous int64 // on a takeover, the dead holder's run

	mu    sync.Mutex
	claim claim
	etag  string
}

// Job is the job the lease is for.
func (l *Lease) Job() string { return l.claim.Job }

// Token is the run's job number: it rises with every run of the job.
func (l *Lease) Token() int64 { return l.claim.Token }

// Slot names the slot held.
func (l *Lease) Slot() string { return l.claim.Slot }

// Check reads the claim back: it fails when another run took the slot or
// the lease ran out (a stalled holder must not commit even when nobody has
// taken over yet: a takeover may be under way).
func (l *Lease) Check(ctx context.Context) error {
	data, _, err := l.locks.store.Get(ctx, l.key)
	if err != nil {
		return fmt.Errorf("check lease of %s run %d: %w", l.Job(), l.Token(), err)
	}
	var c claim
	if err := json.Unmarshal(data, &c); err != nil {
		return fmt.Errorf("check lease of %s run %d: %w", l.Job(), l.Token(), err)
	}
	if c.Token != l.Token() {
		return fmt.Errorf("%w: run %d on %s took slot %s over", ErrLeaseLost, c.Token, c.Holder, c.Slot)
	}
	if c.State == stateAbandoned {
		return fmt.Errorf("%w: slot %s was marked abandoned", ErrLeaseLost, c.Slot)
	}
	if now := l.locks.now(); !now.Before(c.Expires) {
		return fmt.Errorf("%w: expired %s ago", ErrLeaseLost, now.Sub(c.Expires).Round(time.Millisecond))
	}
	return nil
}

// renew extends the lease; it fails with ErrLeaseLost when the claim is no
// longer this run's.
func (l *Lease) renew(ctx context.Context) error {
	return l.update(ctx, func(c *claim) { c.Expires = l.locks.now().Add(l.locks.ttl) })
}

// finish marks the slot done or failed so no replica runs it again.
func (l *Lease) finish(ctx context.Context, state string) error {
	return l.update(ctx, func(c *claim) { c.State = state })
}

func (l *Lease) update(ctx context.Context, change func(*claim)) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.claim
	change(&c)
	etag, err := l.locks.store.PutIfMatch(ctx, l.key, mustJSON(c), l.etag)
	if objstore.IsConditionNotMet(err) {
		return fmt.Errorf("%w: %s slot %s was taken over", ErrLeaseLost, l.Job(), l.Slot())
	}
	if err != nil {
		return err
	}
	l.claim, l.etag = c, etag
	return nil
}

// Unlock is gocron's end of a locked run; the run itself marks the slot
// done or failed, so there is nothing left to release.
func (l *Lease) Unlock(context.Context) error { return nil }

func mustJSON(v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain structs are marshalled here
	}
	return data
}
