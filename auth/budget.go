package auth

import "time"

// FailureBudget is the per-address budget of failed credentials the HTTP
// guard keeps, for listeners of other protocols (Flight SQL): past max
// failures within window an address is refused without a hash check.
type FailureBudget struct{ f *failures }

// NewFailureBudget makes a budget of max failures per window per address.
func NewFailureBudget(max int, window time.Duration, now func() time.Time) *FailureBudget {
	if now == nil {
		now = time.Now
	}
	return &FailureBudget{f: newFailures(max, window, now)}
}

// Blocked reports whether addr has spent its budget.
func (b *FailureBudget) Blocked(addr string) bool { return b.f.blocked(addr) }

// Add counts a failed credential from addr.
func (b *FailureBudget) Add(addr string) { b.f.add(addr) }
