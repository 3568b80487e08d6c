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
// once. Sign-out revokes a cookie until it would have expired.
type Sessions struct {
	key []byte
	ttl time.Duration
	dir interface {
		Lookup(name string) (Principal, bool)
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
	exp := s.now().Add(s.ttl).Truncate(time.Second)
	body := strings.Join([]string{p.Name, p.Kind, strconv.FormatInt(exp.Unix(), 10), b64url.EncodeToString(nonce)}, "|")
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
	nonce, name, err := s.open(value)
	if err != nil {
		return Principal{}, err
	}
	s.mu.Lock()
	_, gone := s.revoked[nonce]
	s.mu.Unlock()
	if gone {
		return Principal{}, errSession
	}
	p, ok := s.dir.Lookup(name)
	if !ok {
		return Principal{}, errSession
	}
	return p, nil
}

// open checks the signature and expiry and returns the nonce and name.
func (s *Sessions) open(value string) (nonce, name string, err error) {
	if len(value) > maxCookieLen {
		return "", "", errSession
	}
	b, sig, ok := strings.Cut(value, ".")
	if !ok {
		return "", "", errSession
	}
	body, err1 := b64url.DecodeString(b)
	mac, err2 := b64url.DecodeString(sig)
	if err1 != nil || err2 != nil || !hmac.Equal(mac, s.sign(string(body))) {
		return "", "", errSession
	}
	f := strings.Split(string(body), "|")
	if len(f) != 4 {
		return "", "", errSession
	}
	exp, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil || !s.now().Before(time.Unix(exp, 0)) {
		return "", "", errSession
	}
	return f[3], f[0], nil
}

// Revoke ends a session (sign-out). An invalid value is ignored.
func (s *Sessions) Revoke(value string) {
	nonce, _, err := s.open(value)
	if err != nil {
		return
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.revoked) >= maxRevoked {
		for n, exp := range s.revoked {
			if now.After(exp) {
				delete(s.revoked, n)
			}
		}
	}
	if len(s.revoked) < maxRevoked {
		s.revoked[nonce] = now.Add(s.ttl)
	}
}
