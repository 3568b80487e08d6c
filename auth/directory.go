package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// ErrUnauthenticated means the caller presented no valid credentials. Its
// text never says whether the name or the secret was wrong.
var ErrUnauthenticated = errors.New("invalid credentials")

// Directory answers who a caller is: it holds the users file's entries
// (reloaded when the file changes) and the demo token, verifies passwords
// and tokens against their argon2id hashes, and hands the PostgreSQL port
// its SCRAM verifiers.
type Directory struct {
	path string
	demo []*credential
	now  func() time.Time
	snap atomic.Pointer[snapshot]
	// sem bounds concurrent argon2id checks: each costs ~19 MiB, so a
	// flood of wrong secrets queues here instead of exhausting memory.
	sem chan struct{}
	// maxWait bounds the wait for a check slot: past it the caller gets
	// ErrBusy (503) instead of queueing behind a flood.
	maxWait time.Duration
	// dummy is checked for unknown names, so a miss costs what a wrong
	// password costs and timing does not tell which names exist.
	dummy argonHash

	mu      sync.Mutex
	stat    fileStamp
	cache   map[[32]byte]cached // successful checks, so Bearer costs a hash once
	maxKeep int
	ttl     time.Duration
}

type credential struct {
	p     Principal
	hash  argonHash
	scram Verifier
	// fp identifies this secret: a session signed in with it ends when
	// the password or token is replaced.
	fp []byte
}

type snapshot struct {
	byName     map[string]*credential
	configured bool
}

type cached struct {
	p       Principal
	expires time.Time
}

type fileStamp struct {
	info os.FileInfo // for os.SameFile: a rename over the file is a change
	mod  time.Time
	size int64
}

func (a fileStamp) same(b fileStamp) bool {
	if a.info == nil || b.info == nil {
		return a.info == nil && b.info == nil
	}
	return os.SameFile(a.info, b.info) && a.mod.Equal(b.mod) && a.size == b.size
}

// ErrBusy means too many credential checks are running: try again shortly.
var ErrBusy = errors.New("too many sign-ins at once: try again in a few seconds")

// Options configure a Directory.
type Options struct {
	// Demo are extra tokens that do not count as configured users: the
	// local demo token of `gridlake up` (see DemoToken).
	Demo []Entry
	// MaxConcurrentChecks bounds argon2id checks running at once (default 2).
	MaxConcurrentChecks int
	// MaxWait bounds how long a check waits for a slot (default 5s).
	MaxWait time.Duration
	// CacheTTL is how long a verified secret is trusted without re-hashing
	// (default 5m); the cache is dropped whenever the users file changes.
	CacheTTL time.Duration
	Now      func() time.Time
}

// Open loads the users file at path (missing: no users) and the demo
// entries.
func Open(path string, o Options) (*Directory, error) {
	if o.MaxConcurrentChecks <= 0 {
		o.MaxConcurrentChecks = 2
	}
	if o.CacheTTL <= 0 {
		o.CacheTTL = 5 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 5 * time.Second
	}
	dummy, err := HashSecret(string(rand.Text()))
	if err != nil {
		return nil, err
	}
	d := &Directory{path: path, now: o.Now, sem: make(chan struct{}, o.MaxConcurrentChecks), maxWait: o.MaxWait,
		ttl: o.CacheTTL, maxKeep: 10_000}
	if d.dummy, err = parseHash(dummy); err != nil {
		return nil, err
	}
	for _, e := range o.Demo {
		c, err := parseEntry(e, "token")
		if err != nil {
			return nil, fmt.Errorf("demo token: %w", err)
		}
		d.demo = append(d.demo, c)
	}
	if err := d.Reload(); err != nil {
		return nil, err
	}
	return d, nil
}

func parseEntry(e Entry, kind string) (*credential, error) {
	if !ValidName(e.Name) {
		return nil, fmt.Errorf("name %q: use 1-64 of a-z, 0-9, _ and -", e.Name)
	}
	r, err := ParseRole(e.Role)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", kind, e.Name, err)
	}
	h, err := parseHash(e.Hash)
	if err != nil {
		return nil, fmt.Errorf("%s %s: hash: %w", kind, e.Name, err)
	}
	v, err := ParseVerifier(e.SCRAM)
	if err != nil {
		return nil, fmt.Errorf("%s %s: scram: %w", kind, e.Name, err)
	}
	fp := sha256.Sum256([]byte(e.Hash))
	return &credential{p: Principal{Name: e.Name, Role: r, Kind: kind}, hash: h, scram: v, fp: fp[:16]}, nil
}

// Reload reads the users file again if it changed since the last load. A
// broken file keeps the previous entries and returns the error.
func (d *Directory) Reload() error {
	var stamp fileStamp
	if d.path != "" {
		if st, err := os.Stat(d.path); err == nil {
			stamp = fileStamp{st, st.ModTime(), st.Size()}
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("users file: %w", err)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.snap.Load() != nil && stamp.same(d.stat) {
		return nil
	}
	var f File
	if d.path != "" {
		var err error
		if f, err = ReadFile(d.path); err != nil {
			return err
		}
	}
	s := &snapshot{byName: map[string]*credential{}}
	add := func(c *credential) error {
		if _, dup := s.byName[c.p.Name]; dup {
			return fmt.Errorf("users file %s: name %q is used twice (names are unique across users and tokens)", d.path, c.p.Name)
		}
		s.byName[c.p.Name] = c
		return nil
	}
	for kind, list := range map[string][]Entry{"user": f.Users, "token": f.Tokens} {
		for _, e := range list {
			c, err := parseEntry(e, kind)
			if err != nil {
				return fmt.Errorf("users file %s: %w", d.path, err)
			}
			if err := add(c); err != nil {
				return err
			}
			s.configured = true
		}
	}
	for _, c := range d.demo {
		if err := add(c); err != nil {
			return err
		}
	}
	d.snap.Store(s)
	d.stat = stamp
	d.cache = map[[32]byte]cached{}
	return nil
}

// Watch reloads the users file every interval until ctx ends, so `gridlake
// auth` changes reach running processes; a broken file is reported to
// onErr and the previous entries stay.
func (d *Directory) Watch(ctx context.Context, every time.Duration, onErr func(error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := d.Reload(); err != nil && onErr != nil {
				onErr(err)
			}
		}
	}
}

// Configured reports whether the users file holds any user or token. The
// demo token does not count: without configured users a process binds
// loopback only (CheckBind).
func (d *Directory) Configured() bool { return d.snap.Load().configured }

// Lookup returns the current principal called name, if it still exists.
func (d *Directory) Lookup(name string) (Principal, bool) {
	c, ok := d.snap.Load().byName[name]
	if !ok {
		return Principal{}, false
	}
	return c.p, true
}

// Session returns the current principal called name and the fingerprint
// of its secret, so a session ends when the secret is replaced.
func (d *Directory) Session(name string) (Principal, []byte, bool) {
	c, ok := d.snap.Load().byName[name]
	if !ok {
		return Principal{}, nil, false
	}
	return c.p, c.fp, true
}

// SCRAM returns the SCRAM-SHA-256 verifier and principal of name.
func (d *Directory) SCRAM(name string) (Verifier, Principal, bool) {
	c, ok := d.snap.Load().byName[name]
	if !ok {
		return Verifier{}, Principal{}, false
	}
	return c.scram, c.p, true
}

// Token checks an API token (gl_<name>.<secret>) and returns its principal.
func (d *Directory) Token(ctx context.Context, token string) (Principal, error) {
	name, err := TokenName(token)
	if err != nil {
		return Principal{}, err
	}
	return d.check(ctx, name, token, "token")
}

// Password checks a user's password, or a token given as the password of
// its name, and returns the principal.
func (d *Directory) Password(ctx context.Context, name, secret string) (Principal, error) {
	if !ValidName(name) || len(secret) > maxTokenLen {
		return Principal{}, ErrUnauthenticated
	}
	return d.check(ctx, name, secret, "")
}

func (d *Directory) check(ctx context.Context, name, secret, kind string) (Principal, error) {
	c, ok := d.snap.Load().byName[name]
	known := ok && (kind == "" || c.p.Kind == kind)
	key := sha256.Sum256([]byte(name + "\x00" + secret))
	now := d.now()
	if known {
		d.mu.Lock()
		hit, ok := d.cache[key]
		if ok && now.Before(hit.expires) {
			// Sliding: a token in steady use is not re-hashed every TTL.
			hit.expires = now.Add(d.ttl)
			d.cache[key] = hit
		}
		d.mu.Unlock()
		if ok && now.Before(hit.expires) {
			return hit.p, nil
		}
	}
	wait := time.NewTimer(d.maxWait)
	defer wait.Stop()
	select {
	case d.sem <- struct{}{}:
	case <-wait.C:
		return Principal{}, ErrBusy
	case <-ctx.Done():
		return Principal{}, fmt.Errorf("check credentials: %w", ctx.Err())
	}
	h := d.dummy
	if known {
		h = c.hash
	}
	good := h.verify(secret) && known
	<-d.sem
	if !good {
		return Principal{}, ErrUnauthenticated
	}
	d.mu.Lock()
	if len(d.cache) >= d.maxKeep {
		clear(d.cache)
	}
	d.cache[key] = cached{p: c.p, expires: now.Add(d.ttl)}
	d.mu.Unlock()
	return c.p, nil
}
