package auth

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// SCRAMIterations is PostgreSQL's default for SCRAM-SHA-256 verifiers.
const SCRAMIterations = 4096

// Verifier is what the server keeps to check a SCRAM-SHA-256 login (RFC
// 5802, 7677) without knowing the password: the salt, iteration count,
// StoredKey = H(ClientKey) and ServerKey. It is written in PostgreSQL's
// pg_authid format: SCRAM-SHA-256$4096:SALT$STOREDKEY:SERVERKEY.
type Verifier struct {
	Salt       []byte
	Iterations int
	StoredKey  []byte
	ServerKey  []byte
}

// NewVerifier derives a verifier of password with a fresh salt.
func NewVerifier(password string) (Verifier, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return Verifier{}, fmt.Errorf("scram salt: %w", err)
	}
	return DeriveVerifier(password, salt, SCRAMIterations)
}

// DeriveVerifier derives the verifier of password for a given salt.
func DeriveVerifier(password string, salt []byte, iterations int) (Verifier, error) {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return Verifier{}, fmt.Errorf("scram salted password: %w", err)
	}
	clientKey := HMAC(salted, "Client Key")
	stored := sha256.Sum256(clientKey)
	return Verifier{Salt: salt, Iterations: iterations, StoredKey: stored[:], ServerKey: HMAC(salted, "Server Key")}, nil
}

// HMAC is HMAC-SHA-256(key, msg), the primitive SCRAM is built from.
func HMAC(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func (v Verifier) String() string {
	e := base64.StdEncoding
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", v.Iterations, e.EncodeToString(v.Salt), e.EncodeToString(v.StoredKey), e.EncodeToString(v.ServerKey))
}

// ParseVerifier reads the pg_authid format String writes.
func ParseVerifier(s string) (Verifier, error) {
	var v Verifier
	rest, ok := strings.CutPrefix(s, "SCRAM-SHA-256$")
	if !ok {
		return v, errors.New("not a SCRAM-SHA-256 verifier (SCRAM-SHA-256$4096:salt$storedkey:serverkey)")
	}
	iterSalt, keys, ok := strings.Cut(rest, "$")
	iter, salt, ok2 := strings.Cut(iterSalt, ":")
	stored, server, ok3 := strings.Cut(keys, ":")
	if !ok || !ok2 || !ok3 {
		return v, errors.New("SCRAM verifier needs iterations:salt$storedkey:serverkey")
	}
	n, err := strconv.Atoi(iter)
	if err != nil || n < 1000 || n > 1_000_000 {
		return v, fmt.Errorf("SCRAM iterations %q must be 1000..1000000", iter)
	}
	v.Iterations = n
	e := base64.StdEncoding
	if v.Salt, err = e.DecodeString(salt); err != nil || len(v.Salt) < 8 || len(v.Salt) > 64 {
		return v, errors.New("SCRAM salt is not 8-64 bytes of base64")
	}
	if v.StoredKey, err = e.DecodeString(stored); err != nil || len(v.StoredKey) != sha256.Size {
		return v, errors.New("SCRAM stored key is not 32 bytes of base64")
	}
	if v.ServerKey, err = e.DecodeString(server); err != nil || len(v.ServerKey) != sha256.Size {
		return v, errors.New("SCRAM server key is not 32 bytes of base64")
	}
	return v, nil
}
