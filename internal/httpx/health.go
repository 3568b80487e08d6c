package httpx

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// Check reports whether one dependency is usable. It must reach the
// dependency (a fresh connection, a request), not trust a pooled one.
type Check func(ctx context.Context) error

// DefaultCheckTimeout bounds each readiness check.
const DefaultCheckTimeout = 3 * time.Second

// Health answers /healthz (the process is alive) and /readyz (every
// registered dependency answers).
type Health struct {
	// CheckTimeout bounds each check on its own, so one frozen dependency
	// neither delays nor fails the report of the others.
	CheckTimeout time.Duration

	mu     sync.Mutex
	checks map[string]Check
	names  []string
}

// NewHealth returns a Health with no checks.
func NewHealth() *Health {
	return &Health{CheckTimeout: DefaultCheckTimeout, checks: map[string]Check{}}
}

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
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", h.ready)
}

// Ready runs every check at once, each with its own timeout, and returns
// each dependency's status ("ok" or what failed) and whether all are ok.
func (h *Health) Ready(ctx context.Context) (map[string]string, bool) {
	h.mu.Lock()
	names := append([]string(nil), h.names...)
	checks := make([]Check, len(names))
	for i, n := range names {
		checks[i] = h.checks[n]
	}
	timeout := h.CheckTimeout
	h.mu.Unlock()
	if timeout <= 0 {
		timeout = DefaultCheckTimeout
	}
	errs := make([]error, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- c(cctx) }()
			select {
			case errs[i] = <-done:
			case <-cctx.Done():
				// A check that ignores its context still answers in time.
				errs[i] = cctx.Err()
			}
			if errs[i] != nil && errors.Is(errs[i], context.DeadlineExceeded) && ctx.Err() == nil {
				errs[i] = fmt.Errorf("no answer within %s: %w", timeout, errs[i])
			}
		}()
	}
	wg.Wait()
	status, ok := make(map[string]string, len(names)), true
	for i, n := range names {
		if errs[i] != nil {
			status[n] = errs[i].Error()
			ok = false
		} else {
			status[n] = "ok"
		}
	}
	return status, ok
}

func (h *Health) ready(w http.ResponseWriter, r *http.Request) {
	status, ok := h.Ready(r.Context())
	code := http.StatusOK
	if !ok {
		code = http.StatusServiceUnavailable
	}
	WriteJSON(w, code, status)
}
