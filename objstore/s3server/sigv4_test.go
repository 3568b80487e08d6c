package s3server

import (
	"bytes"
	"crypto/sha256"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/signer"
)

// The refusals that MinIO and this server share are tested in objstore
// against both; these need the server's clock, which only this one lets a
// test set.

const testAK, testSK = "test-access", "test-secret-key"

func startAt(t *testing.T, now time.Time) *Server {
	t.Helper()
	s := New(t.TempDir(), testAK, testSK, slog.New(slog.DiscardHandler))
	s.now = func() time.Time { return now }
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func call(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAuth_ClockSkew(t *testing.T) {
	for _, tc := range []struct {
		name   string
		offset time.Duration // server clock minus the signer's
		want   int
	}{
		{"in step", 0, http.StatusNotFound},
		{"14 minutes behind", -14 * time.Minute, http.StatusNotFound},
		{"16 minutes behind", -16 * time.Minute, http.StatusForbidden},
		{"16 minutes ahead", 16 * time.Minute, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startAt(t, time.Now().Add(tc.offset))
			req, _ := http.NewRequest("GET", "http://"+s.Addr()+"/bucket/key", nil)
			req.Header.Set("X-Amz-Content-Sha256", emptySHA256)
			status, body := call(t, signer.SignV4(*req, testAK, testSK, "", "us-east-1"))
			if status != tc.want {
				t.Fatalf("status %d, want %d: %s", status, tc.want, body)
			}
			if status == http.StatusForbidden && !strings.Contains(body, "<Code>RequestTimeTooSkewed</Code>") {
				t.Fatalf("want RequestTimeTooSkewed: %s", body)
			}
		})
	}
}

func TestAuth_PresignedWindow(t *testing.T) {
	signedAt := time.Now()
	for _, tc := range []struct {
		name   string
		offset time.Duration
		want   string
	}{
		{"within its life", 30 * time.Second, "<Code>NoSuchBucket</Code>"},
		{"expired", 61 * time.Second, "<Message>Request has expired</Message>"},
		{"from the future", -16 * time.Minute, "<Message>Request is not valid yet</Message>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startAt(t, signedAt.Add(tc.offset))
			req, _ := http.NewRequest("GET", "http://"+s.Addr()+"/bucket/key", nil)
			req = signer.PreSignV4(*req, testAK, testSK, "", "us-east-1", 60)
			if _, body := call(t, req); !strings.Contains(body, tc.want) {
				t.Fatalf("want %s, got %s", tc.want, body)
			}
		})
	}
}

func TestAuth_ParseLimits(t *testing.T) {
	q := url.Values{}
	for _, p := range presignParams {
		q.Set(p, "x")
	}
	q.Set("X-Amz-Algorithm", signV4Algorithm)
	q.Set("X-Amz-Credential", "AK/20260102/us-east-1/s3/aws4_request")
	q.Set("X-Amz-Date", "20260102T030405Z")
	q.Set("X-Amz-SignedHeaders", "host")
	q.Set("X-Amz-Expires", "604801")
	if _, err := parsePresigned(q); err != errPresignExpiresMax {
		t.Fatalf("a week and a second: %v", err)
	}
	q.Set("X-Amz-Expires", "604800")
	if _, err := parsePresigned(q); err != nil {
		t.Fatalf("a week: %v", err)
	}
	if _, err := parseChunkSize("1000001"); err == nil {
		t.Fatal("a chunk of 16 MiB + 1 passed")
	}
	if _, err := parseChunkSize("ffffffffffffffffffffffff"); err == nil {
		t.Fatal("an overflowing chunk size passed")
	}
	long := strings.Repeat("a", maxChunkLine+10) + "\r\n"
	c, _ := newChunkReader(io.NopCloser(strings.NewReader(long)), chunkOptions{decodedLength: 1})
	if _, err := io.ReadAll(c); err == nil || !strings.Contains(err.Error(), "longer than 4 KiB") {
		t.Fatalf("a 4 KiB chunk line: %v", err)
	}
}

type sha256Hasher struct{ hash.Hash }

func (sha256Hasher) Close() {}

// fuzzSigned is a STREAMING-AWS4-HMAC-SHA256-PAYLOAD body from minio-go's
// signer at a fixed time, and the chunk signer that verifies it.
func fuzzSigned(data []byte, trailer bool) ([]byte, *chunkSigner) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	req, _ := http.NewRequest("PUT", "http://127.0.0.1:9000/b/k", bytes.NewReader(data))
	if trailer {
		req.Trailer = http.Header{"X-Amz-Checksum-Crc32": {"AAAAAA=="}}
	}
	req = signer.StreamingSignV4(req, testAK, testSK, "", "us-east-1", int64(len(data)), at, sha256Hasher{sha256.New()})
	body, _ := io.ReadAll(req.Body)
	a, _ := parseAuthorization(req.Header.Get("Authorization"))
	return body, &chunkSigner{key: signingKey(testSK, a.cred), date: at, scope: a.cred.scope(), prev: a.signature}
}

// FuzzSigV4 feeds outside bytes to every SigV4 parser: the Authorization
// header, the presigned query and the aws-chunked body with its trailer.
// None may panic, and a body never yields more than it declared.
func FuzzSigV4(f *testing.F) {
	good, goodSigner := fuzzSigned(bytes.Repeat([]byte("z"), 100), false) // small: the fuzzer minimizes what it finds
	withTrailer, trailerSigner := fuzzSigned([]byte("hello"), true)
	f.Add("AWS4-HMAC-SHA256 Credential=AK/20260102/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
		"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20260102%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20260102T030405Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=00",
		good, int64(100), byte(0))
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/d/20260102/r/s3/aws4_request,SignedHeaders=host,Signature=1", "", withTrailer, int64(5), byte(1))
	f.Add("", "", []byte("5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n"), int64(5), byte(2))
	f.Fuzz(func(t *testing.T, auth, query string, body []byte, decoded int64, mode byte) {
		if a, err := parseAuthorization(auth); err == nil {
			if a.cred.accessKey == "" || a.signature == "" || !slices.Contains(a.signedHeaders, "host") {
				t.Fatalf("accepted %q as %+v", auth, a)
			}
		}
		if q, err := url.ParseQuery(query); err == nil {
			if a, err := parsePresigned(q); err == nil && (a.expires < 0 || a.expires > maxPresignExpiry) {
				t.Fatalf("accepted expiry %v", a.expires)
			}
		}
		if decoded < 0 {
			decoded = -(decoded + 1)
		}
		opts := chunkOptions{decodedLength: decoded}
		switch mode % 3 {
		case 0:
			sig := *goodSigner // verifying advances the chain
			opts.signer = &sig
		case 1:
			sig := *trailerSigner
			opts.signer = &sig
			opts.hasTrailer, opts.trailers = true, []string{"x-amz-checksum-crc32"}
		case 2:
			opts.hasTrailer, opts.trailers = true, []string{"x-amz-checksum-crc32"}
		}
		c, aerr := newChunkReader(io.NopCloser(bytes.NewReader(body)), opts)
		if aerr != nil {
			t.Fatal(aerr)
		}
		n, err := io.Copy(io.Discard, c)
		if n > decoded || (err == nil && n != decoded) {
			t.Fatalf("decoded %d bytes (err %v), declared %d", n, err, decoded)
		}
	})
}

// What minio-go's signer writes decodes to the data, chain and trailer
// checked; one flipped byte anywhere in it does not.
func TestChunkReader_MinioGoBodies(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 15000)
	body, sig := fuzzSigned(data, false)
	decode := func(b []byte) ([]byte, error) {
		s := *sig
		c, _ := newChunkReader(io.NopCloser(bytes.NewReader(b)), chunkOptions{decodedLength: int64(len(data)), signer: &s})
		return io.ReadAll(c)
	}
	got, err := decode(body)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("decoded %d bytes, %v", len(got), err)
	}
	for _, i := range []int{0, 20, 100, 70000, len(body) - 80, len(body) - 3} {
		bad := bytes.Clone(body)
		bad[i] ^= 1
		if _, err := decode(bad); err == nil {
			t.Errorf("byte %d of %d flipped: decoded without error", i, len(body))
		}
	}
}
