package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/gridlake/gridlake/schemas"
)

// syncBuffer is a bytes.Buffer safe for the writer goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestUp_StackWithSimulator starts `gridlake up --simulate` in-process on
// free ports and checks what `make run` promises: health, readiness, and
// simulated events flowing through the broker.
func TestUp_StackWithSimulator(t *testing.T) {
	ctx := context.Background()
	u := startUp(t)
	httpAddr, kafkaAddr, stderr := u.http, u.kafka, u.stderr
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + httpAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
	// The banner's token line says how to use the demo token; without it
	// the API answers 401, with it 200.
	out := u.stdout.String()
	for _, want := range []string{"curl -H 'Authorization: Bearer " + u.token + "'", "PGPASSWORD=" + u.token + " psql -h 127.0.0.1 -p ", "-U demo", "loopback only"} {
		if u.token == "" || !strings.Contains(out, want) {
			t.Fatalf("the banner lacks %q:\n%s", want, out)
		}
	}
	if code := getStatus(t, "", "http://"+httpAddr+"/v1/status"); code != http.StatusUnauthorized {
		t.Fatalf("/v1/status without a token: %d, want 401", code)
	}
	if code := getStatus(t, u.token, "http://"+httpAddr+"/v1/status"); code != http.StatusOK {
		t.Fatalf("/v1/status with the banner's token: %d, want 200", code)
	}
	// Simulated readings reach the broker and are valid events.
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{kafkaAddr}, Topic: schemas.TopicBattery, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
	defer rcancel()
	for i := 0; i < 5; i++ {
		m, err := r.ReadMessage(rctx)
		if err != nil {
			t.Fatalf("no simulated readings on the broker: %v\n%s", err, stderr.String())
		}
		if _, rej := schemas.Validate(schemas.DefaultLimits(), m.Topic, m.Key, m.Value, m.Time); !rej.OK() {
			t.Fatalf("simulated reading rejected: %v: %s", rej, m.Value)
		}
	}
	if err := u.stop(); err != nil {
		t.Fatal(err)
	}
}

// upProcess is a `gridlake up --simulate` running in-process on free ports.
type upProcess struct {
	http, kafka, s3, pg string
	// token is the demo token the banner prints (empty with a users file).
	token          string
	stdout, stderr *syncBuffer
	done           chan error
	cancel         context.CancelFunc
	once           sync.Once
	err            error
}

// stop cancels the process and returns how it ended.
func (u *upProcess) stop() error {
	u.once.Do(func() {
		u.cancel()
		select {
		case u.err = <-u.done:
		case <-time.After(15 * time.Second):
			u.err = errors.New("up did not stop on cancel")
		}
	})
	return u.err
}

// startUp starts `gridlake up --simulate` with a small fleet and extra
// flags, waits until it is up, and stops it when the test ends.
func startUp(t *testing.T, extra ...string) *upProcess {
	t.Helper()
	return startUpListening(t, nil, extra...)
}

// startUpListening is startUp opening the HTTP and PostgreSQL listeners
// with listen (nil: net.Listen).
func startUpListening(t *testing.T, listen func(network, address string) (net.Listener, error), extra ...string) *upProcess {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	u := &upProcess{stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan error, 1), cancel: cancel}
	e := &env{stdout: u.stdout, stderr: u.stderr, getenv: func(string) string { return "" }, listen: listen}
	args := append([]string{"up", "--simulate", "--data-dir", t.TempDir(),
		"--kafka-embedded-port", "0", "--s3-embedded-port", "0", "--http-addr", "127.0.0.1:0", "--serve-pg-addr", "127.0.0.1:0", "--serve-flight-addr", "127.0.0.1:0",
		"--simulate-batteries", "50", "--simulate-rooms", "5", "--simulate-rate", "10"}, extra...)
	go func() { u.done <- run(ctx, e, args) }()
	t.Cleanup(func() { u.stop() }) // before the data dir is removed
	var out string
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(out, "gridlake is up"); out = u.stdout.String() {
		select {
		case err := <-u.done:
			t.Fatalf("up exited early: %v\n%s", err, u.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("up did not come up:\n%s\n%s", out, u.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	u.http = regexp.MustCompile(`http\s+http://(\S+)`).FindStringSubmatch(out)[1]
	u.kafka = regexp.MustCompile(`kafka\s+(\S+)`).FindStringSubmatch(out)[1]
	u.s3 = regexp.MustCompile(`s3\s+http://(\S+)`).FindStringSubmatch(out)[1]
	if m := regexp.MustCompile(`psql -h (\S+) -p (\d+)`).FindStringSubmatch(out); m != nil {
		u.pg = net.JoinHostPort(m[1], m[2])
	}
	if m := regexp.MustCompile(`token\s+(gl_\S+)`).FindStringSubmatch(out); m != nil {
		u.token = m[1]
	}
	return u
}

func TestRun_UnknownCommandAndHelp(t *testing.T) {
	var stdout, stderr syncBuffer
	e := &env{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
	if err := run(context.Background(), e, []string{"frobnicate"}); err == nil || !strings.Contains(err.Error(), `unknown command "frobnicate"`) {
		t.Fatalf("unknown command: %v", err)
	}
	if err := run(context.Background(), e, []string{"help"}); err != nil || !strings.Contains(stdout.String(), "simulate") {
		t.Fatalf("help: %v %q", err, stdout.String())
	}
	err := run(context.Background(), e, []string{"simulate", "--simulate-rate", "-1"})
	if err == nil || !strings.Contains(err.Error(), "simulate.rate") {
		t.Fatalf("bad setting should be named: %v", err)
	}
}

// TestUp_KilledListenerStopsTheProcess kills the HTTP or the PostgreSQL
// listener under a running `gridlake up`: the process must end with that
// listener's error and a non-zero exit, not stay up deaf on one port.
func TestUp_KilledListenerStopsTheProcess(t *testing.T) {
	for _, tc := range []struct {
		name string
		addr func(*upProcess) string
		want string
	}{
		{"http", func(u *upProcess) string { return u.http }, "HTTP"},
		{"postgres", func(u *upProcess) string { return u.pg }, "PostgreSQL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			opened := map[string]net.Listener{}
			listen := func(network, address string) (net.Listener, error) {
				ln, err := net.Listen(network, address)
				if err == nil {
					mu.Lock()
					opened[ln.Addr().String()] = ln
					mu.Unlock()
				}
				return ln, err
			}
			u := startUpListening(t, listen)
			addr := tc.addr(u)
			mu.Lock()
			ln := opened[addr]
			mu.Unlock()
			if ln == nil {
				t.Fatalf("no listener on %q among %v", addr, opened)
			}
			ln.Close()
			select {
			case err := <-u.done:
				u.once.Do(func() { u.err = err })
				t.Logf("up ended with: %v", err)
				if err == nil || exitCode(err) == 0 || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), addr) {
					t.Fatalf("up ended with %v (exit %d), want a non-zero exit naming the %s listener on %s", err, exitCode(err), tc.want, addr)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("up still runs 30s after its %s listener on %s died\n%s", tc.want, addr, u.stderr.String())
			}
		})
	}
}
