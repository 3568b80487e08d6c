package auth

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DemoName is the name of the local demo token: psql -U demo.
const DemoName = "demo"

// DemoToken returns the local admin token of a one-command demo, kept in
// dataDir/auth/demo-token (readable by its owner only) and created on first
// use, and its directory entry. It is a convenience for `gridlake up` on
// loopback, never a configured user.
func DemoToken(dataDir string, now time.Time) (token string, e Entry, err error) {
	path := DemoTokenPath(dataDir)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		token = strings.TrimSpace(string(data))
		if name, terr := TokenName(token); terr != nil || name != DemoName {
			return "", e, fmt.Errorf("demo token file %s is damaged: delete it and start again", path)
		}
	case errors.Is(err, os.ErrNotExist):
		if token, err = NewToken(DemoName); err != nil {
			return "", e, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return "", e, fmt.Errorf("keep demo token: %w", err)
		}
		if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
			return "", e, fmt.Errorf("keep demo token: %w", err)
		}
	default:
		return "", e, fmt.Errorf("read demo token: %w", err)
	}
	e, err = NewEntry(DemoName, Admin, token, now)
	return token, e, err
}
