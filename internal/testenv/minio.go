package testenv

import (
	"path/filepath"
	"testing"

	"github.com/gridlake/gridlake/internal/minioproc"
	"github.com/gridlake/gridlake/objstore"
)

// MinIOServer starts a real MinIO server like MinIO, and also returns the
// process, for tests that pause, kill and restart it.
func MinIOServer(t testing.TB) (*minioproc.Server, objstore.Options) {
	t.Helper()
	bin, err := minioproc.Binary()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := minioproc.Start(bin, filepath.Join(t.TempDir(), "data"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return srv, objstore.Options{Endpoint: srv.Endpoint, AccessKey: AccessKey, SecretKey: SecretKey, Bucket: "gridlake-test"}
}
