// Package chaos runs the parts of a chaos test as separate OS processes
// that the test kills, restarts, stops and continues while they work.
package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Proc is one restartable child process. Every start runs the same command
// line, so a restart finds the same ports and data directories.
type Proc struct {
	Name string
	Path string
	Args []string
	Env  []string // added to the test's environment
	// Log is the file every run's output is appended to.
	Log string
	// Ready, when set, is polled after a start until it returns nil.
	Ready func(ctx context.Context) error

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	err  error // of the last run, once done is closed
}

// Start runs the process and waits up to timeout for it to be ready.
func (p *Proc) Start(timeout time.Duration) error {
	p.mu.Lock()
	if p.cmd != nil && !p.exited() {
		p.mu.Unlock()
		return fmt.Errorf("start %s: already running as pid %d", p.Name, p.cmd.Process.Pid)
	}
	cmd := exec.Command(p.Path, p.Args...)
	cmd.Env = append(os.Environ(), p.Env...)
	if p.Log != "" {
		f, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			p.mu.Unlock()
			return fmt.Errorf("start %s: open log: %w", p.Name, err)
		}
		fmt.Fprintf(f, "---- %s start %s\n", time.Now().Format(time.RFC3339Nano), p.Name)
		cmd.Stdout, cmd.Stderr = f, f
		defer f.Close() // the child holds its own descriptor
	}
	if err := cmd.Start(); err != nil {
		p.mu.Unlock()
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(done)
	}()
	if p.Ready == nil {
		return nil
	}
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := p.Ready(ctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("%s exited before it was ready (%v); log in %s", p.Name, p.Err(), p.Log)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: %w; log in %s", p.Name, timeout, err, p.Log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// exited reports whether the current run ended; p.mu is held.
func (p *Proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Pid is the current run's process id (0 before the first start).
func (p *Proc) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Running reports whether the current run has not exited.
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil && !p.exited()
}

// Err is how the last run ended (nil while it runs or after a clean exit).
func (p *Proc) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Wait waits up to timeout for the current run to exit and returns how it
// ended.
func (p *Proc) Wait(timeout time.Duration) error {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return errors.New(p.Name + " never started")
	}
	select {
	case <-done:
		return p.Err()
	case <-time.After(timeout):
		return fmt.Errorf("%s still running after %s", p.Name, timeout)
	}
}

// Signal sends sig to the current run.
func (p *Proc) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.exited() {
		return fmt.Errorf("signal %s: %s is not running", sig, p.Name)
	}
	return p.cmd.Process.Signal(sig)
}

// Kill sends SIGKILL and waits for the process to be gone. It reports
// whether the process was still running when killed.
func (p *Proc) Kill() (bool, error) {
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return false, nil
	}
	err := p.Wait(30 * time.Second)
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return true, nil
		}
		return false, nil
	}
	return false, err
}

// Stop freezes the process with SIGSTOP; Cont lets it go on.
func (p *Proc) Stop() error { return p.Signal(syscall.SIGSTOP) }

// Cont sends SIGCONT to a stopped process.
func (p *Proc) Cont() error { return p.Signal(syscall.SIGCONT) }

// Terminate asks the process to stop with SIGTERM (after a SIGCONT, in
// case it is stopped) and kills it if it has not exited within timeout.
func (p *Proc) Terminate(timeout time.Duration) error {
	if !p.Running() {
		return p.Err()
	}
	_ = p.Signal(syscall.SIGCONT)
	_ = p.Signal(syscall.SIGTERM)
	if err := p.Wait(timeout); err == nil || !p.Running() {
		return err
	}
	_, _ = p.Kill()
	return fmt.Errorf("%s ignored SIGTERM for %s and was killed", p.Name, timeout)
}

// Close kills the process if it still runs: for test cleanup.
func (p *Proc) Close() {
	if p.Running() {
		_ = p.Signal(syscall.SIGCONT)
		_, _ = p.Kill()
	}
}
