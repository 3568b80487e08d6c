// Package minioproc starts a real MinIO server as a child process on a
// free loopback port: for integration tests and benchmarks.
package minioproc

import (
	"fmt"
	"github.com/gridlake/gridlake/internal/freeport"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Credentials of the servers it starts.
const (
	AccessKey = "gridlake-test"
	SecretKey = "gridlake-test-secret"
)

// Binary finds the MinIO server that `make deps` installs into the module's
// bin folder (searching up from the working directory and from the running
// executable), or the one GRIDLAKE_MINIO_BIN names.
func Binary() (string, error) {
	if p := os.Getenv("GRIDLAKE_MINIO_BIN"); p != "" {
		return p, nil
	}
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, dir := range starts {
		for ; ; dir = filepath.Dir(dir) {
			p := filepath.Join(dir, "bin", "minio")
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	return "", fmt.Errorf("no MinIO server in a bin/ folder above %v: run `make deps` first, or set GRIDLAKE_MINIO_BIN", starts)
}

// Server is a running MinIO process.
type Server struct {
	Endpoint string
	cmd      *exec.Cmd
	log      *os.File
	// What Restart needs to start it again on the same port and folder.
	bin, dir, console string
}

// Start runs bin as a MinIO server storing under dir and waits until it is
// ready. Its log goes to dir/../minio.log.
func Start(bin, dir string) (*Server, error) {
	p1, err := freeport.Get()
	if err != nil {
		return nil, err
	}
	p2, err := freeport.Get()
	if err != nil {
		return nil, err
	}
	s := &Server{Endpoint: fmt.Sprintf("127.0.0.1:%d", p1), bin: bin, dir: dir, console: fmt.Sprintf("127.0.0.1:%d", p2)}
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

// start runs the server process and waits until it is ready.
func (s *Server) start() error {
	bin, dir, addr := s.bin, s.dir, s.Endpoint
	cmd := exec.Command(bin, "server", dir, "--address", addr, "--console-address", s.console, "--quiet")
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+AccessKey, "MINIO_ROOT_PASSWORD="+SecretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=1")
	logPath := filepath.Join(filepath.Dir(dir), "minio.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err == nil {
		cmd.Stdout, cmd.Stderr = logf, logf
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start MinIO %s: %w", bin, err)
	}
	s.cmd, s.log = cmd, logf
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("MinIO at %s not ready after 60s (log in %s)", addr, logPath)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop kills the server.
func (s *Server) Stop() {
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	if s.log != nil {
		s.log.Close()
	}
}
