package headless

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"testing"
	"time"
)

// A form posted in the browser sets a cookie that the next page load
// sends: what the dashboard's sign-in needs from this driver.
func TestBrowser_FormCookieCarriesToNextPage(t *testing.T) {
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is missing: make deps installs it (Debian package chromium)")
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /form", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<form method="post" action="/set"><input id="v" name="v"><button id="go">go</button></form>`)
	})
	mux.HandleFunc("POST /set", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "c", Value: r.FormValue("v"), Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, Expires: time.Now().Add(time.Hour)})
		http.Redirect(w, r, "/show", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /show", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		c, _ := r.Cookie("c")
		if c == nil {
			fmt.Fprint(w, `<p id="got">none</p>`)
			return
		}
		fmt.Fprintf(w, `<p id="got">%s</p>`, c.Value)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := Start(ctx, bin, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Size(800, 600); err != nil {
		t.Fatal(err)
	}
	if err := b.Open(srv.URL + "/form"); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitFor(`document.querySelector("#v")`, 20*time.Second); err != nil {
		dom, _ := b.DOM()
		u, _ := b.URL()
		t.Fatalf("%v\n%s %s", err, u, dom)
	}
	if err := b.Type("#v", "hello"); err != nil {
		t.Fatal(err)
	}
	if err := b.Click("#go"); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitFor(`location.pathname === "/show" && document.querySelector("#got")`, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := b.Open(srv.URL + "/show"); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitFor(`document.querySelector("#got") && document.querySelector("#got").textContent === "hello"`, 20*time.Second); err != nil {
		dom, _ := b.DOM()
		t.Fatalf("%v\n%s", err, dom)
	}
}
