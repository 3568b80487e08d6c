package auth

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"gopkg.in/yaml.v3"
)

// Entry is one user or API token as the users file keeps it: hashes only.
type Entry struct {
	Name string `yaml:"name"`
	Role string `yaml:"role"`
	// Hash is the argon2id hash of the password or token (HashSecret).
	Hash string `yaml:"hash"`
	// SCRAM is the SCRAM-SHA-256 verifier of the same secret, for the
	// PostgreSQL port (psql -U NAME with the password or token).
	SCRAM   string    `yaml:"scram"`
	Created time.Time `yaml:"created"`
}

// File is the users file: YAML written by `gridlake auth`, read by every
// process that answers clients (auth.users_file).
type File struct {
	Users  []Entry `yaml:"users"`
	Tokens []Entry `yaml:"tokens"`
}

// maxFileBytes bounds the users file before it is parsed.
const maxFileBytes = 4 << 20

// NewEntry hashes secret for name and role.
func NewEntry(name string, role Role, secret string, now time.Time) (Entry, error) {
	if !ValidName(name) {
		return Entry{}, fmt.Errorf("name %q: use 1-64 of a-z, 0-9, _ and -", name)
	}
	h, err := HashSecret(secret)
	if err != nil {
		return Entry{}, err
	}
	v, err := NewVerifier(secret)
	if err != nil {
		return Entry{}, err
	}
	return Entry{Name: name, Role: role.String(), Hash: h, SCRAM: v.String(), Created: now.UTC().Truncate(time.Second)}, nil
}

// ReadFile reads a users file; a missing file is an empty one.
func ReadFile(path string) (File, error) {
	var f File
	fh, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return f, fmt.Errorf("read users file: %w", err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxFileBytes+1))
	if err != nil {
		return f, fmt.Errorf("read users file %s: %w", path, err)
	}
	if len(data) > maxFileBytes {
		return f, fmt.Errorf("users file %s is larger than %d bytes", path, maxFileBytes)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return f, fmt.Errorf("parse users file %s: %w", path, err)
	}
	return f, nil
}

// WriteFile replaces the users file atomically (rename), keeping its mode;
// a new file is readable by its owner only. The rename gives the file a
// new inode: mount its folder, not the file, into a container.
func WriteFile(path string, f File) error {
	data, err := yaml.Marshal(f)
	if err != nil {
		return fmt.Errorf("encode users file: %w", err)
	}
	data = append([]byte("# gridlake users and API tokens: hashes only, written by `gridlake auth`.\n"), data...)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write users file: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".users-*.yaml")
	if err != nil {
		return fmt.Errorf("write users file: %w", err)
	}
	defer os.Remove(tmp.Name())
	// Keep the mode an operator gave the file (a container's user may need
	// to read it); a new file is its owner's only.
	mode := os.FileMode(0o600)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write users file %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write users file %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write users file %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write users file %s: %w", path, err)
	}
	return nil
}

// Put adds e as a user (kind "user") or a token, replacing one of the same
// name. Names are unique across users and tokens: a name is also a
// PostgreSQL user.
func (f *File) Put(kind string, e Entry) {
	f.Remove(e.Name)
	if kind == "user" {
		f.Users = append(f.Users, e)
	} else {
		f.Tokens = append(f.Tokens, e)
	}
}

// Remove deletes the user or token called name and reports whether it was there.
func (f *File) Remove(name string) bool {
	found := false
	keep := func(in []Entry) []Entry {
		out := in[:0]
		for _, e := range in {
			if e.Name == name {
				found = true
				continue
			}
			out = append(out, e)
		}
		return out
	}
	f.Users, f.Tokens = keep(f.Users), keep(f.Tokens)
	return found
}
