package s3server

import (
	"bufio"
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

func (s *Server) createUpload(w http.ResponseWriter, bucket, key string) {
	s.mu.Lock()
	s.nextID++
	id := fmt.Sprintf("%d-%d", s.now().UnixNano(), s.nextID)
	s.uploads[id] = &upload{bucket: bucket, key: key, parts: map[int]string{}}
	s.mu.Unlock()
	_ = os.MkdirAll(s.uploadDir(id), 0o755)
	writeXML(w, struct {
		XMLName  xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ InitiateMultipartUploadResult"`
		Bucket   string   `xml:"Bucket"`
		Key      string   `xml:"Key"`
		UploadID string   `xml:"UploadId"`
	}{Bucket: bucket, Key: key, UploadID: id})
}

func (s *Server) uploadPart(w http.ResponseWriter, r *http.Request, q url.Values) {
	id := q.Get("uploadId")
	n, err := strconv.Atoi(q.Get("partNumber"))
	s.mu.Lock()
	up, ok := s.uploads[id]
	s.mu.Unlock()
	if !ok || err != nil || n < 1 || n > 10000 {
		writeError(w, r, http.StatusNotFound, "NoSuchUpload", "unknown upload or bad part number")
		return
	}
	f, err := os.Create(filepath.Join(s.uploadDir(id), strconv.Itoa(n)))
	if err != nil {
		writeError(w, r, http.StatusInternalServerError, "InternalError", err.Error())
		return
	}
	h := md5.New()
	_, err = io.Copy(io.MultiWriter(f, h), body(r))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		writeError(w, r, http.StatusBadRequest, "IncompleteBody", err.Error())
		return
	}
	etag := hex.EncodeToString(h.Sum(nil))
	s.mu.Lock()
	up.parts[n] = etag
	s.mu.Unlock()
	w.Header().Set("ETag", `"`+etag+`"`)
	w.WriteHeader(http.StatusOK)
}

type completeRequest struct {
	Parts []struct {
		PartNumber int    `xml:"PartNumber"`
		ETag       string `xml:"ETag"`
	} `xml:"Part"`
}

func (s *Server) completeUpload(w http.ResponseWriter, r *http.Request, bucket, key, id string) {
	var req completeRequest
	if err := xml.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, r, http.StatusBadRequest, "MalformedXML", err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	up, ok := s.uploads[id]
	if !ok || up.bucket != bucket || up.key != key {
		writeError(w, r, http.StatusNotFound, "NoSuchUpload", "unknown upload")
		return
	}
	if status, code := s.precondition(r, bucket, key); status != 0 {
		writeError(w, r, status, code, "at least one of the preconditions you specified did not hold")
		return
	}
	var readers []io.Reader
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	sum := md5.New()
	for i, p := range req.Parts {
		etag := strings.Trim(p.ETag, `"`)
		if up.parts[p.PartNumber] != etag || (i > 0 && p.PartNumber <= req.Parts[i-1].PartNumber) {
			writeError(w, r, http.StatusBadRequest, "InvalidPart", fmt.Sprintf("part %d is missing, out of order or has another ETag", p.PartNumber))
			return
		}
		f, err := os.Open(filepath.Join(s.uploadDir(id), strconv.Itoa(p.PartNumber)))
		if err != nil {
			writeError(w, r, http.StatusInternalServerError, "InternalError", err.Error())
			return
		}
		files = append(files, f)
		readers = append(readers, f)
		raw, _ := hex.DecodeString(etag)
		sum.Write(raw)
	}
	etag := fmt.Sprintf("%s-%d", hex.EncodeToString(sum.Sum(nil)), len(req.Parts))
	m, err := s.writeObject(bucket, key, "", io.MultiReader(readers...), func(hash.Hash) string { return etag })
	if err != nil {
		writeError(w, r, http.StatusInternalServerError, "InternalError", err.Error())
		return
	}
	delete(s.uploads, id)
	_ = os.RemoveAll(s.uploadDir(id))
	writeXML(w, struct {
		XMLName xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ CompleteMultipartUploadResult"`
		Bucket  string   `xml:"Bucket"`
		Key     string   `xml:"Key"`
		ETag    string   `xml:"ETag"`
	}{Bucket: bucket, Key: key, ETag: `"` + m.ETag + `"`})
}

// chunkedReader decodes the aws-chunked body of a streaming SigV4 upload:
// "<hex size>;chunk-signature=<sig>\r\n<data>\r\n" ... "0;...\r\n" followed by
// optional trailers, which are ignored.
type chunkedReader struct {
	r    *bufio.Reader
	left int64
	done bool
}

func newLineReader(r io.Reader) *bufio.Reader { return bufio.NewReaderSize(r, 64<<10) }

func (c *chunkedReader) Read(p []byte) (int, error) {
	for c.left == 0 {
		if c.done {
			return 0, io.EOF
		}
		line, err := c.r.ReadString('\n')
		if err != nil {
			return 0, fmt.Errorf("aws-chunked header: %w", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			continue // the CRLF after a chunk's data
		}
		sizeText, _, _ := strings.Cut(line, ";")
		size, err := strconv.ParseInt(sizeText, 16, 64)
		if err != nil || size < 0 {
			return 0, errors.New("aws-chunked: bad chunk size")
		}
		if size == 0 {
			c.done = true
			return 0, io.EOF
		}
		c.left = size
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if err == io.EOF && c.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}
