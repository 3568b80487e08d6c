package auth

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

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
	g := &guard{dir: dir, sessions: sessions}
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
}

func (g *guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	need := RouteRole(r.Method, r.URL.Path)
	p, presented, err := g.authenticate(r)
	if err == nil {
		r = r.WithContext(WithPrincipal(r.Context(), p))
	}
	if need == None {
		g.next.ServeHTTP(w, r)
		return
	}
	if err != nil {
		if dashboardPage(r) {
			http.Redirect(w, r, LoginPath, http.StatusSeeOther)
			return
		}
		msg := "authentication required: send Authorization: Bearer <token>; create one with gridlake auth add-token NAME --role ROLE (or sign in at " + LoginPath + ")"
		if presented {
			msg = err.Error() + ": send Authorization: Bearer <token> with a valid token; create one with gridlake auth add-token NAME --role ROLE"
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="gridlake"`)
		httpx.Error(w, http.StatusUnauthorized, msg)
		return
	}
	if !p.May(need) {
		httpx.Error(w, http.StatusForbidden, fmt.Sprintf("%s %s needs role %s; %s has role %s", r.Method, r.URL.Path, need, p, p.Role))
		return
	}
	g.next.ServeHTTP(w, r)
}

// errNoCredentials is a request that presented neither a token nor a
// session.
var errNoCredentials = errors.New("no credentials")

// authenticate returns the request's principal; presented says whether
// it carried credentials at all (bad ones are a different 401 message).
func (g *guard) authenticate(r *http.Request) (p Principal, presented bool, err error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return p, true, errors.New("the Authorization header is not Bearer <token>")
		}
		p, err = g.dir.Token(r.Context(), strings.TrimSpace(token))
		return p, true, err
	}
	if c, cerr := r.Cookie(SessionCookie); cerr == nil && c.Value != "" {
		p, err = g.sessions.Check(c.Value)
		return p, true, err
	}
	return p, false, errNoCredentials
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
