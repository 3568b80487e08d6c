package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/gridlake/gridlake/auth"
	"github.com/gridlake/gridlake/config"
)

// access is who may do what in a process (DESIGN §9): the users file's
// directory, dashboard sessions and, while no users are configured, the
// local demo token.
type access struct {
	dir      *auth.Directory
	sessions *auth.Sessions
	// demoToken is set when no users are configured: the process then
	// binds loopback only and this admin token (kept in the data dir) is
	// the way in.
	demoToken string
}

// openAccess loads the users file, creates the demo token when there are
// no users and refuses non-loopback listen addresses without users. The
// process's lifecycle runs watch to keep the users file reloaded.
func openAccess(cfg *config.Config, binds map[string]string) (*access, error) {
	path := cfg.UsersPath()
	dir, err := auth.Open(path, auth.Options{})
	if err != nil {
		return nil, fmt.Errorf("%w\nfix or remove the file, or point auth.users_file elsewhere", err)
	}
	a := &access{dir: dir}
	if !dir.Configured() {
		tok, e, err := auth.DemoToken(cfg.DataDir, time.Now())
		if err != nil {
			return nil, err
		}
		if dir, err = auth.Open(path, auth.Options{Demo: []auth.Entry{e}}); err != nil {
			return nil, err
		}
		a.dir, a.demoToken = dir, tok
	}
	if err := auth.CheckBind(dir.Configured(), binds); err != nil {
		return nil, err
	}
	if a.sessions, err = auth.NewSessions([]byte(cfg.Auth.SessionSecret), cfg.Auth.SessionTTL, dir, nil); err != nil {
		return nil, err
	}
	return a, nil
}

// join adds the users-file watcher to the process's lifecycle: it reloads
// the file every 5 seconds; a file that does not load leaves the previous
// users in place.
func (a *access) join(lc *lifecycle, log *slog.Logger) {
	lc.add("users-file watcher", func(ctx context.Context) error {
		a.dir.Watch(ctx, 5*time.Second, func(err error) { log.Error("users file not reloaded; the previous users stay", "err", err) })
		return nil
	})
}
