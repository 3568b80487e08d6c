package minioproc

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Pause freezes the server (SIGSTOP): connections stay open and requests
// hang, as with a stalled host. It returns once every thread has stopped:
// the signal is delivered asynchronously, and on a loaded machine a thread
// could otherwise still answer a request sent just after Pause.
func (s *Server) Pause() error {
	pid := s.cmd.Process.Pid
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return fmt.Errorf("pause MinIO: %w", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !allStopped(pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("pause MinIO: pid %d has running threads 10s after SIGSTOP", pid)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return nil
}

// allStopped reports whether every thread of pid is in state T (stopped).
func allStopped(pid int) bool {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			return false
		}
		// The state follows the command name in parentheses: "pid (comm) S ...".
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 || i+2 >= len(b) || (b[i+2] != 'T' && b[i+2] != 't') {
			return false
		}
	}
	return true
}

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() error {
	if err := s.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		return fmt.Errorf("resume MinIO: %w", err)
	}
	return nil
}

// Restart starts a stopped server again on the same port and folder, and
// waits until it is ready.
func (s *Server) Restart() error {
	return s.start()
}
