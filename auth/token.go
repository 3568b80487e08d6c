package auth

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
)

// TokenPrefix starts every API token, so secret scanners and people can
// recognise one: gl_<name>.<secret>.
const TokenPrefix = "gl_"

// maxTokenLen bounds a presented token before any work is done for it.
const maxTokenLen = 256

var tokenEnc = base32.StdEncoding.WithPadding(base32.NoPadding)

// ValidName reports whether name may name a user or token: 1-64 of a-z,
// 0-9, '_' and '-', starting with a letter or digit. The same name is the
// PostgreSQL user name, so it stays plain.
func ValidName(name string) bool {
	if len(name) == 0 || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// NewToken returns a fresh API token for name: gl_<name>.<52 base32
// characters of 32 random bytes>.
func NewToken(name string) (string, error) {
	if !ValidName(name) {
		return "", fmt.Errorf("token name %q: use 1-64 of a-z, 0-9, _ and -", name)
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return "", fmt.Errorf("new token: %w", err)
	}
	return TokenPrefix + name + "." + strings.ToLower(tokenEnc.EncodeToString(secret)), nil
}

// errMalformedToken is what a caller sees for anything that is not a token.
var errMalformedToken = errors.New("not a gridlake token (gl_<name>.<secret>)")

// TokenName returns the name inside a token, without checking its secret.
func TokenName(token string) (string, error) {
	if len(token) > maxTokenLen {
		return "", errMalformedToken
	}
	rest, ok := strings.CutPrefix(token, TokenPrefix)
	if !ok {
		return "", errMalformedToken
	}
	name, secret, ok := strings.Cut(rest, ".")
	if !ok || !ValidName(name) || secret == "" {
		return "", errMalformedToken
	}
	return name, nil
}
