package auth

import (
	_ "embed"
	"errors"
	"html/template"
	"net/http"
	"strings"
)

// The dashboard's sign-in and sign-out routes.
const (
	LoginPath  = "/login"
	LogoutPath = "/logout"
)

// maxSignInBytes bounds the sign-in form's body: a name (64 bytes) and a
// password or token (256) with room for encoding.
const maxSignInBytes = 4 << 10

//go:embed signin.html
var signInHTML string

var signInPage = template.Must(template.New("signin").Parse(signInHTML))

type signInData struct {
	Name  string
	Error string
}

func (g *guard) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := FromContext(r.Context()); ok {
		if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
			http.Redirect(w, r, "/", http.StatusSeeOther) // already signed in
			return
		}
	}
	renderSignIn(w, http.StatusOK, signInData{})
}

func renderSignIn(w http.ResponseWriter, code int, d signInData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = signInPage.Execute(w, d)
}

// login checks the form's name and password (or token) and sets the
// session cookie. A failure never says whether the name exists; the
// Directory bounds concurrent hash checks, so a flood of guesses queues.
func (g *guard) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxSignInBytes)
	if err := r.ParseForm(); err != nil {
		renderSignIn(w, http.StatusBadRequest, signInData{Error: "the sign-in form could not be read (at most 4 KiB of name and password)"})
		return
	}
	client := clientAddr(r)
	if g.fails.blocked(client) {
		w.Header().Set("Retry-After", "60")
		renderSignIn(w, http.StatusTooManyRequests, signInData{Error: "Too many failed sign-ins from this address: wait a minute."})
		return
	}
	name, secret := strings.TrimSpace(r.PostForm.Get("name")), r.PostForm.Get("secret")
	var p Principal
	var err error
	if tokenName, terr := TokenName(secret); terr == nil && (name == "" || name == tokenName) {
		p, err = g.dir.Token(r.Context(), secret)
	} else {
		p, err = g.dir.Password(r.Context(), name, secret)
	}
	if err != nil {
		if !errors.Is(err, ErrUnauthenticated) && r.Context().Err() == nil {
			renderSignIn(w, http.StatusServiceUnavailable, signInData{Name: name, Error: "sign-in is busy: try again"})
			return
		}
		g.fails.add(client)
		renderSignIn(w, http.StatusUnauthorized, signInData{Name: name, Error: "Wrong name or password."})
		return
	}
	value, exp, err := g.sessions.Issue(p)
	if err != nil {
		renderSignIn(w, http.StatusInternalServerError, signInData{Name: name, Error: err.Error()})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: value, Path: "/", Expires: exp,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: overTLS(r)})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// logout revokes the session and clears its cookie.
func (g *guard) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(SessionCookie); err == nil {
		g.sessions.Revoke(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: overTLS(r)})
	http.Redirect(w, r, LoginPath, http.StatusSeeOther)
}

// overTLS reports whether the browser reached us over HTTPS, directly or
// through a TLS-terminating proxy; it only ever makes the cookie stricter.
func overTLS(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}
