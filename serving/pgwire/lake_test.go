package pgwire

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/gridlake/gridlake/serving"
	"github.com/gridlake/gridlake/serving/servingtest"
)

// lakeServer starts the real SQL engine over a lake with one committed
// batch run (real broker and MinIO) and a PostgreSQL server in front of
// it, with testDirectory's users; it returns the server's address.
func lakeServer(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	m := servingtest.LakeAt(t, time.Now().UTC().Add(-30*time.Minute).Truncate(time.Minute))
	q, err := serving.NewSQL(ctx, m, serving.SQLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return serve(t, &Server{Q: q})
}

// libpq is a libpq connection string for the analyst.
func libpq(addr string) string {
	host, port, _ := splitHostPort(addr)
	return fmt.Sprintf("host=%s port=%s user=analyst dbname=gridlake sslmode=disable", host, port)
}

func splitHostPort(addr string) (string, string, error) {
	u, err := url.Parse("//" + addr)
	if err != nil {
		return "", "", err
	}
	return u.Hostname(), u.Port(), nil
}
