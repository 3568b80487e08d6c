package s3server

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// authenticate verifies a request's SigV4 signature, from its Authorization
// header or its presigned query. For the body it replaces r.Body with a
// reader that verifies the payload as it streams and fails at the end, before
// a handler commits anything, when the payload is not what was signed.
// There is no anonymous access.
func (s *Server) authenticate(r *http.Request) *apiError {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return errMalformedQuery
	}
	switch {
	case r.Header.Get("Authorization") != "":
		return s.verifyHeader(r, q)
	case q.Has("X-Amz-Credential"):
		return s.verifyPresigned(r, q)
	case q.Has("AWSAccessKeyId"):
		// A Signature V2 presigned URL (awscli v1's default for presign):
		// say which version to use rather than treat it as anonymous.
		return errSignatureVersion
	default:
		return errAccessDenied
	}
}

// verifyHeader checks the Authorization header form, in MinIO's order: the
// clock, the header's shape, the signed headers, the key, the signature.
func (s *Server) verifyHeader(r *http.Request, q url.Values) *apiError {
	date, aerr := requestDate(r)
	if aerr != nil {
		return aerr
	}
	if skew := s.now().Sub(date); skew > maxClockSkew || skew < -maxClockSkew {
		return errTimeSkewed
	}
	a, aerr := parseAuthorization(r.Header.Get("Authorization"))
	if aerr != nil {
		return aerr
	}
	a.date = date
	headers, aerr := signedHeaderValues(r, a.signedHeaders, q)
	if aerr != nil {
		return aerr
	}
	secret, aerr := s.secretFor(a.cred.accessKey)
	if aerr != nil {
		return aerr
	}
	// Without the header the payload is signed as empty (MinIO's default),
	// and the body is then held to being empty.
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if payload == "" {
		payload = emptySHA256
	}
	key := signingKey(secret, a.cred)
	canonical := canonicalRequest(r.Method, r.URL.Path, q.Encode(), headers, payload)
	want := sign(key, stringToSign(a.date, a.cred.scope(), canonical))
	if !sameSignature(want, a.signature) {
		return errSignatureMismatch
	}
	// Chunk signatures chain from this one, the seed.
	return wrapBody(r, payload, &chunkSigner{key: key, date: a.date, scope: a.cred.scope(), prev: want})
}

// verifyPresigned checks the presigned query form: the URL is good from
// X-Amz-Date for X-Amz-Expires seconds.
func (s *Server) verifyPresigned(r *http.Request, q url.Values) *apiError {
	a, aerr := parsePresigned(q)
	if aerr != nil {
		return aerr
	}
	secret, aerr := s.secretFor(a.cred.accessKey)
	if aerr != nil {
		return aerr
	}
	headers, aerr := signedHeaderValues(r, a.signedHeaders, q)
	if aerr != nil {
		return aerr
	}
	// User metadata rides in headers; a presigned URL must have fixed it,
	// or whoever holds the URL could attach any.
	for k, v := range r.Header {
		if strings.HasPrefix(k, "X-Amz-Meta-") && headers.Get(k) != v[0] {
			return errUnsignedHeaders
		}
	}
	now := s.now()
	if a.date.After(now.Add(maxClockSkew)) {
		return errPresignNotYetValid
	}
	if now.Sub(a.date) > a.expires {
		return errPresignExpired
	}
	payload := q.Get("X-Amz-Content-Sha256")
	if payload == "" {
		payload = r.Header.Get("X-Amz-Content-Sha256")
	}
	if payload == "" {
		payload = unsignedPayload
	}
	signed := make(url.Values, len(q))
	for k, v := range q {
		if k != "X-Amz-Signature" {
			signed[k] = v
		}
	}
	canonical := canonicalRequest(r.Method, r.URL.Path, signed.Encode(), headers, payload)
	want := sign(signingKey(secret, a.cred), stringToSign(a.date, a.cred.scope(), canonical))
	if !sameSignature(want, a.signature) {
		return errSignatureMismatch
	}
	// A presigned URL has no seed signature to chain chunk signatures from.
	return wrapBody(r, payload, nil)
}

// secretFor returns the secret key of an access key. There is one pair.
func (s *Server) secretFor(accessKey string) (string, *apiError) {
	if accessKey != s.accessKey {
		return "", errInvalidAccessKey
	}
	return s.secretKey, nil
}

// wrapBody puts a verifier over r.Body for the payload the signature names.
func wrapBody(r *http.Request, payload string, seed *chunkSigner) *apiError {
	switch payload {
	case unsignedPayload:
		return nil
	case streamingPayload, streamingPayloadTrailer, streamingUnsignedTrailer:
		if seed == nil {
			return errContentSHA256Mismatch
		}
		return wrapChunked(r, payload, seed)
	}
	want, err := hex.DecodeString(payload)
	if err != nil || len(want) != sha256.Size {
		return errContentSHA256Mismatch
	}
	r.Body = &sha256Body{ReadCloser: r.Body, h: sha256.New(), want: want}
	return nil
}

// wrapChunked decodes an aws-chunked body: signed chunks (with a signed
// trailer for ...-TRAILER) or, for STREAMING-UNSIGNED-PAYLOAD-TRAILER,
// unsigned chunks whose trailing checksum is verified instead.
func wrapChunked(r *http.Request, payload string, seed *chunkSigner) *apiError {
	v := r.Header.Get("X-Amz-Decoded-Content-Length")
	if v == "" {
		return errMissingContentLength
	}
	decoded, err := strconv.ParseInt(v, 10, 64)
	if err != nil || decoded < 0 {
		return &apiError{http.StatusBadRequest, "InvalidArgument", "x-amz-decoded-content-length must be a non-negative integer"}
	}
	opts := chunkOptions{decodedLength: decoded, signer: seed}
	if payload == streamingUnsignedTrailer {
		opts.signer = nil
	}
	if payload != streamingPayload {
		opts.trailers = trailerNames(r.Header.Values("X-Amz-Trailer"))
		opts.hasTrailer = true
	}
	cr, aerr := newChunkReader(r.Body, opts)
	if aerr != nil {
		return aerr
	}
	r.Body = cr
	return nil
}

// trailerNames lists the trailers X-Amz-Trailer announces, lower-cased;
// clients send them as repeated headers or one comma-separated value.
func trailerNames(values []string) []string {
	var names []string
	for _, v := range values {
		for _, n := range strings.Split(v, ",") {
			if n = strings.ToLower(strings.TrimSpace(n)); n != "" && !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	return names
}
