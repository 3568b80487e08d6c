package minioproc

import (
	"fmt"
	"syscall"
)

// Pause freezes the server (SIGSTOP): connections stay open and requests
// hang, as with a stalled host.
func (s *Server) Pause() error {
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return fmt.Errorf("pause MinIO: %w", err)
	}
	return nil
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
