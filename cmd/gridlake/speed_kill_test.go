package main

import (
	"github.com/gridlake/gridlake/auth"

	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/internal/reference"
	"github.com/gridlake/gridlake/internal/testenv"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/simulate"
	"github.com/gridlake/gridlake/speed"
)

// buildBinary builds bin/gridlake for tests that need a real process.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gridlake")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type speedProc struct {
	cmd   *exec.Cmd
	addr  string
	token string // a viewer's, from the process's users file
}

func startSpeedProc(t *testing.T, bin, broker string, s3 testenvS3) *speedProc {
	t.Helper()
	// Secrets reach subprocesses by environment, never by flags.
	t.Setenv("GRIDLAKE_S3_SECRET_KEY", testenv.SecretKey)
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cmd := exec.Command(bin, "speed", "--kafka-brokers", broker, "--s3-endpoint", s3.endpoint,
		"--s3-access-key", testenv.AccessKey, "--s3-bucket", s3.bucket,
		"--http-addr", addr, "--site-timezone", "Asia/Seoul", "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	users, tokens := testUsersFile(t)
	cmd.Env = append(os.Environ(), "GRIDLAKE_AUTH_USERS_FILE="+users)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return &speedProc{cmd: cmd, addr: addr, token: tokens[auth.Viewer]}
}

type testenvS3 struct{ endpoint, bucket string }

func (p *speedProc) get(t *testing.T, path string, v any) int {
	t.Helper()
	resp, err := tokenClient(p.token, 0).Get("http://" + p.addr + path)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}

// waitCaughtUp waits until the process holds every partition at its end.
func (p *speedProc) waitCaughtUp(t *testing.T, ends map[string]int64, partitions int) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		var st speed.Status
		if p.get(t, "/speed/v1/status", &st) == http.StatusOK && len(st.Partitions) == 2*partitions {
			done := true
			for _, pi := range st.Partitions {
				if pi.Next < ends[fmt.Sprintf("%s/%d", pi.Topic, pi.Partition)] {
					done = false
				}
			}
			if done {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("speed process did not catch up")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSpeed_SIGKILLAndRestartConverges kills a speed process with SIGKILL
// while events stream in, restarts it, and checks that its answers equal
// the reference over every valid event.
func TestSpeed_SIGKILLAndRestartConverges(t *testing.T) {
	const partitions = 4
	bin := buildBinary(t)
	broker := testenv.Kafka(t, partitions)
	opts := testenv.MinIO(t)
	s3 := testenvS3{opts.Endpoint, opts.Bucket}
	w := kafkaio.NewWriter([]string{broker})
	defer w.Close()
	sim := simulate.New(simulate.Options{Batteries: 60, Rooms: 10, Rate: 1, Seed: 21,
		Start:  time.Date(2026, 11, 20, 14, 40, 0, 0, time.UTC),
		Faults: simulate.Faults{Duplicate: 0.03, Loss: 0.01, Reorder: 10 * time.Second, Late: 0.01, LateDelay: 20 * time.Minute, Malformed: 0.01}})
	ctx := context.Background()
	if err := sim.Run(ctx, w, simulate.RunOptions{Duration: 10 * time.Minute, Fast: true}); err != nil {
		t.Fatal(err)
	}
	p := startSpeedProc(t, bin, broker, s3)
	p.waitCaughtUp(t, ends(t, broker), partitions)

	// Stream more and kill the process in the middle of it.
	done := make(chan error, 1)
	go func() {
		done <- sim.Run(ctx, w, simulate.RunOptions{Duration: 60 * time.Minute, Fast: true})
	}()
	time.Sleep(300 * time.Millisecond)
	select {
	case <-done:
		t.Fatal("the stream ended before the kill; the test must kill mid-stream")
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	p = startSpeedProc(t, bin, broker, s3)
	p.waitCaughtUp(t, ends(t, broker), partitions)

	all := testenv.ReadAll(t, broker, schemas.TopicBattery, schemas.TopicRoom)
	ref := reference.Build(schemas.DefaultLimits(), all)
	for id := range ref.Readings {
		var got struct{ Windows []agg.Window }
		if code := p.get(t, "/speed/v1/batteries/"+id+"/windows?res=1m&from=0&to=9999999999999", &got); code != http.StatusOK {
			t.Fatalf("battery %s: HTTP %d", id, code)
		}
		want := ref.Windows(id, agg.Minutely)
		if len(got.Windows) != len(want) {
			t.Fatalf("battery %s: %d windows, want %d", id, len(got.Windows), len(want))
		}
		for _, win := range got.Windows {
			if !reference.SameStats(&win.Stats, want[win.Start]) {
				t.Fatalf("battery %s window %d: got %+v want %+v", id, win.Start, win.Stats, want[win.Start])
			}
		}
	}
	seoul, _ := time.LoadLocation("Asia/Seoul")
	for id := range ref.Rooms {
		for _, day := range ref.Days(id, seoul) {
			var got struct{ Report agg.RoomDay }
			if code := p.get(t, fmt.Sprintf("/speed/v1/rooms/%s/days/%s?as_of=%d", id, day, agg.MaxTime-1), &got); code != http.StatusOK {
				t.Fatalf("room %s: HTTP %d", id, code)
			}
			if want := ref.RoomDay(id, day, seoul, agg.MaxTime-1); !reference.SameRoomDay(got.Report, want) {
				t.Fatalf("room %s %s: got %+v want %+v", id, day, got.Report, want)
			}
		}
	}
	// Every rejected message reached the dead-letter queue (at least once;
	// the letter key names its source, so copies are recognisable).
	keys := map[string]bool{}
	for _, m := range testenv.ReadAll(t, broker, schemas.TopicDLQ) {
		keys[string(m.Key)] = true
	}
	if len(keys) != ref.Invalid {
		t.Fatalf("%d distinct dead letters, %d invalid messages", len(keys), ref.Invalid)
	}
}

func ends(t *testing.T, broker string) map[string]int64 {
	out := map[string]int64{}
	for _, m := range testenv.ReadAll(t, broker, schemas.TopicBattery, schemas.TopicRoom) {
		k := fmt.Sprintf("%s/%d", m.Topic, m.Partition)
		out[k] = max(out[k], m.Offset+1)
	}
	return out
}
