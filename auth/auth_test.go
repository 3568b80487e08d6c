package auth

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestHashSecret_VerifiesOnlyTheSecret(t *testing.T) {
	h, err := HashSecret("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	ph, err := parseHash(h)
	if err != nil {
		t.Fatal(err)
	}
	if !ph.verify("correct horse") || ph.verify("correct horsE") || ph.verify("") {
		t.Fatal("argon2id hash must accept exactly its secret")
	}
	h2, _ := HashSecret("correct horse")
	if h2 == h {
		t.Fatal("two hashes of one secret must differ by salt")
	}
}

func TestParseHash_RefusesHostileParameters(t *testing.T) {
	for _, bad := range []string{
		"", "plain", "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", // 4 GiB
		"$argon2id$v=19$m=19456,t=99,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=19456,t=2,p=1$$aGFzaGhhc2hoYXNoaGFzaA",
	} {
		if _, err := parseHash(bad); err == nil {
			t.Errorf("parseHash(%q) accepted", bad)
		}
	}
}

// The verifier must match what a SCRAM client computes: RFC 7677's test
// vector (user "user", password "pencil").
func TestDeriveVerifier_RFC7677(t *testing.T) {
	salt := mustB64(t, "W22ZaJ0SNY7soEsUEjb6gQ==")
	v, err := DeriveVerifier("pencil", salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	// ServerSignature of the RFC's exchange is HMAC(ServerKey, AuthMessage).
	auth := "n=user,r=rOprNGfwEbeRWgbNEkqO,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
	if got := b64std(HMAC(v.ServerKey, auth)); got != "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=" {
		t.Fatalf("server signature %s, want the RFC's", got)
	}
	back, err := ParseVerifier(v.String())
	if err != nil || b64std(back.StoredKey) != b64std(v.StoredKey) || back.Iterations != 4096 {
		t.Fatalf("verifier does not round-trip: %v", err)
	}
}

func TestToken_NameAndShape(t *testing.T) {
	tok, err := NewToken("grafana-ro")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, "gl_grafana-ro.") || len(tok) != len("gl_grafana-ro.")+52 {
		t.Fatalf("token %q", tok)
	}
	if n, err := TokenName(tok); err != nil || n != "grafana-ro" {
		t.Fatalf("TokenName = %q, %v", n, err)
	}
	for _, bad := range []string{"", "gl_", "gl_x", "gl_.abc", "gl_UPPER.abc", "xx_name.abc", "gl_name.", "gl_" + strings.Repeat("a", 300) + ".x"} {
		if _, err := TokenName(bad); err == nil {
			t.Errorf("TokenName(%q) accepted", bad)
		}
	}
	if _, err := NewToken("Bad Name"); err == nil {
		t.Error("NewToken accepted a bad name")
	}
}

func writeUsers(t *testing.T, path string, f File) {
	t.Helper()
	if err := WriteFile(path, f); err != nil {
		t.Fatal(err)
	}
}

func TestDirectory_TokensPasswordsRolesAndReload(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "users.yaml")
	tok, _ := NewToken("ci")
	var f File
	te, _ := NewEntry("ci", Engineer, tok, now)
	ue, _ := NewEntry("alice", Analyst, "alice-password", now)
	f.Put("token", te)
	f.Put("user", ue)
	writeUsers(t, path, f)

	demoTok, demo, err := DemoToken(t.TempDir(), now)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Open(path, Options{Demo: []Entry{demo}})
	if err != nil {
		t.Fatal(err)
	}
	if !d.Configured() {
		t.Fatal("a users file with entries is configured")
	}
	if p, err := d.Token(ctx, tok); err != nil || p.Role != Engineer || p.String() != "token:ci" {
		t.Fatalf("token: %v %v", p, err)
	}
	if p, err := d.Token(ctx, demoTok); err != nil || p.Role != Admin {
		t.Fatalf("demo token: %v %v", p, err)
	}
	if _, err := d.Token(ctx, tok[:len(tok)-1]+"a"); !errors.Is(err, ErrUnauthenticated) && tok[len(tok)-1] != 'a' {
		t.Fatalf("a changed token must be refused, got %v", err)
	}
	if _, err := d.Token(ctx, "gl_alice.alice-password"); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("a user's password is not a token: %v", err)
	}
	if p, err := d.Password(ctx, "alice", "alice-password"); err != nil || p.Role != Analyst || p.Kind != "user" {
		t.Fatalf("password: %v %v", p, err)
	}
	if p, err := d.Password(ctx, "ci", tok); err != nil || p.Role != Engineer {
		t.Fatalf("a token is the password of its name: %v %v", p, err)
	}
	if _, err := d.Password(ctx, "alice", "wrong"); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("wrong password: %v", err)
	}
	if v, p, ok := d.SCRAM("alice"); !ok || p.Role != Analyst || v.Iterations != SCRAMIterations {
		t.Fatal("SCRAM verifier of alice")
	}

	// Removing the token takes effect on reload, cached check or not.
	f.Remove("ci")
	writeUsers(t, path, f)
	future := time.Now().Add(time.Minute)
	if err := os.Chtimes(path, future, future); err != nil {
		t.Fatal(err)
	}
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Token(ctx, tok); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("removed token still accepted: %v", err)
	}
}

func TestDirectory_DemoAloneIsNotConfigured(t *testing.T) {
	_, demo, err := DemoToken(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	d, err := Open(filepath.Join(t.TempDir(), "missing.yaml"), Options{Demo: []Entry{demo}})
	if err != nil {
		t.Fatal(err)
	}
	if d.Configured() {
		t.Fatal("the demo token must not count as configured users")
	}
	err = CheckBind(d.Configured(), map[string]string{"http.addr": "0.0.0.0:8080", "serve.pg_addr": "127.0.0.1:15432"})
	if err == nil || !strings.Contains(err.Error(), "http.addr=0.0.0.0:8080") || strings.Contains(err.Error(), "pg_addr") {
		t.Fatalf("CheckBind = %v", err)
	}
	if err := CheckBind(false, map[string]string{"http.addr": "localhost:1", "b": "[::1]:2", "c": ""}); err != nil {
		t.Fatal(err)
	}
	if err := CheckBind(false, map[string]string{"http.addr": ":8080"}); err == nil {
		t.Fatal(":8080 listens everywhere and must be refused")
	}
	if err := CheckBind(true, map[string]string{"http.addr": ":8080"}); err != nil {
		t.Fatal(err)
	}
}

func TestDemoToken_KeptAcrossStarts(t *testing.T) {
	dir := t.TempDir()
	a, _, err := DemoToken(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := DemoToken(dir, time.Now())
	if err != nil || a != b {
		t.Fatalf("demo token changed across starts: %q %q %v", a, b, err)
	}
	st, err := os.Stat(filepath.Join(dir, "auth", "demo-token"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("demo token file mode %v %v", st.Mode(), err)
	}
}

func TestDirectory_DuplicateNameRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.yaml")
	e, _ := NewEntry("bob", Viewer, "bob-password", time.Now())
	writeUsers(t, path, File{Users: []Entry{e}, Tokens: []Entry{e}})
	if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "used twice") {
		t.Fatalf("Open = %v", err)
	}
}

func TestSessions_SignedExpiringRevocable(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	path := filepath.Join(t.TempDir(), "users.yaml")
	e, _ := NewEntry("vera", Viewer, "vera-password", now)
	writeUsers(t, path, File{Users: []Entry{e}})
	d, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSessions([]byte("0123456789abcdef0123456789abcdef"), time.Hour, d, clock)
	if err != nil {
		t.Fatal(err)
	}
	v, exp, err := s.Issue(Principal{Name: "vera", Role: Viewer, Kind: "user"})
	if err != nil || !exp.Equal(now.Add(time.Hour)) {
		t.Fatal(err, exp)
	}
	if p, err := s.Check(v); err != nil || p.Role != Viewer {
		t.Fatalf("fresh session: %v %v", p, err)
	}
	// Claiming another name breaks the signature.
	forged := b64url.EncodeToString([]byte("root|user|9999999999|AAAA")) + v[strings.Index(v, "."):]
	if _, err := s.Check(forged); err == nil {
		t.Fatal("forged session accepted")
	}
	other, _ := NewSessions([]byte("another secret of thirty-two b!"), time.Hour, d, clock)
	if _, err := other.Check(v); err == nil {
		t.Fatal("a session signed with another secret was accepted")
	}
	now = now.Add(time.Hour)
	if _, err := s.Check(v); err == nil {
		t.Fatal("expired session accepted")
	}
	now = now.Add(-30 * time.Minute)
	s.Revoke(v)
	if _, err := s.Check(v); err == nil {
		t.Fatal("signed-out session accepted")
	}
}
