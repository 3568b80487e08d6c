package broker

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

const childEnv = "GRIDLAKE_BROKER_CHILD_NOFILE"

// TestBroker_ChildProcess is not a test of its own: the descriptor test
// runs it in a child process, which lowers its descriptor limit, starts the
// broker, prints its address and serves until its standard input closes.
func TestBroker_ChildProcess(t *testing.T) {
	limit := os.Getenv(childEnv)
	if limit == "" {
		t.Skip("run by TestBroker_SurvivesDescriptorExhaustion")
	}
	var n uint64
	fmt.Sscan(limit, &n)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: n, Max: n}); err != nil {
		t.Fatal(err)
	}
	b, err := Start(Options{DefaultPartitions: 1, Log: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	fmt.Printf("addr %s\n", b.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// TestBroker_SurvivesDescriptorExhaustion runs the broker in a process with
// 64 descriptors, opens connections until it cannot accept more, closes
// them, and then produces and consumes over new connections: the broker
// must serve again once descriptors are free (kfake's own accept loop ends
// at the first EMFILE, and the broker refuses every connection for good).
func TestBroker_SurvivesDescriptorExhaustion(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestBroker_ChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"=64")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}()
	var addr string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "addr "); ok {
			addr = a
			break
		}
	}
	if addr == "" {
		t.Fatalf("child broker did not start: %s", stderr.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const topic = "descriptors"
	conn, err := kafka.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.CreateTopics(kafka.TopicConfig{Topic: topic, NumPartitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if err := produce(ctx, addr, topic, "before"); err != nil {
		t.Fatalf("produce before the exhaustion: %v", err)
	}

	// Far more connections than the child has descriptors; each sends a
	// byte so the broker has to accept it to read.
	var held []net.Conn
	for i := 0; i < 300; i++ {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break // refused: the old broker closed its listener
		}
		held = append(held, c)
	}
	time.Sleep(500 * time.Millisecond) // let the broker hit EMFILE
	for _, c := range held {
		c.Close()
	}
	t.Logf("held %d connections", len(held))

	// New connections are served again.
	var last error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if last = produce(ctx, addr, topic, "after"); last == nil {
			break
		}
	}
	if last != nil {
		t.Fatalf("broker does not serve after descriptors were exhausted and freed: %v\nchild log:\n%s", last, stderr.String())
	}
	got, err := consume(ctx, addr, topic, 2)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "before,after" {
		t.Fatalf("consumed %v, want [before after]", got)
	}
	if !strings.Contains(stderr.String(), "too many open files") {
		t.Fatalf("the broker never ran out of descriptors; the test proves nothing. child log:\n%s", stderr.String())
	}
}

// produce writes one message over new connections.
func produce(ctx context.Context, addr, topic, value string) error {
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	conn, err := kafka.DialLeader(dctx, "tcp", addr, topic, 0)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	_, err = conn.WriteMessages(kafka.Message{Value: []byte(value)})
	return err
}

// consume reads the first n messages over new connections.
func consume(ctx context.Context, addr, topic string, n int) ([]string, error) {
	conn, err := kafka.DialLeader(ctx, "tcp", addr, topic, 0)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	b := conn.ReadBatch(1, 1<<20)
	defer b.Close()
	var out []string
	for len(out) < n {
		m, err := b.ReadMessage()
		if err != nil {
			return out, fmt.Errorf("read message %d: %w", len(out), err)
		}
		out = append(out, string(m.Value))
	}
	return out, nil
}
