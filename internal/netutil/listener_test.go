package netutil

import (
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// flaky fails its first accepts with the given errors, then hands out
// connections.
type flaky struct {
	net.Listener
	errs  []error
	conns chan net.Conn
}

func (f *flaky) Accept() (net.Conn, error) {
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		return nil, err
	}
	c, ok := <-f.conns
	if !ok {
		return nil, net.ErrClosed
	}
	return c, nil
}

func (f *flaky) Close() error { return nil }

func (f *flaky) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

func acceptErr(errno syscall.Errno) error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
}

func TestListener_RetriesDescriptorExhaustionWithBackoff(t *testing.T) {
	f := &flaky{conns: make(chan net.Conn, 2),
		errs: []error{acceptErr(syscall.EMFILE), acceptErr(syscall.EMFILE), acceptErr(syscall.ENFILE), acceptErr(syscall.EMFILE),
			errors.New("some other accept failure")}}
	a, b := net.Pipe()
	defer b.Close()
	f.conns <- a
	l := Wrap(f, nil)
	var slept []time.Duration
	l.sleep = func(d time.Duration, _ <-chan struct{}) { slept = append(slept, d) }
	conn, err := l.Accept()
	if err != nil || conn != a {
		t.Fatalf("Accept after 5 failures = %v, %v; want the connection", conn, err)
	}
	want := []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond, 80 * time.Millisecond}
	if len(slept) != len(want) {
		t.Fatalf("backoffs %v, want %v", slept, want)
	}
	for i := range want {
		if slept[i] != want[i] {
			t.Fatalf("backoffs %v, want %v", slept, want)
		}
	}
	// The listener keeps serving after the failures.
	c, d := net.Pipe()
	defer d.Close()
	f.conns <- c
	if conn, err := l.Accept(); err != nil || conn != c {
		t.Fatalf("second Accept = %v, %v", conn, err)
	}
}

func TestListener_BackoffCapsAtOneSecond(t *testing.T) {
	f := &flaky{conns: make(chan net.Conn, 1)}
	for range 12 {
		f.errs = append(f.errs, acceptErr(syscall.EMFILE))
	}
	a, b := net.Pipe()
	defer b.Close()
	f.conns <- a
	l := Wrap(f, nil)
	var last time.Duration
	l.sleep = func(d time.Duration, _ <-chan struct{}) { last = d }
	if _, err := l.Accept(); err != nil {
		t.Fatal(err)
	}
	if last != MaxBackoff {
		t.Fatalf("last backoff %v, want %v", last, MaxBackoff)
	}
}

func TestListener_CloseEndsBackoffAndAccept(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &flaky{Listener: ln, conns: make(chan net.Conn), errs: []error{acceptErr(syscall.EMFILE)}}
	l := Wrap(f, nil)
	l.sleep = func(d time.Duration, done <-chan struct{}) { <-done } // a backoff that only Close ends
	res := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		res <- err
	}()
	time.Sleep(20 * time.Millisecond)
	l.Close()
	close(f.conns)
	select {
	case err := <-res:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close = %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept did not return after Close")
	}
}

// TestListener_RealTCP checks the wrapper
// over a real TCP listener: a connection is accepted, and Close ends Accept.
func TestListener_RealTCP(t *testing.T) {
	ln, err := ListenFunc(nil)("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			c.Close()
		}
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	ln.Close()
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close = %v", err)
	}
}
