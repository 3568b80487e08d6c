package auth

import (
	"net/http"
	"path"
	"strings"
)

// RouteRole is the role an HTTP request needs (DESIGN §9); None means the
// route is public. Anything not named here needs Admin, so a new route is
// closed until someone classifies it.
//
//	public    GET /healthz, /readyz, the sign-in page and its stylesheet; POST /login, /logout
//	viewer    the dashboard and every GET or HEAD of /v1/... and /speed/v1/...
//	engineer  GET /speed/v1/source/... (a speed process's whole state, for serving processes)
//	analyst   POST /v1/sql
//	engineer  any other method under /v1/ (job triggers, re-runs, backfills)
//	admin     /metrics, /debug/pprof/ and everything else
func RouteRole(method, p string) Role {
	// Classify the path the mux will route: it redirects unclean paths
	// (/v1/../metrics) rather than serving them, but be strict anyway.
	p = path.Clean("/" + p)
	read := method == http.MethodGet || method == http.MethodHead
	switch {
	case read && (p == "/healthz" || p == "/readyz" || p == LoginPath || p == "/ui/app.css"):
		return None
	case method == http.MethodPost && (p == LoginPath || p == LogoutPath):
		return None
	case p == "/metrics" || p == "/debug/pprof" || strings.HasPrefix(p, "/debug/pprof/"):
		return Admin
	case read && strings.HasPrefix(p, "/speed/v1/source/"):
		return Engineer
	case read && (p == "/" || strings.HasPrefix(p, "/ui/") || strings.HasPrefix(p, "/v1/") || strings.HasPrefix(p, "/speed/v1/")):
		return Viewer
	case method == http.MethodPost && p == "/v1/sql":
		return Analyst
	case strings.HasPrefix(p, "/v1/"):
		return Engineer
	}
	return Admin
}

// dashboardPage reports whether a request is a browser loading a
// dashboard page, which is sent to the sign-in form instead of a 401.
func dashboardPage(r *http.Request) bool {
	return r.Method == http.MethodGet && path.Clean("/"+r.URL.Path) == "/" &&
		strings.Contains(r.Header.Get("Accept"), "text/html")
}
