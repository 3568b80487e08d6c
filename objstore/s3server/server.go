// Package s3server is the small S3-compatible server that `gridlake up`
// embeds, so a single binary runs the whole pipeline on one machine with the
// same minio-go code path it uses against MinIO in production.
//
// It serves path-style requests for the operations gridlake and common
// clients (minio-go, awscli for simple use) need: buckets (create, head,
// location), objects (put, get with ranges, head, delete), ListObjectsV2,
// multipart uploads, and conditional puts (If-None-Match: *, If-Match), which
// the lake's manifests depend on. Objects live as files under a directory.
//
// Every request must carry an AWS Signature Version 4 made with the server's
// key pair, in the Authorization header or a presigned URL, verified as
// MinIO verifies it (sigv4.go, auth.go); payloads are verified as they
// stream (chunked.go). Production uses MinIO (docker-compose.yml).
package s3server

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gridlake/gridlake/internal/netutil"
)

// Server is an S3-compatible server over a directory.
type Server struct {
	root      string
	accessKey string
	secretKey string
	log       *slog.Logger
	now       func() time.Time
	// Limits reaps half-open and idle connections; set before Start.
	Limits Limits

	mu      sync.Mutex // serialises writes so conditional puts are atomic
	srv     *http.Server
	ln      net.Listener
	failed  chan error
	nextID  uint64
	uploads map[string]*upload
}

// Limits bound the server's connections (config http.read_header_timeout,
// http.idle_timeout, http.max_header_bytes); zero fields take the defaults.
type Limits struct {
	ReadHeaderTimeout time.Duration // default 10s
	IdleTimeout       time.Duration // default 2m
	MaxHeaderBytes    int           // default 64 KiB
}

func (l Limits) orDefaults() Limits {
	if l.ReadHeaderTimeout <= 0 {
		l.ReadHeaderTimeout = 10 * time.Second
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = 2 * time.Minute
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = 64 << 10
	}
	return l
}

type upload struct {
	bucket, key string
	parts       map[int]string // part number -> ETag
}

// meta is stored beside each object.
type meta struct {
	ETag         string    `json:"etag"`
	Size         int64     `json:"size"`
	ContentType  string    `json:"content_type"`
	LastModified time.Time `json:"last_modified"`
}

// New returns a server storing objects under root, accepting requests signed
// with the key pair accessKey, secretKey.
func New(root, accessKey, secretKey string, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{root: root, accessKey: accessKey, secretKey: secretKey, log: log, now: time.Now, uploads: map[string]*upload{}}
}

// Start listens on addr (for example 127.0.0.1:0) and serves until Close.
func (s *Server) Start(addr string) error {
	if err := os.MkdirAll(s.root, 0o755); err != nil {
		return fmt.Errorf("object store dir: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen for S3 on %s: %w", addr, err)
	}
	// Accept errors (descriptors exhausted) back off instead of ending
	// the server.
	s.ln = netutil.Wrap(ln, s.log)
	lim := s.Limits.orDefaults()
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: lim.ReadHeaderTimeout, IdleTimeout: lim.IdleTimeout,
		MaxHeaderBytes: lim.MaxHeaderBytes, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	s.failed = make(chan error, 1)
	go func() {
		if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("embedded S3 server stopped", "err", err)
			s.failed <- fmt.Errorf("embedded S3 server on %s: %w", s.ln.Addr(), err)
		}
	}()
	return nil
}

// Failed delivers the error that ended the server on its own (its
// listener failed), so a process can stop with it; never after Close.
func (s *Server) Failed() <-chan error { return s.failed }

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server, waiting briefly for requests in flight.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}

// s3Error is the XML error body S3 clients parse.
type s3Error struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	Resource  string   `xml:"Resource"`
	RequestID string   `xml:"RequestId"`
}

func writeError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	if r.Method == http.MethodHead {
		// A HEAD answer has no body, so the code travels in headers, as
		// MinIO sends them and minio-go reads them.
		w.Header().Set("X-Minio-Error-Code", code)
		w.Header().Set("X-Minio-Error-Desc", `"`+msg+`"`)
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	_ = xml.NewEncoder(w).Encode(s3Error{Code: code, Message: msg, Resource: r.URL.Path, RequestID: "gridlake"})
}

func writeXML(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/xml")
	_, _ = io.WriteString(w, xml.Header)
	_ = xml.NewEncoder(w).Encode(v)
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := s.authenticate(r); err != nil {
		writeAPIError(w, r, err)
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/")
	bucket, key, _ := strings.Cut(path, "/")
	if bucket == "" {
		writeError(w, r, http.StatusNotImplemented, "NotImplemented", "listing buckets is not supported")
		return
	}
	if !validName(bucket) {
		writeError(w, r, http.StatusBadRequest, "InvalidBucketName", "bucket names are 3-63 lower-case letters, digits, dots and hyphens")
		return
	}
	q := r.URL.Query()
	if key == "" {
		s.serveBucket(w, r, bucket, q)
		return
	}
	if key == "." || key == ".." {
		// A key is one file name on disk (path-escaped): these two would
		// name the bucket's own folders.
		writeError(w, r, http.StatusBadRequest, "InvalidArgument", "object keys . and .. are not supported")
		return
	}
	if !s.bucketExists(bucket) {
		writeError(w, r, http.StatusNotFound, "NoSuchBucket", "the bucket does not exist")
		return
	}
	switch {
	case r.Method == http.MethodPost && q.Has("uploads"):
		s.createUpload(w, bucket, key)
	case r.Method == http.MethodPut && q.Has("uploadId"):
		s.uploadPart(w, r, q)
	case r.Method == http.MethodPost && q.Has("uploadId"):
		s.completeUpload(w, r, bucket, key, q.Get("uploadId"))
	case r.Method == http.MethodDelete && q.Has("uploadId"):
		// Only an upload this server started may be removed: the id names
		// a folder, and ".." would name the whole store.
		id := q.Get("uploadId")
		s.mu.Lock()
		_, ok := s.uploads[id]
		delete(s.uploads, id)
		s.mu.Unlock()
		if !ok {
			writeError(w, r, http.StatusNotFound, "NoSuchUpload", "the specified multipart upload does not exist")
			return
		}
		_ = os.RemoveAll(s.uploadDir(id))
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodPut:
		s.putObject(w, r, bucket, key)
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		s.getObject(w, r, bucket, key)
	case r.Method == http.MethodDelete:
		s.mu.Lock()
		_ = os.Remove(s.dataPath(bucket, key))
		_ = os.Remove(s.metaPath(bucket, key))
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	default:
		writeError(w, r, http.StatusNotImplemented, "NotImplemented", r.Method+" is not supported on objects")
	}
}

func validName(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// Objects are stored flat per bucket with their keys path-escaped, so a key
// "a" and a key "a/b" never collide as file and directory.
func (s *Server) bucketDir(bucket string) string { return filepath.Join(s.root, "buckets", bucket) }
func (s *Server) dataPath(bucket, key string) string {
	return filepath.Join(s.bucketDir(bucket), "data", url.PathEscape(key))
}
func (s *Server) metaPath(bucket, key string) string {
	return filepath.Join(s.bucketDir(bucket), "meta", url.PathEscape(key))
}
func (s *Server) uploadDir(id string) string {
	return filepath.Join(s.root, "uploads", url.PathEscape(id))
}

func (s *Server) bucketExists(bucket string) bool {
	_, err := os.Stat(s.bucketDir(bucket))
	return err == nil
}

func (s *Server) serveBucket(w http.ResponseWriter, r *http.Request, bucket string, q url.Values) {
	switch r.Method {
	case http.MethodPut:
		for _, d := range []string{"data", "meta"} {
			if err := os.MkdirAll(filepath.Join(s.bucketDir(bucket), d), 0o755); err != nil {
				writeError(w, r, http.StatusInternalServerError, "InternalError", err.Error())
				return
			}
		}
		w.WriteHeader(http.StatusOK)
		return
	case http.MethodHead:
		if !s.bucketExists(bucket) {
			writeError(w, r, http.StatusNotFound, "NoSuchBucket", "the bucket does not exist")
			return
		}
		w.WriteHeader(http.StatusOK)
		return
	case http.MethodGet:
	default:
		writeError(w, r, http.StatusNotImplemented, "NotImplemented", r.Method+" is not supported on buckets")
		return
	}
	if !s.bucketExists(bucket) {
		writeError(w, r, http.StatusNotFound, "NoSuchBucket", "the bucket does not exist")
		return
	}
	if q.Has("location") {
		writeXML(w, struct {
			XMLName xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ LocationConstraint"`
		}{})
		return
	}
	s.list(w, r, bucket, q)
}

type listResult struct {
	XMLName               xml.Name       `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListBucketResult"`
	Name                  string         `xml:"Name"`
	Prefix                string         `xml:"Prefix"`
	Delimiter             string         `xml:"Delimiter,omitempty"`
	MaxKeys               int            `xml:"MaxKeys"`
	KeyCount              int            `xml:"KeyCount"`
	IsTruncated           bool           `xml:"IsTruncated"`
	ContinuationToken     string         `xml:"ContinuationToken,omitempty"`
	NextContinuationToken string         `xml:"NextContinuationToken,omitempty"`
	StartAfter            string         `xml:"StartAfter,omitempty"`
	Contents              []listObject   `xml:"Contents"`
	CommonPrefixes        []commonPrefix `xml:"CommonPrefixes"`
}

type listObject struct {
	Key          string `xml:"Key"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Size         int64  `xml:"Size"`
	StorageClass string `xml:"StorageClass"`
}

type commonPrefix struct {
	Prefix string `xml:"Prefix"`
}

// list answers ListObjectsV2 (and V1 with marker, which shares the shape).
func (s *Server) list(w http.ResponseWriter, r *http.Request, bucket string, q url.Values) {
	prefix, delim := q.Get("prefix"), q.Get("delimiter")
	after := q.Get("start-after")
	if t := q.Get("continuation-token"); t != "" {
		after = t
	}
	if m := q.Get("marker"); m != "" {
		after = m
	}
	maxKeys := 1000
	if v, err := strconv.Atoi(q.Get("max-keys")); err == nil && v >= 0 && v < maxKeys {
		maxKeys = v
	}
	entries, err := os.ReadDir(filepath.Join(s.bucketDir(bucket), "meta"))
	if err != nil {
		writeError(w, r, http.StatusInternalServerError, "InternalError", err.Error())
		return
	}
	keys := make([]string, 0, len(entries))
	for _, e := range entries {
		k, err := url.PathUnescape(e.Name())
		if err == nil && strings.HasPrefix(k, prefix) && k > after && !strings.HasPrefix(e.Name(), ".tmp-") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	res := listResult{Name: bucket, Prefix: prefix, Delimiter: delim, MaxKeys: maxKeys,
		ContinuationToken: q.Get("continuation-token"), StartAfter: q.Get("start-after")}
	seen := map[string]bool{}
	for _, k := range keys {
		if res.KeyCount >= maxKeys {
			res.IsTruncated = true
			break
		}
		if delim != "" {
			if i := strings.Index(k[len(prefix):], delim); i >= 0 {
				cp := k[:len(prefix)+i+len(delim)]
				if !seen[cp] {
					seen[cp] = true
					res.CommonPrefixes = append(res.CommonPrefixes, commonPrefix{cp})
					res.KeyCount++
					res.NextContinuationToken = k
				}
				continue
			}
		}
		m, err := s.readMeta(bucket, k)
		if err != nil {
			continue // deleted meanwhile
		}
		res.Contents = append(res.Contents, listObject{Key: k, LastModified: m.LastModified.UTC().Format(time.RFC3339Nano),
			ETag: `"` + m.ETag + `"`, Size: m.Size, StorageClass: "STANDARD"})
		res.KeyCount++
		res.NextContinuationToken = k
	}
	if !res.IsTruncated {
		res.NextContinuationToken = ""
	}
	writeXML(w, res)
}

func (s *Server) readMeta(bucket, key string) (meta, error) {
	var m meta
	data, err := os.ReadFile(s.metaPath(bucket, key))
	if err != nil {
		return m, err
	}
	return m, json.Unmarshal(data, &m)
}

// writeObject stores data read from src as bucket/key atomically: data and
// meta are written to temporary files and renamed into place.
func (s *Server) writeObject(bucket, key, contentType string, src io.Reader, etag func(hash.Hash) string) (meta, error) {
	tmp, err := os.CreateTemp(filepath.Join(s.bucketDir(bucket), "data"), ".tmp-*")
	if err != nil {
		return meta{}, err
	}
	defer os.Remove(tmp.Name())
	h := md5.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), src)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return meta{}, err
	}
	m := meta{ETag: etag(h), Size: n, ContentType: contentType, LastModified: s.now().UTC()}
	mdata, _ := json.Marshal(m)
	mtmp := s.metaPath(bucket, ".tmp-"+key)
	if err := os.WriteFile(mtmp, mdata, 0o644); err != nil {
		return meta{}, err
	}
	if err := os.Rename(tmp.Name(), s.dataPath(bucket, key)); err != nil {
		return meta{}, err
	}
	return m, os.Rename(mtmp, s.metaPath(bucket, key))
}

func md5ETag(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

// precondition checks If-None-Match / If-Match against the current object.
// It is called with s.mu held.
func (s *Server) precondition(r *http.Request, bucket, key string) (int, string) {
	m, err := s.readMeta(bucket, key)
	exists := err == nil
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		if exists && (inm == "*" || strings.Trim(inm, `"`) == m.ETag) {
			return http.StatusPreconditionFailed, "PreconditionFailed"
		}
	}
	if im := r.Header.Get("If-Match"); im != "" {
		if !exists {
			return http.StatusNotFound, "NoSuchKey"
		}
		if im != "*" && strings.Trim(im, `"`) != m.ETag {
			return http.StatusPreconditionFailed, "PreconditionFailed"
		}
	}
	return 0, ""
}

func (s *Server) putObject(w http.ResponseWriter, r *http.Request, bucket, key string) {
	if r.Header.Get("X-Amz-Copy-Source") != "" {
		writeError(w, r, http.StatusNotImplemented, "NotImplemented", "server-side copy is not supported")
		return
	}
	conditional := r.Header.Get("If-None-Match") != "" || r.Header.Get("If-Match") != ""
	// Spool the body first so a slow upload does not hold the lock; the
	// precondition check and the rename happen together under it.
	spool, err := os.CreateTemp(s.root, ".spool-*")
	if err != nil {
		writeError(w, r, http.StatusInternalServerError, "InternalError", err.Error())
		return
	}
	defer os.Remove(spool.Name())
	defer spool.Close()
	// The body's signature or hash is verified as it is read; a failure
	// ends the copy, so nothing unverified is committed.
	if _, err := io.Copy(spool, r.Body); err != nil {
		writeBodyError(w, r, err)
		return
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		writeError(w, r, http.StatusInternalServerError, "InternalError", err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if conditional {
		if status, code := s.precondition(r, bucket, key); status != 0 {
			writeError(w, r, status, code, "at least one of the preconditions you specified did not hold")
			return
		}
	}
	m, err := s.writeObject(bucket, key, r.Header.Get("Content-Type"), spool, md5ETag)
	if err != nil {
		writeError(w, r, http.StatusInternalServerError, "InternalError", err.Error())
		return
	}
	w.Header().Set("ETag", `"`+m.ETag+`"`)
	w.WriteHeader(http.StatusOK)
}

func (s *Server) getObject(w http.ResponseWriter, r *http.Request, bucket, key string) {
	// Meta and data are read under the lock so they belong to one version;
	// the open file stays that version even if a put replaces it.
	s.mu.Lock()
	m, err := s.readMeta(bucket, key)
	var f *os.File
	if err == nil {
		f, err = os.Open(s.dataPath(bucket, key))
	}
	s.mu.Unlock()
	if err != nil {
		writeError(w, r, http.StatusNotFound, "NoSuchKey", "the specified key does not exist")
		return
	}
	defer f.Close()
	if inm := r.Header.Get("If-None-Match"); inm != "" && strings.Trim(inm, `"`) == m.ETag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if im := r.Header.Get("If-Match"); im != "" && strings.Trim(im, `"`) != m.ETag {
		writeError(w, r, http.StatusPreconditionFailed, "PreconditionFailed", "the object changed")
		return
	}
	w.Header().Set("ETag", `"`+m.ETag+`"`)
	if m.ContentType != "" {
		w.Header().Set("Content-Type", m.ContentType)
	}
	// ServeContent handles Range, HEAD and Last-Modified.
	http.ServeContent(w, r, "", m.LastModified, f)
}
