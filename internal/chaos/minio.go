package chaos

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"

	"github.com/gridlake/gridlake/internal/minioproc"
)

// MinIO is a MinIO server process on fixed loopback addresses storing
// under dir, so a restart serves the same data on the same port. Its
// credentials are minioproc's.
func MinIO(bin, dir, addr, consoleAddr string) *Proc {
	return &Proc{
		Name: "minio",
		Path: bin,
		Args: []string{"server", dir, "--address", addr, "--console-address", consoleAddr, "--quiet"},
		Env: []string{"MINIO_ROOT_USER=" + minioproc.AccessKey, "MINIO_ROOT_PASSWORD=" + minioproc.SecretKey,
			"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=1"},
		Log:   filepath.Join(filepath.Dir(dir), "minio.log"),
		Ready: HTTPReady("http://" + addr + "/minio/health/ready"),
	}
}

// HTTPReady is a readiness check that wants 200 from url, sending the
// header name/value pairs given (Authorization, Bearer ...).
func HTTPReady(url string, header ...string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %d", url, resp.StatusCode)
		}
		return nil
	}
}
