package s3server

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"strings"
	"time"
)

// Bounds on an aws-chunked body, MinIO's: lines are read into a fixed
// buffer and chunk data is streamed, so they hold before any allocation.
const (
	maxChunkLine = 4 << 10  // one "<hex size>;chunk-signature=<sig>" or trailer line
	maxChunkSize = 16 << 20 // one chunk's data
	maxTrailers  = 8        // trailers announced in x-amz-trailer
)

// crc64NVME is the reversed CRC-64/NVME polynomial (x-amz-checksum-crc64nvme).
const crc64NVME = 0x9a6c9329ac4bc9b5

// sha256Body verifies a body against the SHA-256 its signature covers. The
// mismatch surfaces as the read error at the end, so a handler that spools
// the body before committing never commits a body that was not signed.
type sha256Body struct {
	io.ReadCloser
	h    hash.Hash
	want []byte
}

func (b *sha256Body) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.h.Write(p[:n])
	if err == io.EOF && !bytes.Equal(b.h.Sum(nil), b.want) {
		return n, errContentSHA256Mismatch
	}
	return n, err
}

// chunkSigner computes the chain of chunk signatures of a streaming upload:
// each signs its chunk's SHA-256 and the signature before it, starting from
// the seed signature of the request, so chunks can be neither altered nor
// reordered nor dropped.
type chunkSigner struct {
	key   []byte
	date  time.Time
	scope string
	prev  string
}

// verify checks one signature of the chain and advances it.
func (c *chunkSigner) verify(trailer bool, sum []byte, got string) bool {
	head := "AWS4-HMAC-SHA256-PAYLOAD\n" + c.date.Format(iso8601Format) + "\n" + c.scope + "\n" + c.prev + "\n" + emptySHA256 + "\n"
	if trailer {
		head = "AWS4-HMAC-SHA256-TRAILER\n" + c.date.Format(iso8601Format) + "\n" + c.scope + "\n" + c.prev + "\n"
	}
	want := sign(c.key, head+hex.EncodeToString(sum))
	if !sameSignature(want, got) {
		return false
	}
	c.prev = want
	return true
}

type chunkOptions struct {
	decodedLength int64        // x-amz-decoded-content-length
	signer        *chunkSigner // nil: unsigned chunks
	hasTrailer    bool         // a trailer section follows the last chunk
	trailers      []string     // the trailer names x-amz-trailer announced
}

// chunkReader decodes an aws-chunked body:
//
//	<hex size>[;chunk-signature=<sig>]\r\n<data>\r\n ... 0[;chunk-signature=<sig>]\r\n
//	[<name>:<value>\r\n ... [x-amz-trailer-signature:<sig>\r\n]]\r\n
//
// Each chunk's data is passed on as it arrives and its signature checked at
// its end; the error from a bad signature ends the body, before a handler
// commits it.
type chunkReader struct {
	body     io.ReadCloser
	r        *bufio.Reader
	opts     chunkOptions
	sums     map[string]hash.Hash // checksum trailer name -> running checksum
	got      int64                // data bytes so far
	left     int64                // data bytes left in the current chunk
	chunk    hash.Hash            // SHA-256 of the current chunk
	chunkSig string               // the signature the current chunk claims
	started  bool
	err      error // sticky: once the body failed, every Read fails
}

func newChunkReader(body io.ReadCloser, opts chunkOptions) (*chunkReader, *apiError) {
	if len(opts.trailers) > maxTrailers {
		return nil, &apiError{400, "InvalidArgument", "x-amz-trailer announces more than 8 trailers"}
	}
	c := &chunkReader{body: body, r: bufio.NewReaderSize(body, maxChunkLine), opts: opts, sums: map[string]hash.Hash{}}
	if opts.signer != nil {
		c.chunk = sha256.New()
	}
	for _, name := range opts.trailers {
		alg, ok := strings.CutPrefix(name, "x-amz-checksum-")
		if !ok {
			continue
		}
		h := checksumHash(alg)
		if h == nil {
			return nil, &apiError{400, "InvalidArgument", "unsupported checksum algorithm " + alg + " in x-amz-trailer"}
		}
		c.sums[name] = h
	}
	return c, nil
}

// checksumHash returns a hash for an S3 checksum algorithm, or nil.
func checksumHash(alg string) hash.Hash {
	switch alg {
	case "crc32":
		return crc32.NewIEEE()
	case "crc32c":
		return crc32.New(crc32.MakeTable(crc32.Castagnoli))
	case "crc64nvme":
		return crc64.New(crc64.MakeTable(crc64NVME))
	case "sha1":
		return sha1.New()
	case "sha256":
		return sha256.New()
	}
	return nil
}

func (c *chunkReader) Close() error { return c.body.Close() }

func (c *chunkReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	for c.left == 0 {
		if err := c.nextChunk(); err != nil {
			c.err = err
			return 0, err
		}
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	c.got += int64(n)
	if c.chunk != nil {
		c.chunk.Write(p[:n])
	}
	for _, h := range c.sums {
		h.Write(p[:n])
	}
	switch {
	case err == io.EOF && c.left > 0:
		err = io.ErrUnexpectedEOF
	case err == io.EOF:
		err = nil // the next Read finds the chunk's end missing
	}
	if err != nil {
		c.err = err
	}
	return n, err
}

// nextChunk finishes the current chunk and starts the next; after the last
// one it reads the trailer and returns io.EOF.
func (c *chunkReader) nextChunk() error {
	if c.started {
		if err := c.expectCRLF(); err != nil {
			return err
		}
		if err := c.verifyChunk(); err != nil {
			return err
		}
	}
	c.started = true
	size, sig, err := c.readChunkHeader()
	if err != nil {
		return err
	}
	if size > c.opts.decodedLength-c.got {
		return badChunk("the chunks carry more than x-amz-decoded-content-length (%d bytes)", c.opts.decodedLength)
	}
	if c.chunk != nil {
		c.chunk.Reset()
	}
	c.chunkSig, c.left = sig, size
	if size > 0 {
		return nil
	}
	if err := c.verifyChunk(); err != nil {
		return err
	}
	if c.got != c.opts.decodedLength {
		return errIncompleteBody
	}
	if c.opts.hasTrailer {
		if err := c.readTrailer(); err != nil {
			return err
		}
	}
	return io.EOF
}

func (c *chunkReader) verifyChunk() error {
	if c.opts.signer != nil && !c.opts.signer.verify(false, c.chunk.Sum(nil), c.chunkSig) {
		return errSignatureMismatch
	}
	return nil
}

// readChunkHeader reads "<hex size>;chunk-signature=<64 hex>" (signed) or
// "<hex size>" (unsigned).
func (c *chunkReader) readChunkHeader() (int64, string, error) {
	line, err := c.readLine()
	if err != nil {
		return 0, "", err
	}
	sizeText, ext, _ := strings.Cut(line, ";")
	size, err := parseChunkSize(sizeText)
	if err != nil {
		return 0, "", err
	}
	if c.opts.signer == nil {
		return size, "", nil
	}
	sig, ok := strings.CutPrefix(ext, "chunk-signature=")
	if !ok || len(sig) != 64 {
		return 0, "", badChunk("a chunk has no chunk-signature")
	}
	return size, sig, nil
}

// parseChunkSize parses a chunk's hex size, refusing it past maxChunkSize
// digit by digit so no overflow or huge size gets through.
func parseChunkSize(s string) (int64, error) {
	if s == "" {
		return 0, badChunk("a chunk has no size")
	}
	var size int64
	for i := 0; i < len(s); i++ {
		b := s[i]
		var d byte
		switch {
		case b >= '0' && b <= '9':
			d = b - '0'
		case b >= 'a' && b <= 'f':
			d = b - 'a' + 10
		case b >= 'A' && b <= 'F':
			d = b - 'A' + 10
		default:
			return 0, badChunk("a chunk size is not hex")
		}
		size = size<<4 | int64(d)
		if size > maxChunkSize {
			return 0, badChunk("chunk too big: choose chunk size <= 16MiB")
		}
	}
	return size, nil
}

// readLine reads one line of at most maxChunkLine bytes, without its CRLF.
func (c *chunkReader) readLine() (string, error) {
	b, err := c.r.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return "", badChunk("a line is longer than 4 KiB")
	case err == io.EOF:
		return "", io.ErrUnexpectedEOF
	case err != nil:
		return "", err
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

func (c *chunkReader) expectCRLF() error {
	for _, want := range []byte("\r\n") {
		b, err := c.r.ReadByte()
		if err == io.EOF {
			return io.ErrUnexpectedEOF
		}
		if err != nil {
			return err
		}
		if b != want {
			return badChunk("a chunk does not end with CRLF")
		}
	}
	return nil
}

// readTrailer reads the "name:value" lines after the last chunk: signed
// ones end with x-amz-trailer-signature (minio-go puts a blank line before
// it), unsigned ones with a blank line. Every announced trailer must come,
// and a checksum trailer must match the data.
func (c *chunkReader) readTrailer() error {
	var covered strings.Builder // what the trailer signature signs
	values := map[string]string{}
	sig := ""
	for lines := 0; ; lines++ {
		if lines > 2*maxTrailers+2 {
			return badChunk("too many trailer lines")
		}
		line, err := c.readLine()
		if err != nil {
			return err
		}
		if line == "" {
			if c.opts.signer == nil {
				break
			}
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		name = strings.ToLower(strings.TrimSpace(name))
		if !ok || name == "" {
			return badChunk("a trailer line is not name:value")
		}
		if c.opts.signer != nil && name == "x-amz-trailer-signature" {
			sig = strings.TrimSpace(value)
			break
		}
		if _, dup := values[name]; dup || !announced(c.opts.trailers, name) {
			return badChunk("trailer %q was not announced in x-amz-trailer, or came twice", name)
		}
		values[name] = strings.TrimSpace(value)
		covered.WriteString(line + "\n")
	}
	if c.opts.signer != nil {
		sum := sha256.Sum256([]byte(covered.String()))
		if !c.opts.signer.verify(true, sum[:], sig) {
			return errSignatureMismatch
		}
	}
	if len(values) != len(c.opts.trailers) {
		return errIncompleteBody
	}
	for name, h := range c.sums {
		if values[name] != base64.StdEncoding.EncodeToString(h.Sum(nil)) {
			return errChecksumMismatch
		}
	}
	return nil
}

func announced(names []string, name string) bool {
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}
