package s3server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// AWS Signature Version 4, verified the way MinIO does it
// (minio/cmd/signature-v4*.go), so a client that works against one works
// against the other and a request MinIO refuses is refused here too.

const (
	signV4Algorithm = "AWS4-HMAC-SHA256"
	iso8601Format   = "20060102T150405Z"
	yyyymmdd        = "20060102"
	serviceS3       = "s3"
	scopeTerminal   = "aws4_request"

	// Values of x-amz-content-sha256 besides the hex SHA-256 of the body.
	unsignedPayload          = "UNSIGNED-PAYLOAD"
	streamingPayload         = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	streamingPayloadTrailer  = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	streamingUnsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	emptySHA256              = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

	// maxClockSkew is how far a request's x-amz-date may be from the
	// server clock: it bounds how long a captured request can be replayed.
	maxClockSkew = 15 * time.Minute
	// maxPresignExpiry is the longest X-Amz-Expires S3 accepts (a week).
	maxPresignExpiry = 7 * 24 * time.Hour
)

// credential is the Credential=AK/date/region/service/aws4_request element.
type credential struct {
	accessKey string
	date      time.Time
	region    string
}

func (c credential) scope() string {
	return c.date.Format(yyyymmdd) + "/" + c.region + "/" + serviceS3 + "/" + scopeTerminal
}

// signedAuth is what a request claims about its signature, from the
// Authorization header or from the presigned query.
type signedAuth struct {
	cred          credential
	signedHeaders []string
	signature     string
	date          time.Time     // x-amz-date: when it was signed
	expires       time.Duration // presigned only
}

// parseCredential parses "AK/20260102/us-east-1/s3/aws4_request". The access
// key may itself contain slashes, so the scope is the last four elements.
func parseCredential(s string) (credential, *apiError) {
	parts := strings.Split(strings.TrimRight(strings.TrimSpace(s), "/"), "/")
	if len(parts) < 5 {
		return credential{}, errCredMalformed
	}
	n := len(parts)
	c := credential{accessKey: strings.Join(parts[:n-4], "/"), region: parts[n-3]}
	if c.accessKey == "" {
		return credential{}, errCredMalformed
	}
	date, err := time.Parse(yyyymmdd, parts[n-4])
	if err != nil {
		return credential{}, errCredDate
	}
	c.date = date
	if parts[n-2] != serviceS3 {
		return credential{}, errCredService
	}
	if parts[n-1] != scopeTerminal {
		return credential{}, errCredTerminal
	}
	return c, nil
}

// parseSignedHeaders parses "host;x-amz-date"; S3 refuses a signature that
// does not cover the Host header, since the host is what it was meant for.
func parseSignedHeaders(s string) ([]string, *apiError) {
	if s == "" {
		return nil, errMissingFields
	}
	names := strings.Split(s, ";")
	if !slices.Contains(names, "host") {
		return nil, errUnsignedHeaders
	}
	return names, nil
}

// parseAuthorization parses
// "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...".
// Like MinIO it ignores spaces and wants exactly the three fields in order.
func parseAuthorization(h string) (signedAuth, *apiError) {
	h = strings.ReplaceAll(h, " ", "")
	rest, ok := strings.CutPrefix(h, signV4Algorithm)
	if !ok {
		return signedAuth{}, errSignatureVersion
	}
	fields := strings.Split(rest, ",")
	if len(fields) != 3 {
		return signedAuth{}, errMissingFields
	}
	var a signedAuth
	cred, ok := strings.CutPrefix(fields[0], "Credential=")
	if !ok {
		return signedAuth{}, errMissingCredTag
	}
	var err *apiError
	if a.cred, err = parseCredential(cred); err != nil {
		return signedAuth{}, err
	}
	names, ok := strings.CutPrefix(fields[1], "SignedHeaders=")
	if !ok {
		return signedAuth{}, errMissingSignHeadersTag
	}
	if a.signedHeaders, err = parseSignedHeaders(names); err != nil {
		return signedAuth{}, err
	}
	if a.signature, ok = strings.CutPrefix(fields[2], "Signature="); !ok {
		return signedAuth{}, errMissingSignTag
	}
	if a.signature == "" {
		return signedAuth{}, errMissingFields
	}
	return a, nil
}

// presignParams are the query parameters of a presigned URL.
var presignParams = []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Expires"}

// parsePresigned parses the X-Amz-* parameters of a presigned URL.
func parsePresigned(q url.Values) (signedAuth, *apiError) {
	for _, p := range presignParams {
		if !q.Has(p) {
			return signedAuth{}, errPresignParams
		}
	}
	if q.Get("X-Amz-Algorithm") != signV4Algorithm {
		return signedAuth{}, errPresignAlgorithm
	}
	var a signedAuth
	var aerr *apiError
	if a.cred, aerr = parseCredential(q.Get("X-Amz-Credential")); aerr != nil {
		return signedAuth{}, aerr
	}
	date, err := time.Parse(iso8601Format, q.Get("X-Amz-Date"))
	if err != nil {
		return signedAuth{}, errPresignDate
	}
	a.date = date
	secs, err := strconv.ParseInt(q.Get("X-Amz-Expires"), 10, 64)
	switch {
	case err != nil:
		return signedAuth{}, errPresignExpiresNumber
	case secs < 0:
		return signedAuth{}, errPresignExpiresNegative
	case secs > int64(maxPresignExpiry/time.Second):
		return signedAuth{}, errPresignExpiresMax
	}
	a.expires = time.Duration(secs) * time.Second
	if a.signedHeaders, aerr = parseSignedHeaders(q.Get("X-Amz-SignedHeaders")); aerr != nil {
		return signedAuth{}, aerr
	}
	if a.signature = q.Get("X-Amz-Signature"); a.signature == "" {
		return signedAuth{}, errMissingFields
	}
	return a, nil
}

// requestDate is x-amz-date, or Date when a client signs that instead.
func requestDate(r *http.Request) (time.Time, *apiError) {
	v := r.Header.Get("X-Amz-Date")
	if v == "" {
		v = r.Header.Get("Date")
	}
	if v == "" {
		return time.Time{}, errMissingDate
	}
	t, err := time.Parse(iso8601Format, v)
	if err != nil {
		return time.Time{}, errMalformedDate
	}
	return t, nil
}

// signedHeaderValues collects the values of the headers a signature covers.
// Go's server moves some headers out of r.Header (Host, Expect,
// Transfer-Encoding, and Content-Length on chunked bodies), so those are
// rebuilt from the request as MinIO does.
func signedHeaderValues(r *http.Request, names []string, q url.Values) (http.Header, *apiError) {
	h := make(http.Header, len(names))
	for _, name := range names {
		key := http.CanonicalHeaderKey(name)
		if v, ok := r.Header[key]; ok {
			h[key] = v
			continue
		}
		if v, ok := q[name]; ok {
			h[key] = v
			continue
		}
		switch name {
		case "host":
			h.Set(key, r.Host)
		case "expect":
			h.Set(key, "100-continue")
		case "transfer-encoding":
			h[key] = r.TransferEncoding
		case "content-length":
			h.Set(key, strconv.FormatInt(r.ContentLength, 10))
		default:
			return nil, errUnsignedHeaders
		}
	}
	return h, nil
}

// canonicalRequest is step one of SigV4: the request reduced to the
// parts the signature covers, in one agreed spelling.
func canonicalRequest(method, path, query string, headers http.Header, payload string) string {
	names := make([]string, 0, len(headers))
	for k := range headers {
		names = append(names, strings.ToLower(k))
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(method + "\n")
	b.WriteString(s3utils.EncodePath(path) + "\n")
	b.WriteString(strings.ReplaceAll(query, "+", "%20") + "\n")
	for _, n := range names {
		b.WriteString(n + ":")
		for i, v := range headers[http.CanonicalHeaderKey(n)] {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strings.Join(strings.Fields(v), " "))
		}
		b.WriteByte('\n')
	}
	b.WriteString("\n" + strings.Join(names, ";") + "\n")
	b.WriteString(payload)
	return b.String()
}

func stringToSign(t time.Time, scope, canonical string) string {
	sum := sha256.Sum256([]byte(canonical))
	return signV4Algorithm + "\n" + t.Format(iso8601Format) + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// signingKey derives the per-day, per-region key from the secret.
func signingKey(secret string, c credential) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), c.date.Format(yyyymmdd))
	k = hmacSHA256(k, c.region)
	k = hmacSHA256(k, serviceS3)
	return hmacSHA256(k, scopeTerminal)
}

func sign(key []byte, toSign string) string { return hex.EncodeToString(hmacSHA256(key, toSign)) }

// sameSignature compares in constant time so the answer's timing does not
// tell an attacker how many leading characters of a forgery were right.
func sameSignature(a, b string) bool { return hmac.Equal([]byte(a), []byte(b)) }
