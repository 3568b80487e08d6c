package auth

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gridlake/gridlake/internal/httpx"
)

// SessionCookie names the dashboard's session cookie.
const SessionCookie = "gridlake_session"

// Protect wraps a process's HTTP handler: it adds the sign-in page
// (/login, /logout) and GET /v1/whoami, says who each request comes from
// (Authorization: Bearer <token>, else the session cookie), puts the
// principal in the request's context and refuses a request whose route
// needs a role the caller does not have (RouteRole).
func Protect(dir *Directory, sessions *Sessions, next http.Handler) http.Handler {
	g := &guard{dir: dir, sessions: sessions, csrf: http.NewCrossOriginProtection(),
		fails: newFailures(20, time.Minute, time.Now)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+LoginPath, g.loginPage)
	mux.HandleFunc("POST "+LoginPath, g.login)
	mux.HandleFunc("POST "+LogoutPath, g.logout)
	mux.HandleFunc("GET /v1/whoami", whoami)
	mux.Handle("/", next)
	g.next = mux
	return g
}

type guard struct {
	dir      *Directory
	sessions *Sessions
	next     http.Handler
	// csrf refuses cross-origin unsafe requests that ride on the session
	// cookie (SameSite=Strict does not cover other ports of the same host).
	csrf *http.CrossOriginProtection
	// fails counts failed credentials per client address.
	fails *failures
}

func (g *guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	if r.Method == http.MethodConnect {
		httpx.Error(w, http.StatusMethodNotAllowed, "CONNECT is not served")
		return
	}
	// Classify the escaped path: the mux routes on it, so "%2F" inside a
	// segment cannot make the guard and the mux see different routes.
	need := RouteRole(r.Method, r.URL.EscapedPath())
	if need == None {
		// Public routes never pay for a hash check; the sign-in page only
		// reads the (cheap, HMAC-checked) session cookie.
		if p, err := g.sessionOf(r); err == nil {
			r = r.WithContext(WithPrincipal(r.Context(), p))
		}
		if r.Method == http.MethodPost {
			if err := g.csrf.Check(r); err != nil {
				httpx.Error(w, http.StatusForbidden, "cross-origin sign-in or sign-out refused: use the dashboard's own form")
				return
			}
		}
		g.next.ServeHTTP(w, r)
		return
	}
	client := clientAddr(r)
	if g.fails.blocked(client) {
		h.Set("Retry-After", "60")
		httpx.Error(w, http.StatusTooManyRequests, "too many failed credentials from this address: wait a minute")
		return
	}
	p, presented, byCookie, err := g.authenticate(r)
	if errors.Is(err, ErrBusy) {
		h.Set("Retry-After", "5")
		httpx.Error(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	if err != nil {
		if presented {
			g.fails.add(client)
		}
		if dashboardPage(r) {
			http.Redirect(w, r, LoginPath, http.StatusSeeOther)
			return
		}
		msg := "authentication required: send Authorization: Bearer <token>; create one with gridlake auth add-token NAME --role ROLE (or sign in at " + LoginPath + ")"
		if presented {
			msg = err.Error() + ": send Authorization: Bearer <token> with a valid token; create one with gridlake auth add-token NAME --role ROLE"
		}
		h.Set("WWW-Authenticate", `Bearer realm="gridlake"`)
		httpx.Error(w, http.StatusUnauthorized, msg)
		return
	}
	if byCookie && r.Method != http.MethodGet && r.Method != http.MethodHead {
		if err := g.csrf.Check(r); err != nil {
			httpx.Error(w, http.StatusForbidden, "cross-origin request with the session cookie refused: programs send Authorization: Bearer <token>")
			return
		}
	}
	if !p.May(need) {
		httpx.Error(w, http.StatusForbidden, fmt.Sprintf("%s %s needs role %s; %s has role %s", r.Method, r.URL.Path, need, p, p.Role))
		return
	}
	g.next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
}

// errNoCredentials is a request that presented neither a token nor a
// session.
var errNoCredentials = errors.New("no credentials")

// authenticate returns the request's principal; presented says whether
// it carried credentials at all (bad ones are a different 401 message),
// byCookie whether they were the session cookie.
func (g *guard) authenticate(r *http.Request) (p Principal, presented, byCookie bool, err error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return p, true, false, errors.New("the Authorization header is not Bearer <token>")
		}
		p, err = g.dir.Token(r.Context(), strings.TrimSpace(token))
		return p, true, false, err
	}
	p, err = g.sessionOf(r)
	if errors.Is(err, errNoCredentials) {
		return p, false, false, err
	}
	return p, true, true, err
}

// sessionOf returns the principal of the request's session cookie.
func (g *guard) sessionOf(r *http.Request) (Principal, error) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return Principal{}, errNoCredentials
	}
	return g.sessions.Check(c.Value)
}

// clientAddr is the remote host of a request, the unit of the failure
// budget. (Behind a proxy every client shares the proxy's address.)
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// whoami answers GET /v1/whoami: who the caller is and what role they
// hold, so the dashboard can show it beside its sign-out button.
func whoami(w http.ResponseWriter, r *http.Request) {
	p, ok := FromContext(r.Context())
	if !ok {
		httpx.Error(w, http.StatusUnauthorized, "not signed in")
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"name": p.Name, "kind": p.Kind, "role": p.Role.String()})
}
