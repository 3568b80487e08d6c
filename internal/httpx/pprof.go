package httpx

import (
	"net/http"
	"net/http/pprof"
)

// MountPprof exposes the Go profiler at /debug/pprof/, so operators can
// profile a live process (go tool pprof http://host/debug/pprof/profile).
func MountPprof(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}
