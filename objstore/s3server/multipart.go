package s3server

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
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
	_, err = io.Copy(io.MultiWriter(f, h), r.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// An unverified part is never registered, so it cannot be completed.
		_ = os.Remove(f.Name())
		writeBodyError(w, r, err)
		return
	}
	etag := hex.EncodeToString(h.Sum(nil))
	s.mu.Lock()
	up.parts[n] = etag
	s.mu.Unlock()
	w.Header().Set("ETag", `"`+etag+`"`)
	w.WriteHeader(http.StatusOK)
}

// maxCompleteBytes bounds a CompleteMultipartUpload body: 10000 parts with
// their ETags and checksums fit in well under it.
const maxCompleteBytes = 4 << 20

type completeRequest struct {
	Parts []struct {
		PartNumber int    `xml:"PartNumber"`
		ETag       string `xml:"ETag"`
	} `xml:"Part"`
}

func (s *Server) completeUpload(w http.ResponseWriter, r *http.Request, bucket, key, id string) {
	// Read the whole (bounded) body first, so its hash is verified before
	// the upload is completed.
	data, err := io.ReadAll(io.LimitReader(r.Body, maxCompleteBytes+1))
	if err != nil {
		writeBodyError(w, r, err)
		return
	}
	if len(data) > maxCompleteBytes {
		writeError(w, r, http.StatusBadRequest, "MalformedXML", "the CompleteMultipartUpload body is larger than 4 MiB")
		return
	}
	var req completeRequest
	if err := xml.Unmarshal(data, &req); err != nil {
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
