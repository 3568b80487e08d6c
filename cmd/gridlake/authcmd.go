package main

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gridlake/gridlake/auth"
)

const authSynopsis = `Manages who may use gridlake: users (for the dashboard sign-in and psql)
and API tokens (for HTTP clients, BI tools and scripts). Actions:

  add-token NAME --role ROLE   create an API token and print it once
  add-user NAME --role ROLE    create a user with a generated password and
                               print the password once
  list                         the users and tokens, their roles and dates
  remove NAME                  delete a user or token

Roles: viewer (dashboard, GET /v1), analyst (+ SQL over HTTP and the
PostgreSQL port), engineer (+ trigger, re-run and backfill jobs), admin
(+ /metrics, /debug/pprof, users and tokens).

The users file (auth.users_file, default <data_dir>/users.yaml) keeps only
argon2id hashes and SCRAM-SHA-256 verifiers; running processes reload it
within seconds. Secrets are printed once and never stored in clear.
Once the file holds a user or token, gridlake may listen beyond loopback.

A token is used as "Authorization: Bearer gl_NAME.SECRET" over HTTP, and as
the password of user NAME over the PostgreSQL port:
  PGPASSWORD=gl_NAME.SECRET psql -h HOST -p 15432 -U NAME

Example: gridlake auth add-token grafana --role viewer --auth-users-file /etc/gridlake/users.yaml`

func runAuth(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		return actionHelp(e, args, fmt.Sprintf("Usage: gridlake auth <add-token|add-user|list|remove> [NAME] [flags]\n\n%s\n", authSynopsis))
	}
	action, rest := args[0], args[1:]
	var name string
	switch action {
	case "add-token", "add-user", "remove":
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			return fmt.Errorf("%w: gridlake auth %s NAME (1-64 of a-z, 0-9, _ and -)", errUsage, action)
		}
		name, rest = rest[0], rest[1:]
	case "list":
	default:
		return fmt.Errorf("%w: unknown auth action %q (add-token, add-user, list, remove)", errUsage, action)
	}
	fs, loader := flags(e, "auth "+action, authSynopsis)
	roleName := fs.String("role", "viewer", "role of the new user or token: viewer, analyst, engineer or admin")
	cfg, err := load(fs, loader, e, rest)
	if err != nil {
		return err
	}
	path := cfg.UsersPath()
	f, err := auth.ReadFile(path)
	if err != nil {
		return err
	}
	switch action {
	case "list":
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tKIND\tROLE\tCREATED (UTC)")
		for kind, list := range [][]auth.Entry{f.Users, f.Tokens} {
			for _, en := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", en.Name, []string{"user", "token"}[kind], en.Role, en.Created.UTC().Format(time.DateTime))
			}
		}
		fmt.Fprintf(tw, "(%d users, %d tokens in %s)\n", len(f.Users), len(f.Tokens), path)
		return tw.Flush()
	case "remove":
		if !f.Remove(name) {
			return fmt.Errorf("no user or token %q in %s (gridlake auth list)", name, path)
		}
		if err := auth.WriteFile(path, f); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "removed %s from %s; running processes drop it within seconds\n", name, path)
		return nil
	}
	role, err := auth.ParseRole(*roleName)
	if err != nil {
		return fmt.Errorf("%w: --role: %v", errUsage, err)
	}
	kind, secret := "token", ""
	if action == "add-user" {
		kind, secret = "user", newPassword()
	} else if secret, err = auth.NewToken(name); err != nil {
		return err
	}
	entry, err := auth.NewEntry(name, role, secret, time.Now())
	if err != nil {
		return err
	}
	replaced := f.Remove(name)
	f.Put(kind, entry)
	if err := auth.WriteFile(path, f); err != nil {
		return err
	}
	verb := "created"
	if replaced {
		verb = "replaced"
	}
	fmt.Fprintf(e.stderr, "%s %s %s (role %s) in %s; it is shown once, store it now:\n", verb, kind, name, role, path)
	fmt.Fprintln(e.stdout, secret)
	return nil
}

// newPassword is 20 random base32 characters (100 bits), easy to type.
func newPassword() string {
	b := make([]byte, 13)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))[:20]
}
