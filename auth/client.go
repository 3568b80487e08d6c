package auth

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// TokenEnv is the environment variable HTTP clients of gridlake (gridlake
// sql, gridlake bench) read their token from.
const TokenEnv = "GRIDLAKE_TOKEN"

// DemoTokenPath is where `gridlake up` keeps its demo token.
func DemoTokenPath(dataDir string) string { return filepath.Join(dataDir, "auth", "demo-token") }

// ClientToken is the token an in-repo client sends: $GRIDLAKE_TOKEN, else
// the demo token kept in dataDir, else "" (the server's 401 then says how
// to get one).
func ClientToken(getenv func(string) string, dataDir string) (string, error) {
	if t := strings.TrimSpace(getenv(TokenEnv)); t != "" {
		return t, nil
	}
	data, err := os.ReadFile(DemoTokenPath(dataDir))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the demo token (or set %s): %w", TokenEnv, err)
	}
	return strings.TrimSpace(string(data)), nil
}
