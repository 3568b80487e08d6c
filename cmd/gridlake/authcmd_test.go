package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gridlake/gridlake/auth"
)

func runWith(t *testing.T, vars map[string]string, args ...string) (string, string, error) {
	t.Helper()
	var out, errs bytes.Buffer
	e := &env{stdout: &out, stderr: &errs, getenv: func(k string) string { return vars[k] }}
	err := run(context.Background(), e, args)
	return out.String(), errs.String(), err
}

// The secret printed once must be the one the directory accepts, with the
// role asked for; removal must revoke it.
func TestAuthCommand_AddTokenUserListRemove(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "users.yaml")
	env := map[string]string{"GRIDLAKE_AUTH_USERS_FILE": path}
	tok, _, err := runWith(t, env, "auth", "add-token", "ci", "--role", "engineer")
	if err != nil {
		t.Fatal(err)
	}
	tok = strings.TrimSpace(tok)
	pw, _, err := runWith(t, env, "auth", "add-user", "alice", "--role", "analyst")
	if err != nil {
		t.Fatal(err)
	}
	pw = strings.TrimSpace(pw)
	raw, _ := os.ReadFile(path)
	if bytes.Contains(raw, []byte(tok)) || bytes.Contains(raw, []byte(pw)) || len(pw) < 16 {
		t.Fatal("the users file must hold hashes only, never the secret")
	}
	d, err := auth.Open(path, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := d.Token(ctx, tok); err != nil || p.Role != auth.Engineer {
		t.Fatalf("printed token: %v %v", p, err)
	}
	if p, err := d.Password(ctx, "alice", pw); err != nil || p.Role != auth.Analyst {
		t.Fatalf("printed password: %v %v", p, err)
	}
	list, _, err := runWith(t, env, "auth", "list")
	if err != nil || !strings.Contains(list, "alice  user   analyst") || !strings.Contains(list, "ci     token  engineer") {
		t.Fatalf("list:\n%s %v", list, err)
	}
	if _, _, err := runWith(t, env, "auth", "remove", "ci"); err != nil {
		t.Fatal(err)
	}
	d, _ = auth.Open(path, auth.Options{})
	if _, err := d.Token(ctx, tok); err == nil {
		t.Fatal("removed token still valid")
	}
	if _, _, err := runWith(t, env, "auth", "add-token", "x", "--role", "root"); err == nil || exitCode(err) != 2 {
		t.Fatalf("unknown role: %v", err)
	}
}

// --help explains on stdout and exits 0, for every command.
func TestHelp_EveryCommandExitsZeroOnStdout(t *testing.T) {
	for name := range commands() {
		out, _, err := runWith(t, nil, name, "--help")
		if err != nil && !errors.Is(err, flag.ErrHelp) {
			t.Errorf("%s --help: %v", name, err)
		}
		if exitCode(err) != 0 && err != nil {
			t.Errorf("%s --help exits %d", name, exitCode(err))
		}
		if !strings.Contains(out, "gridlake") || len(out) < 200 {
			t.Errorf("%s --help printed %d bytes to stdout", name, len(out))
		}
	}
}

func TestSecretFlags_Refused(t *testing.T) {
	_, errs, err := runWith(t, nil, "serve", "--s3-secret-key", "visible-in-ps")
	if err == nil || !strings.Contains(errs, "s3-secret-key") {
		t.Fatalf("a secret flag must be refused: %v %s", err, errs)
	}
}
