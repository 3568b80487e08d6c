package s3server

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/signer"
)

// A signed request must not reach outside its own object or upload:
// aborting upload ".." once removed the whole store.
func TestPaths_DotNamesStayInside(t *testing.T) {
	now := time.Now().UTC()
	s := startAt(t, now)
	base := "http://" + s.Addr()
	do := func(method, path string) int {
		req, err := http.NewRequest(method, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Amz-Date", now.Format("20060102T150405Z"))
		req.Header.Set("X-Amz-Content-Sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
		code, _ := call(t, signer.SignV4(*req, testAK, testSK, "", "us-east-1"))
		return code
	}
	if code := do(http.MethodPut, "/bucket"); code != http.StatusOK {
		t.Fatalf("create bucket: %d", code)
	}
	if code := do(http.MethodPut, "/bucket/kept"); code != http.StatusOK {
		t.Fatalf("put object: %d", code)
	}
	for _, p := range []string{"/bucket/x?uploadId=..", "/bucket/x?uploadId=.", "/bucket/x?uploadId=nope"} {
		if code := do(http.MethodDelete, p); code != http.StatusNotFound {
			t.Errorf("DELETE %s: %d, want 404 NoSuchUpload", p, code)
		}
	}
	for _, p := range []string{"/bucket/..", "/bucket/."} {
		if code := do(http.MethodDelete, p); code != http.StatusBadRequest {
			t.Errorf("DELETE %s: %d, want 400", p, code)
		}
	}
	if _, err := os.Stat(filepath.Join(s.root, "buckets", "bucket")); err != nil {
		t.Fatalf("the store lost its bucket: %v", err)
	}
	if code := do(http.MethodGet, "/bucket/kept"); code != http.StatusOK {
		t.Fatalf("object gone after the hostile deletes: %d", code)
	}
}
