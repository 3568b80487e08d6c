package objstore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"hash/crc32"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/signer"

	"github.com/gridlake/gridlake/objstore"
)

// These tests hold the embedded server to MinIO on requests that must be
// refused: each runs against both and wants the same 403.

const region = "us-east-1"

// seed stores one object with the right key, for the refused requests to
// aim at.
func seed(t *testing.T, opts objstore.Options, key, body string) {
	t.Helper()
	s, err := objstore.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(context.Background(), key, []byte(body)); err != nil {
		t.Fatal(err)
	}
}

func client(t *testing.T, opts objstore.Options, secret string) *minio.Client {
	t.Helper()
	c, err := minio.New(opts.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(opts.AccessKey, secret, ""), Region: region})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// want403 asserts that err is S3's 403 with the given code.
func want403(t *testing.T, what string, err error, code string) {
	t.Helper()
	resp := minio.ToErrorResponse(err)
	if err == nil || resp.StatusCode != http.StatusForbidden || resp.Code != code {
		t.Errorf("%s: want 403 %s, got status %d code %q (%v)", what, code, resp.StatusCode, resp.Code, err)
	}
}

// stillThere checks that refused writes and deletes changed nothing.
func stillThere(t *testing.T, opts objstore.Options, key, body string, absent ...string) {
	t.Helper()
	s, err := objstore.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := s.Get(context.Background(), key)
	if err != nil || string(got) != body {
		t.Errorf("%s after refused requests: %q, %v; want %q", key, got, err, body)
	}
	for _, k := range absent {
		if _, err := s.Stat(context.Background(), k); err == nil {
			t.Errorf("%s was written by a refused request", k)
		}
	}
}

func TestSigV4_WrongSecretRefused(t *testing.T) {
	for name, opts := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			seed(t, opts, "kept", "original")
			// minio-go sends a plain-HTTP put as STREAMING-AWS4-HMAC-SHA256-PAYLOAD,
			// or as UNSIGNED-PAYLOAD when asked not to hash the content.
			for _, unhashed := range []bool{false, true} {
				c := client(t, opts, "not-the-secret-key")
				for o := range c.ListObjects(ctx, opts.Bucket, minio.ListObjectsOptions{Recursive: true}) {
					want403(t, "list", o.Err, "SignatureDoesNotMatch")
					break
				}
				_, err := c.StatObject(ctx, opts.Bucket, "kept", minio.StatObjectOptions{})
				want403(t, "stat", err, "SignatureDoesNotMatch")
				obj, err := c.GetObject(ctx, opts.Bucket, "kept", minio.GetObjectOptions{})
				if err == nil {
					_, err = io.ReadAll(obj)
				}
				want403(t, "get", err, "SignatureDoesNotMatch")
				data := bytes.Repeat([]byte("x"), 200<<10)
				_, err = c.PutObject(ctx, opts.Bucket, "kept", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{DisableContentSha256: unhashed})
				want403(t, "put", err, "SignatureDoesNotMatch")
				_, err = c.PutObject(ctx, opts.Bucket, "new", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{DisableContentSha256: unhashed})
				want403(t, "put new", err, "SignatureDoesNotMatch")
				err = c.RemoveObject(ctx, opts.Bucket, "kept", minio.RemoveObjectOptions{})
				want403(t, "delete", err, "SignatureDoesNotMatch")
			}
			bad := opts
			bad.AccessKey = "nobody-we-know"
			c := client(t, bad, opts.SecretKey)
			_, err := c.StatObject(ctx, opts.Bucket, "kept", minio.StatObjectOptions{})
			want403(t, "stat with an unknown access key", err, "InvalidAccessKeyId")
			stillThere(t, opts, "kept", "original", "new")
		})
	}
}

// signed returns a request signed with the right key in the header form.
func signed(t *testing.T, opts objstore.Options, method, path string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+opts.Endpoint+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
	return signer.SignV4(*req, opts.AccessKey, opts.SecretKey, "", region)
}

func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// zeroSignature replaces the Signature= of an Authorization header.
func zeroSignature(req *http.Request) {
	auth := req.Header.Get("Authorization")
	i := strings.Index(auth, "Signature=") + len("Signature=")
	req.Header.Set("Authorization", auth[:i]+strings.Repeat("0", len(auth)-i))
}

func TestSigV4_TamperedSignatureRefused(t *testing.T) {
	for name, opts := range backends(t) {
		t.Run(name, func(t *testing.T) {
			seed(t, opts, "kept", "original")
			b := "/" + opts.Bucket
			for _, r := range []struct {
				method, path string
				body         []byte
			}{
				{"GET", b + "?list-type=2", nil},
				{"GET", b + "/kept", nil},
				{"PUT", b + "/kept", []byte("overwritten")},
				{"PUT", b + "/new", []byte("new")},
				{"DELETE", b + "/kept", nil},
			} {
				req := signed(t, opts, r.method, r.path, r.body)
				zeroSignature(req)
				if status, body := do(t, req); status != http.StatusForbidden || !strings.Contains(body, "<Code>SignatureDoesNotMatch</Code>") {
					t.Errorf("%s %s with Signature=00...: %d %s", r.method, r.path, status, body)
				}
				// No signature at all is an anonymous request: refused too.
				anon, _ := http.NewRequest(r.method, "http://"+opts.Endpoint+r.path, bytes.NewReader(r.body))
				if status, body := do(t, anon); status != http.StatusForbidden || !strings.Contains(body, "<Code>AccessDenied</Code>") {
					t.Errorf("anonymous %s %s: %d %s", r.method, r.path, status, body)
				}
			}
			// The same requests signed right pass, so the refusals are about
			// the signature, not the shape of the request.
			if status, body := do(t, signed(t, opts, "GET", b+"/kept", nil)); status != http.StatusOK || body != "original" {
				t.Errorf("rightly signed GET: %d %s", status, body)
			}
			// A signed body that is not the body sent is refused before it lands.
			req := signed(t, opts, "PUT", b+"/new", []byte("what was signed"))
			req.Body = io.NopCloser(strings.NewReader("something else!"))
			if status, body := do(t, req); status != http.StatusBadRequest || !strings.Contains(body, "XAmzContentSHA256Mismatch") {
				t.Errorf("PUT with a body other than the signed one: %d %s", status, body)
			}
			stillThere(t, opts, "kept", "original", "new")
		})
	}
}

func TestSigV4_PresignedURLs(t *testing.T) {
	for name, opts := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			seed(t, opts, "kept", "original")
			c := client(t, opts, opts.SecretKey)
			get := func(u *url.URL) (int, string) {
				req, _ := http.NewRequest("GET", u.String(), nil)
				return do(t, req)
			}
			good, err := c.PresignedGetObject(ctx, opts.Bucket, "kept", time.Minute, nil)
			if err != nil {
				t.Fatal(err)
			}
			if status, body := get(good); status != http.StatusOK || body != "original" {
				t.Fatalf("presigned GET: %d %s", status, body)
			}
			tampered := *good
			q := tampered.Query()
			sig := q.Get("X-Amz-Signature")
			q.Set("X-Amz-Signature", strings.Repeat("0", len(sig)))
			tampered.RawQuery = q.Encode()
			if status, body := get(&tampered); status != http.StatusForbidden || !strings.Contains(body, "<Code>SignatureDoesNotMatch</Code>") {
				t.Errorf("presigned GET with a tampered signature: %d %s", status, body)
			}
			wrongKey := *good
			q = wrongKey.Query()
			q.Set("X-Amz-Expires", "3600") // a longer life than was signed
			wrongKey.RawQuery = q.Encode()
			if status, body := get(&wrongKey); status != http.StatusForbidden || !strings.Contains(body, "<Code>SignatureDoesNotMatch</Code>") {
				t.Errorf("presigned GET with X-Amz-Expires changed: %d %s", status, body)
			}
			short, err := c.PresignedGetObject(ctx, opts.Bucket, "kept", time.Second, nil)
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(2100 * time.Millisecond)
			if status, body := get(short); status != http.StatusForbidden || !strings.Contains(body, "<Message>Request has expired</Message>") {
				t.Errorf("expired presigned GET: %d %s", status, body)
			}
		})
	}
}

// sha256Hasher is the hasher minio-go's streaming signer wants.
type sha256Hasher struct{ hash.Hash }

func (sha256Hasher) Close() {}

// streamingPut builds a STREAMING-AWS4-HMAC-SHA256-PAYLOAD request with
// minio-go's signer and returns it with its encoded body.
func streamingPut(t *testing.T, opts objstore.Options, path string, data []byte) (*http.Request, []byte) {
	t.Helper()
	req, err := http.NewRequest("PUT", "http://"+opts.Endpoint+path, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	req = signer.StreamingSignV4(req, opts.AccessKey, opts.SecretKey, "", region, int64(len(data)), time.Now().UTC(), sha256Hasher{sha256.New()})
	body, err := io.ReadAll(req.Body)
	if err != nil {
		t.Fatal(err)
	}
	return req, body
}

func send(t *testing.T, req *http.Request, body []byte) (int, string) {
	r := req.Clone(context.Background())
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	return do(t, r)
}

func TestSigV4_ChunkSignatureRefused(t *testing.T) {
	for name, opts := range backends(t) {
		t.Run(name, func(t *testing.T) {
			seed(t, opts, "kept", "original")
			data := bytes.Repeat([]byte("chunk data "), 20<<10) // four 64 KiB chunks
			path := "/" + opts.Bucket + "/streamed"
			req, body := streamingPut(t, opts, path, data)
			if status, resp := send(t, req, body); status != http.StatusOK {
				t.Fatalf("well-signed streaming PUT: %d %s", status, resp)
			}
			stillThere(t, opts, "streamed", string(data))

			// Corrupt the second chunk's signature; the seed and the first
			// chunk are still right.
			req, body = streamingPut(t, opts, "/"+opts.Bucket+"/bad-sig", data)
			marker := []byte("chunk-signature=")
			first := bytes.Index(body, marker)
			second := first + len(marker) + bytes.Index(body[first+len(marker):], marker)
			bad := bytes.Clone(body)
			copy(bad[second+len(marker):], "0000")
			if status, resp := send(t, req, bad); status != http.StatusForbidden || !strings.Contains(resp, "<Code>SignatureDoesNotMatch</Code>") {
				t.Errorf("streaming PUT with a corrupted chunk signature: %d %s", status, resp)
			}
			// Right signatures, altered data in the last chunk.
			req, body = streamingPut(t, opts, "/"+opts.Bucket+"/bad-data", data)
			bad = bytes.Clone(body)
			i := bytes.LastIndex(bad, []byte("chunk data chunk"))
			copy(bad[i:], "CHUNK")
			if status, resp := send(t, req, bad); status != http.StatusForbidden || !strings.Contains(resp, "<Code>SignatureDoesNotMatch</Code>") {
				t.Errorf("streaming PUT with altered chunk data: %d %s", status, resp)
			}
			stillThere(t, opts, "kept", "original", "bad-sig", "bad-data")
		})
	}
}

// trailerPut builds an aws-chunked PUT with a trailing CRC32C checksum, as
// minio-go's signer writes it: signed chunks and a signed trailer
// (STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER), or unsigned chunks under a
// signed header (STREAMING-UNSIGNED-PAYLOAD-TRAILER). checksum is the
// trailer's value.
func trailerPut(t *testing.T, opts objstore.Options, path string, data []byte, signedChunks bool, checksum string) (*http.Request, []byte) {
	t.Helper()
	req, err := http.NewRequest("PUT", "http://"+opts.Endpoint+path, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	trailer := http.Header{"X-Amz-Checksum-Crc32c": {checksum}}
	if signedChunks {
		req.Trailer = trailer
		req = signer.StreamingSignV4(req, opts.AccessKey, opts.SecretKey, "", region, int64(len(data)), time.Now().UTC(), sha256Hasher{sha256.New()})
	} else {
		req.Header.Set("X-Amz-Content-Sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
		req = signer.SignV4Trailer(*req, opts.AccessKey, opts.SecretKey, "", region, trailer)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		t.Fatal(err)
	}
	req.Trailer = nil // sent inside the body, not as HTTP trailers
	return req, body
}

func crc32c(data []byte) string {
	return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))))
}

func TestSigV4_TrailerUploads(t *testing.T) {
	for name, opts := range backends(t) {
		t.Run(name, func(t *testing.T) {
			seed(t, opts, "kept", "original")
			data := bytes.Repeat([]byte("trailer data "), 10<<10)
			for _, signedChunks := range []bool{true, false} {
				kind := map[bool]string{true: "signed", false: "unsigned"}[signedChunks]
				key := kind + "-trailer"
				req, body := trailerPut(t, opts, "/"+opts.Bucket+"/"+key, data, signedChunks, crc32c(data))
				if status, resp := send(t, req, body); status != http.StatusOK {
					t.Fatalf("%s: %d %s", key, status, resp)
				}
				stillThere(t, opts, key, string(data))

				req, body = trailerPut(t, opts, "/"+opts.Bucket+"/"+key+"-bad-checksum", data, signedChunks, crc32c([]byte("other")))
				if status, resp := send(t, req, body); status != http.StatusBadRequest {
					t.Errorf("%s with a wrong checksum: %d %s", key, status, resp)
				}
				if signedChunks {
					req, body = trailerPut(t, opts, "/"+opts.Bucket+"/"+key+"-bad-sig", data, signedChunks, crc32c(data))
					i := bytes.Index(body, []byte("x-amz-trailer-signature:")) + len("x-amz-trailer-signature:")
					copy(body[i:], "0000")
					if status, resp := send(t, req, body); status != http.StatusForbidden || !strings.Contains(resp, "<Code>SignatureDoesNotMatch</Code>") {
						t.Errorf("%s with a corrupted trailer signature: %d %s", key, status, resp)
					}
				}
				stillThere(t, opts, "kept", "original", key+"-bad-checksum", key+"-bad-sig")
			}
		})
	}
}
