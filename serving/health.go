// Package serving is gridlake's serving layer: the HTTP API, health and
// readiness endpoints, and (as it grows) the exact batch+speed merge.
package serving

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// Check reports whether one dependency is usable.
type Check func(ctx context.Context) error

// Health answers /healthz (the process is alive) and /readyz (every
// registered dependency answers).
type Health struct {
	mu     sync.Mutex
	checks map[string]Check
	names  []string
}

// NewHealth returns a Health with no checks.
func NewHealth() *Health { return &Health{checks: map[string]Check{}} }

// Add registers a readiness check.
func (h *Health) Add(name string, c Check) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.checks[name]; !ok {
		h.names = append(h.names, name)
	}
	h.checks[name] = c
}

// Register mounts /healthz and /readyz on mux.
func (h *Health) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", h.ready)
}

func (h *Health) ready(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	names := append([]string(nil), h.names...)
	checks := make([]Check, len(names))
	for i, n := range names {
		checks[i] = h.checks[n]
	}
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	status, code := map[string]string{}, http.StatusOK
	for i, c := range checks {
		if err := c(ctx); err != nil {
			status[names[i]] = err.Error()
			code = http.StatusServiceUnavailable
		} else {
			status[names[i]] = "ok"
		}
	}
	writeJSON(w, code, status)
}
