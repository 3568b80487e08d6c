package testenv

import (
	"testing"

	"github.com/gridlake/gridlake/internal/devstack"
	"github.com/gridlake/gridlake/internal/minioproc"
	"github.com/gridlake/gridlake/objstore"
)

// MinIOServer starts a real MinIO server like MinIO, and also returns the
// process, for tests that pause, kill and restart it.
func MinIOServer(t testing.TB) (*minioproc.Server, objstore.Options) {
	t.Helper()
	srv, err := devstack.StartServer(devstack.ServerOptions{Kind: devstack.MinIO, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv.MinIO, srv.StoreOptions("gridlake-test")
}
