package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2id parameters: OWASP's minimum (19 MiB, 2 passes, 1 lane). A
// verification costs ~19 MiB and tens of milliseconds, so callers bound how
// many run at once (Directory does) and cache successes.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024 // KiB
	argonThreads = 1
	argonKeyLen  = 32
	saltLen      = 16
)

// b64 is the unpadded standard base64 of PHC strings.
var b64 = base64.RawStdEncoding

// HashSecret returns the argon2id PHC string of secret with a fresh salt:
// $argon2id$v=19$m=19456,t=2,p=1$SALT$HASH.
func HashSecret(secret string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash secret: %w", err)
	}
	key := argon2.IDKey([]byte(secret), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// argonHash is a parsed PHC string.
type argonHash struct {
	memory  uint32
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

// parseHash reads a PHC string written by HashSecret, with bounded
// parameters so a hostile users file cannot make one check cost gigabytes.
func parseHash(phc string) (argonHash, error) {
	var h argonHash
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return h, errors.New("not an argon2id hash ($argon2id$v=19$m=...,t=...,p=...$salt$hash)")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return h, fmt.Errorf("argon2 version %q is not v=%d", parts[2], argon2.Version)
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &h.memory, &h.time, &h.threads); err != nil {
		return h, fmt.Errorf("argon2 parameters %q: %w", parts[3], err)
	}
	if h.memory < 8 || h.memory > 256*1024 || h.time < 1 || h.time > 16 || h.threads < 1 || h.threads > 8 {
		return h, fmt.Errorf("argon2 parameters %q out of bounds (m<=262144, t<=16, p<=8)", parts[3])
	}
	var err error
	if h.salt, err = b64.DecodeString(parts[4]); err != nil || len(h.salt) < 8 || len(h.salt) > 64 {
		return h, errors.New("argon2 salt is not 8-64 bytes of base64")
	}
	if h.key, err = b64.DecodeString(parts[5]); err != nil || len(h.key) < 16 || len(h.key) > 64 {
		return h, errors.New("argon2 hash is not 16-64 bytes of base64")
	}
	return h, nil
}

// verify reports whether secret matches h, comparing in constant time.
func (h argonHash) verify(secret string) bool {
	key := argon2.IDKey([]byte(secret), h.salt, h.time, h.memory, h.threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(key, h.key) == 1
}
