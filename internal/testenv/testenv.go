// Package testenv starts the real components integration tests talk to: a
// MinIO server process and the embedded Kafka-protocol broker, each on a
// free loopback port, stopped when the test ends; and the waits tests share.
package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/gridlake/gridlake/internal/devstack"
	"github.com/gridlake/gridlake/internal/freeport"
	"github.com/gridlake/gridlake/internal/minioproc"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/kafkaio/broker"
	"github.com/gridlake/gridlake/objstore"
)

// MinIO credentials of test servers.
const (
	AccessKey = minioproc.AccessKey
	SecretKey = minioproc.SecretKey
)

// FreePort returns a currently free TCP port on 127.0.0.1.
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := freeport.Get()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// MinIO starts a real MinIO server with a temporary directory and returns
// store options for a fresh bucket on it.
func MinIO(t testing.TB) objstore.Options {
	t.Helper()
	_, o := MinIOServer(t)
	return o
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
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := devstack.StartBroker(ctx, broker.Options{DefaultPartitions: partitions},
		kafkaio.TopicSpec{Partitions: partitions, Replication: 1, Retention: 7 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
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
