// Package testenv starts the real components integration tests talk to: a
// MinIO server process and the embedded Kafka-protocol broker, each on a
// free loopback port, stopped when the test ends.
package testenv

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/kafkaio/broker"
	"github.com/gridlake/gridlake/objstore"
)

// MinIO credentials of test servers.
const (
	AccessKey = "gridlake-test"
	SecretKey = "gridlake-test-secret"
)

// MinIOBinary finds the MinIO server that `make deps` installs into the
// module's bin folder, or the one GRIDLAKE_MINIO_BIN names.
func MinIOBinary() (string, error) {
	if p := os.Getenv("GRIDLAKE_MINIO_BIN"); p != "" {
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, "bin", "minio")
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("no MinIO server at %s: run `make deps` first", p)
			}
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory; set GRIDLAKE_MINIO_BIN")
		}
		dir = parent
	}
}

// FreePort returns a currently free TCP port on 127.0.0.1.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// MinIO starts a real MinIO server with a temporary directory and returns
// store options for a fresh bucket on it.
func MinIO(t testing.TB) objstore.Options {
	t.Helper()
	bin, err := MinIOBinary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	console := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	cmd := exec.Command(bin, "server", dir, "--address", addr, "--console-address", console, "--quiet")
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+AccessKey, "MINIO_ROOT_PASSWORD="+SecretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=1")
	logf, err := os.Create(filepath.Join(dir, "..", "minio.log"))
	if err == nil {
		cmd.Stdout, cmd.Stderr = logf, logf
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start MinIO %s: %v", bin, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if logf != nil {
			logf.Close()
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("MinIO at %s not ready after 60s (log in %s)", addr, filepath.Join(dir, "..", "minio.log"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return objstore.Options{Endpoint: addr, AccessKey: AccessKey, SecretKey: SecretKey, Bucket: "gridlake-test"}
}

// Store opens a store on a fresh MinIO server.
func Store(t testing.TB) *objstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := objstore.Open(ctx, MinIO(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Kafka starts the embedded broker on a free port with the gridlake topics
// (partitions each) and returns its address.
func Kafka(t testing.TB, partitions int) string {
	t.Helper()
	b, err := broker.Start(broker.Options{DefaultPartitions: partitions})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = kafkaio.EnsureTopics(ctx, []string{b.Addr()}, kafkaio.TopicSpec{Partitions: partitions, Replication: 1, Retention: 7 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return b.Addr()
}

// ReadAll reads every message of the topics from the broker, with their
// partitions and offsets, up to the high watermarks at call time.
func ReadAll(t testing.TB, addr string, topics ...string) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []kafka.Message
	for _, topic := range topics {
		n, err := kafkaio.Partitions(ctx, []string{addr}, topic)
		if err != nil {
			t.Fatal(err)
		}
		for p := 0; p < n; p++ {
			conn, err := kafka.DialLeader(ctx, "tcp", addr, topic, p)
			if err != nil {
				t.Fatal(err)
			}
			first, last, err := conn.ReadOffsets()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Seek(first, kafka.SeekAbsolute); err != nil {
				t.Fatal(err)
			}
			for next := first; next < last; {
				conn.SetReadDeadline(time.Now().Add(10 * time.Second))
				b := conn.ReadBatch(1, 16<<20)
				for {
					m, err := b.ReadMessage()
					if err != nil {
						break
					}
					out = append(out, m)
					next = m.Offset + 1
				}
				if err := b.Close(); err != nil && next < last {
					t.Fatalf("read %s/%d at %d: %v", topic, p, next, err)
				}
			}
			conn.Close()
		}
	}
	return out
}
