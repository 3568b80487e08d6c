package auth

import (
	"sync"
	"time"
)

// failures is a per-address budget of failed credentials: past max
// failures within window, an address is refused (429) without a hash
// check, so one client cannot keep the argon2id slots busy with guesses.
type failures struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu sync.Mutex
	m  map[string]*failCount
}

type failCount struct {
	n     int
	since time.Time
}

// maxFailAddrs bounds the table; when full it starts over (a flood of
// addresses then only costs the budget, not memory).
const maxFailAddrs = 10_000

func newFailures(max int, window time.Duration, now func() time.Time) *failures {
	return &failures{max: max, window: window, now: now, m: map[string]*failCount{}}
}

func (f *failures) blocked(addr string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.m[addr]
	if !ok {
		return false
	}
	if f.now().Sub(c.since) > f.window {
		delete(f.m, addr)
		return false
	}
	return c.n >= f.max
}

func (f *failures) add(addr string) {
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.m[addr]
	if !ok || now.Sub(c.since) > f.window {
		if len(f.m) >= maxFailAddrs {
			clear(f.m)
		}
		c = &failCount{since: now}
		f.m[addr] = c
	}
	c.n++
}
