package bench

import (
	"net/http"
	"time"

	"github.com/gridlake/gridlake/auth"
)

// demoToken creates (or reads) the demo admin token in dataDir, where a
// gridlake process started with --data-dir dataDir finds it too, so the
// bench's HTTP calls authenticate like any client (DESIGN §9).
func demoToken(dataDir string) (string, error) {
	tok, _, err := auth.DemoToken(dataDir, time.Now())
	return tok, err
}

// bearer adds Authorization: Bearer <token> to every request.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// withToken returns t (nil: the default transport) sending token.
func withToken(token string, t http.RoundTripper) http.RoundTripper {
	if t == nil {
		t = http.DefaultTransport
	}
	return bearer{token: token, next: t}
}

// protect puts h behind auth.Protect with the demo token of dataDir as the
// only credential, as a gridlake process without users runs.
func protect(dataDir string, h http.Handler) (string, http.Handler, error) {
	tok, e, err := auth.DemoToken(dataDir, time.Now())
	if err != nil {
		return "", nil, err
	}
	dir, err := auth.Open("", auth.Options{Demo: []auth.Entry{e}})
	if err != nil {
		return "", nil, err
	}
	s, err := auth.NewSessions(nil, time.Hour, dir, nil)
	if err != nil {
		return "", nil, err
	}
	return tok, auth.Protect(dir, s, h), nil
}
