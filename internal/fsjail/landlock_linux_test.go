package fsjail

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// TestRestrictThread_ConfinesOnlyTheThread: a confined thread reads and
// writes beneath its rules and nothing else, while the rest of the process
// keeps its access.
func TestRestrictThread_ConfinesOnlyTheThread(t *testing.T) {
	if _, err := ABI(); errors.Is(err, ErrUnsupported) {
		t.Skip("no Landlock on this kernel")
	}
	ro, rw, outside := t.TempDir(), t.TempDir(), t.TempDir()
	for _, d := range []string{ro, outside} {
		if err := os.WriteFile(filepath.Join(d, "f"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	type result struct{ readRO, writeRW, readOut, writeRO error }
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := RestrictThread([]Rule{{Path: ro}, {Path: rw, Write: true}, {Path: "/no/such/dir", Optional: true}}); err != nil {
			t.Error(err)
			ch <- result{}
			return
		}
		var r result
		_, r.readRO = os.ReadFile(filepath.Join(ro, "f"))
		r.writeRW = os.WriteFile(filepath.Join(rw, "g"), []byte("y"), 0o600)
		_, r.readOut = os.ReadFile(filepath.Join(outside, "f"))
		r.writeRO = os.WriteFile(filepath.Join(ro, "g"), []byte("y"), 0o600)
		ch <- r
	}()
	r := <-ch
	if r.readRO != nil || r.writeRW != nil {
		t.Fatalf("allowed access failed: read %v, write %v", r.readRO, r.writeRW)
	}
	if !errors.Is(r.readOut, os.ErrPermission) || !errors.Is(r.writeRO, os.ErrPermission) {
		t.Fatalf("confined thread: read outside %v, write to read-only %v; want permission errors", r.readOut, r.writeRO)
	}
	if _, err := os.ReadFile(filepath.Join(outside, "f")); err != nil {
		t.Fatalf("another goroutine lost access: %v", err)
	}
}
