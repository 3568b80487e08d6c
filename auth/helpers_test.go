package auth

import (
	"encoding/base64"
	"os"
	"testing"
)

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func b64std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func writeRaw(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }
