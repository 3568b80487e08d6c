package objstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/gridlake/gridlake/internal/testenv"
	"github.com/gridlake/gridlake/objstore"
	"github.com/gridlake/gridlake/objstore/s3server"
)

// backends runs each test against a real MinIO server and against the
// embedded server, so the embedded one is held to MinIO's behaviour.
func backends(t *testing.T) map[string]objstore.Options {
	srv := s3server.New(t.TempDir(), testenv.AccessKey, testenv.SecretKey, slog.New(slog.DiscardHandler))
	if err := srv.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return map[string]objstore.Options{
		"minio":    testenv.MinIO(t),
		"embedded": {Endpoint: srv.Addr(), AccessKey: testenv.AccessKey, SecretKey: testenv.SecretKey, Bucket: "gridlake-test"},
	}
}

func TestStore_ObjectLifecycle(t *testing.T) {
	for name, opts := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s, err := objstore.Open(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			keys := []string{"raw/gridlake.battery/dt=2026-11-21/hour=09/p0-0-99.parquet", "raw/x", "raw/y/z", "_manifests/00000001.json"}
			for i, k := range keys {
				if _, err := s.Put(ctx, k, []byte(fmt.Sprintf("object %d", i))); err != nil {
					t.Fatal(err)
				}
			}
			data, info, err := s.Get(ctx, "raw/y/z")
			if err != nil || string(data) != "object 2" || info.Size != 8 || info.ETag == "" {
				t.Fatalf("get: %q %+v %v", data, info, err)
			}
			list, err := s.List(ctx, "raw/")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range list {
				got = append(got, o.Key)
			}
			want := []string{keys[0], "raw/x", "raw/y/z"}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("list raw/ = %v, want %v", got, want)
			}
			if err := s.Delete(ctx, "raw/x"); err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.Get(ctx, "raw/x"); !errors.Is(err, objstore.ErrNotFound) {
				t.Fatalf("get deleted object: want ErrNotFound, got %v", err)
			}
			if _, err := s.Stat(ctx, "nope"); !errors.Is(err, objstore.ErrNotFound) {
				t.Fatalf("stat missing: want ErrNotFound, got %v", err)
			}
		})
	}
}

func TestStore_ConditionalPut(t *testing.T) {
	for name, opts := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s, err := objstore.Open(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			etag, err := s.PutIfAbsent(ctx, "_manifests/1.json", []byte("v1"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.PutIfAbsent(ctx, "_manifests/1.json", []byte("v1 again")); !errors.Is(err, objstore.ErrPrecondition) {
				t.Fatalf("second PutIfAbsent: want ErrPrecondition, got %v", err)
			}
			etag2, err := s.PutIfMatch(ctx, "_manifests/1.json", []byte("v2"), etag)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.PutIfMatch(ctx, "_manifests/1.json", []byte("v3"), etag); !errors.Is(err, objstore.ErrPrecondition) {
				t.Fatalf("stale PutIfMatch: want ErrPrecondition, got %v", err)
			}
			if _, err := s.PutIfMatch(ctx, "_manifests/none.json", []byte("v"), etag2); !errors.Is(err, objstore.ErrPrecondition) {
				t.Fatalf("PutIfMatch of a missing object: want ErrPrecondition, got %v", err)
			}
			data, _, _ := s.Get(ctx, "_manifests/1.json")
			if string(data) != "v2" {
				t.Fatalf("content %q, want v2", data)
			}
		})
	}
}

// Many writers race to create one key: exactly one may win, which is what
// manifest commits and job locks rely on.
func TestStore_PutIfAbsentRace(t *testing.T) {
	for name, opts := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s, err := objstore.Open(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			for round := 0; round < 5; round++ {
				key := fmt.Sprintf("lock/%d", round)
				var wg sync.WaitGroup
				var mu sync.Mutex
				winners, losers := 0, 0
				for w := 0; w < 8; w++ {
					wg.Add(1)
					go func(w int) {
						defer wg.Done()
						_, err := s.PutIfAbsent(ctx, key, []byte(fmt.Sprint(w)))
						mu.Lock()
						defer mu.Unlock()
						switch {
						case err == nil:
							winners++
						case errors.Is(err, objstore.ErrPrecondition):
							losers++
						default:
							t.Error(err)
						}
					}(w)
				}
				wg.Wait()
				if winners != 1 || losers != 7 {
					t.Fatalf("round %d: %d winners, %d losers; want 1 and 7", round, winners, losers)
				}
			}
		})
	}
}

func TestStore_LargeObjectMultipart(t *testing.T) {
	for name, opts := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			s, err := objstore.Open(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			big := make([]byte, 20<<20)
			r := rand.New(rand.NewPCG(3, 4))
			for i := range big {
				big[i] = byte(r.UintN(256))
			}
			// Unknown size makes minio-go upload in 16 MiB parts.
			if _, err := s.PutReader(ctx, "big.bin", io.MultiReader(bytes.NewReader(big)), -1); err != nil {
				t.Fatal(err)
			}
			got, info, err := s.Get(ctx, "big.bin")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, big) || info.Size != int64(len(big)) {
				t.Fatalf("round trip of 20 MiB differs (size %d)", info.Size)
			}
		})
	}
}
