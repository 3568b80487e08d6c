package devstack

import (
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/gridlake/gridlake/internal/minioproc"
	"github.com/gridlake/gridlake/objstore"
	"github.com/gridlake/gridlake/objstore/s3server"
)

// Kind is an S3 server implementation.
type Kind string

const (
	// Embedded is objstore/s3server, in the process.
	Embedded Kind = "embedded"
	// MinIO is a MinIO server process (bin/minio from make deps, or
	// GRIDLAKE_MINIO_BIN).
	MinIO Kind = "minio"
)

// ServerOptions configure the S3 server StartServer starts.
type ServerOptions struct {
	// Kind is the server to start; empty starts MinIO when its binary is
	// found and the embedded server otherwise.
	Kind Kind
	// Dir holds the objects: Dir/s3 for the embedded server, Dir/minio
	// for MinIO.
	Dir string
	// Addr is the embedded server's listen address; empty is 127.0.0.1:0.
	Addr string
	// Limits bound the embedded server's connections.
	Limits s3server.Limits
	// AccessKey and SecretKey sign requests to the embedded server; empty
	// takes MinIO's test keys, which a MinIO process always uses.
	AccessKey, SecretKey string
	// Log receives the embedded server's failures; nil discards.
	Log *slog.Logger
	// Fallback, if set, hears why MinIO was not found when Kind is empty.
	Fallback func(error)
}

// Server is a running S3 server.
type Server struct {
	Endpoint string
	Kind     Kind
	// MinIO is the process of a MinIO server, for tests that pause, kill
	// and restart it.
	MinIO    *minioproc.Server
	embedded *s3server.Server

	accessKey, secretKey string
}

// StartServer starts the S3 server o asks for.
func StartServer(o ServerOptions) (*Server, error) {
	kind := o.Kind
	var bin string
	if kind == "" || kind == MinIO {
		var err error
		if bin, err = minioproc.Binary(); err != nil {
			if kind == MinIO {
				return nil, err
			}
			if o.Fallback != nil {
				o.Fallback(err)
			}
			kind = Embedded
		} else {
			kind = MinIO
		}
	}
	switch kind {
	case MinIO:
		p, err := minioproc.Start(bin, filepath.Join(o.Dir, "minio"))
		if err != nil {
			return nil, err
		}
		return &Server{Endpoint: p.Endpoint, Kind: MinIO, MinIO: p, accessKey: minioproc.AccessKey, secretKey: minioproc.SecretKey}, nil
	case Embedded:
		ak, sk := o.AccessKey, o.SecretKey
		if ak == "" && sk == "" {
			ak, sk = minioproc.AccessKey, minioproc.SecretKey
		}
		log := o.Log
		if log == nil {
			log = slog.New(slog.DiscardHandler)
		}
		srv := s3server.New(filepath.Join(o.Dir, "s3"), ak, sk, log)
		srv.Limits = o.Limits
		addr := o.Addr
		if addr == "" {
			addr = "127.0.0.1:0"
		}
		if err := srv.Start(addr); err != nil {
			return nil, err
		}
		return &Server{Endpoint: srv.Addr(), Kind: Embedded, embedded: srv, accessKey: ak, secretKey: sk}, nil
	}
	return nil, fmt.Errorf("unknown S3 server kind %q (embedded, minio)", kind)
}

// StoreOptions are the options of a store on bucket of the server.
func (s *Server) StoreOptions(bucket string) objstore.Options {
	return objstore.Options{Endpoint: s.Endpoint, AccessKey: s.accessKey, SecretKey: s.secretKey, Bucket: bucket}
}

// Failed delivers the error that ended an embedded server on its own;
// nil (never ready) for MinIO, whose process is watched by nobody here.
func (s *Server) Failed() <-chan error {
	if s.embedded == nil {
		return nil
	}
	return s.embedded.Failed()
}

// Close stops the server.
func (s *Server) Close() {
	switch {
	case s.MinIO != nil:
		s.MinIO.Stop()
	case s.embedded != nil:
		_ = s.embedded.Close()
	}
}
