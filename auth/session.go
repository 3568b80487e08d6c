package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Sessions issues and checks the dashboard's session cookies. A cookie is
// self-contained and signed (HMAC-SHA-256 with auth.session_secret), so
// any serving replica with the same secret accepts it; the role is read
// from the Directory at each check, so a removed user's session ends at
// once, and the cookie carries a fingerprint of the secret it was signed
// in with, so replacing a password or token ends its sessions too.
// Sign-out revokes a cookie until it would have expired.
type Sessions struct {
	key []byte
	ttl time.Duration
	dir interface {
		Session(name string) (Principal, []byte, bool)
	}
	now func() time.Time

	mu      sync.Mutex
	revoked map[string]time.Time // nonce -> expiry
}

// maxRevoked bounds the sign-out list; past it, expired entries are dropped.
const maxRevoked = 100_000

// NewSessions makes a session issuer. An empty secret picks a random one:
// sessions then last as long as the process and are not shared across
// replicas.
func NewSessions(secret []byte, ttl time.Duration, dir *Directory, now func() time.Time) (*Sessions, error) {
	if len(secret) == 0 {
		secret = make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return nil, fmt.Errorf("session secret: %w", err)
		}
	}
	if now == nil {
		now = time.Now
	}
	return &Sessions{key: secret, ttl: ttl, dir: dir, now: now, revoked: map[string]time.Time{}}, nil
}

// TTL is how long an issued session lasts.
func (s *Sessions) TTL() time.Duration { return s.ttl }

var b64url = base64.RawURLEncoding

// Issue returns a cookie value for p and its expiry.
func (s *Sessions) Issue(p Principal) (string, time.Time, error) {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return "", time.Time{}, fmt.Errorf("session nonce: %w", err)
	}
	cur, fp, ok := s.dir.Session(p.Name)
	if !ok || cur.Kind != p.Kind {
		return "", time.Time{}, errSession
	}
	exp := s.now().Add(s.ttl).Truncate(time.Second)
	body := strings.Join([]string{p.Name, p.Kind, strconv.FormatInt(exp.Unix(), 10), b64url.EncodeToString(nonce), b64url.EncodeToString(fp)}, "|")
	return b64url.EncodeToString([]byte(body)) + "." + b64url.EncodeToString(s.sign(body)), exp, nil
}

func (s *Sessions) sign(body string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte("gridlake-session\x00" + body))
	return m.Sum(nil)
}

var errSession = errors.New("session expired or invalid: sign in again")

// maxCookieLen bounds a presented cookie before it is decoded.
const maxCookieLen = 512

// Check verifies a cookie value and returns its principal with the role it
// has now.
func (s *Sessions) Check(value string) (Principal, error) {
	f, err := s.open(value)
	if err != nil {
		return Principal{}, err
	}
	s.mu.Lock()
	_, gone := s.revoked[f.nonce]
	s.mu.Unlock()
	if gone {
		return Principal{}, errSession
	}
	p, fp, ok := s.dir.Session(f.name)
	if !ok || p.Kind != f.kind || !hmac.Equal(fp, f.fp) {
		return Principal{}, errSession
	}
	return p, nil
}

type sessionFields struct {
	name, kind, nonce string
	fp                []byte
}

// open checks the signature and expiry and returns the cookie's fields.
func (s *Sessions) open(value string) (sessionFields, error) {
	var f sessionFields
	if len(value) > maxCookieLen {
		return f, errSession
	}
	b, sig, ok := strings.Cut(value, ".")
	if !ok {
		return f, errSession
	}
	body, err1 := b64url.DecodeString(b)
	mac, err2 := b64url.DecodeString(sig)
	if err1 != nil || err2 != nil || !hmac.Equal(mac, s.sign(string(body))) {
		return f, errSession
	}
	parts := strings.Split(string(body), "|")
	if len(parts) != 5 {
		return f, errSession
	}
	exp, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || !s.now().Before(time.Unix(exp, 0)) {
		return f, errSession
	}
	fp, err := b64url.DecodeString(parts[4])
	if err != nil {
		return f, errSession
	}
	return sessionFields{name: parts[0], kind: parts[1], nonce: parts[3], fp: fp}, nil
}

// Revoke ends a session (sign-out). An invalid value is ignored. The
// list is bounded: when full of unexpired entries, the one closest to its
// expiry gives way (it would have ended soonest anyway).
func (s *Sessions) Revoke(value string) {
	f, err := s.open(value)
	if err != nil {
		return
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.revoked) >= maxRevoked {
		var first string
		var firstExp time.Time
		for n, exp := range s.revoked {
			if now.After(exp) {
				delete(s.revoked, n)
			} else if first == "" || exp.Before(firstExp) {
				first, firstExp = n, exp
			}
		}
		if len(s.revoked) >= maxRevoked {
			delete(s.revoked, first)
		}
	}
	s.revoked[f.nonce] = now.Add(s.ttl)
}
