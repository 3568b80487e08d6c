package pgwire

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
)

// register gives a session its BackendKeyData: a random process id (free
// among live sessions) and a random secret, and makes it reachable by a
// CancelRequest.
func (s *Server) register(ss *session) {
	var b [8]byte
	for {
		rand.Read(b[:])
		// Positive: clients print the process id as a signed integer.
		pid := binary.BigEndian.Uint32(b[:4]) & 0x7fffffff
		if pid == 0 {
			continue
		}
		s.mu.Lock()
		if _, taken := s.sessions[pid]; !taken {
			ss.pid, ss.secret = pid, binary.BigEndian.Uint32(b[4:])
			s.sessions[pid] = ss
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
	}
}

func (s *Server) unregister(ss *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions[ss.pid] == ss {
		delete(s.sessions, ss.pid)
	}
}

// cancelQuery cancels the running query of the session with this process
// id and secret, if any; a wrong secret does nothing, as in PostgreSQL.
func (s *Server) cancelQuery(pid, secret uint32) {
	s.mu.Lock()
	ss := s.sessions[pid]
	s.mu.Unlock()
	if ss == nil {
		s.Log.Debug("CancelRequest for no session", "pid", pid)
		return
	}
	var got, want [4]byte
	binary.BigEndian.PutUint32(got[:], secret)
	binary.BigEndian.PutUint32(want[:], ss.secret)
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		s.Log.Warn("CancelRequest with a wrong secret", "pid", pid)
		return
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.cancel != nil {
		ss.cancel(errCanceledByClient)
	}
}
