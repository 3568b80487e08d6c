package serving

import "time"

// StoreDown reports whether the object store is unreachable, since when
// and why, as the merger last saw it; it asks the store again in the
// background (at most once a second) so an outage shows without queries.
func (m *Merger) StoreDown() (down bool, since time.Time, why string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.probe()
	if m.health.err == nil {
		return false, time.Time{}, ""
	}
	return true, m.health.since, m.health.err.Error()
}
