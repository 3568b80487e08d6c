package s3server

import (
	"errors"
	"fmt"
	"net/http"
)

// apiError is an S3 error answer: the HTTP status, the code clients switch
// on, and a message. A body reader returns one to have its request answered
// with it (a chunk signature that does not match is a 403, not a 400).
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

// The answers to requests that fail authentication, with MinIO's codes,
// statuses and wording (minio/cmd/api-errors.go).
var (
	errAccessDenied           = &apiError{http.StatusForbidden, "AccessDenied", "Access Denied."}
	errSignatureMismatch      = &apiError{http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method."}
	errInvalidAccessKey       = &apiError{http.StatusForbidden, "InvalidAccessKeyId", "The Access Key Id you provided does not exist in our records."}
	errTimeSkewed             = &apiError{http.StatusForbidden, "RequestTimeTooSkewed", "The difference between the request time and the server's time is too large."}
	errPresignExpired         = &apiError{http.StatusForbidden, "AccessDenied", "Request has expired"}
	errPresignNotYetValid     = &apiError{http.StatusForbidden, "AccessDenied", "Request is not valid yet"}
	errSignatureVersion       = &apiError{http.StatusBadRequest, "InvalidRequest", "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256."}
	errMissingFields          = &apiError{http.StatusBadRequest, "AuthorizationHeaderMalformed", "The authorization header is malformed; it needs Credential, SignedHeaders and Signature."}
	errMissingCredTag         = &apiError{http.StatusBadRequest, "AuthorizationHeaderMalformed", "Missing Credential field for this request."}
	errMissingSignHeadersTag  = &apiError{http.StatusBadRequest, "AuthorizationHeaderMalformed", "Signature header missing SignedHeaders field."}
	errMissingSignTag         = &apiError{http.StatusBadRequest, "AuthorizationHeaderMalformed", "Signature header missing Signature field."}
	errCredMalformed          = &apiError{http.StatusBadRequest, "AuthorizationQueryParametersError", `Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".`}
	errCredDate               = &apiError{http.StatusBadRequest, "AuthorizationQueryParametersError", `Error parsing the X-Amz-Credential parameter; incorrect date format. This date in the credential must be in the format "yyyyMMdd".`}
	errCredService            = &apiError{http.StatusBadRequest, "AuthorizationParametersError", `Error parsing the Credential/X-Amz-Credential parameter; incorrect service. This endpoint belongs to "s3".`}
	errCredTerminal           = &apiError{http.StatusBadRequest, "AuthorizationQueryParametersError", `Error parsing the X-Amz-Credential parameter; incorrect terminal. This endpoint uses "aws4_request".`}
	errUnsignedHeaders        = &apiError{http.StatusBadRequest, "AccessDenied", "There were headers present in the request which were not signed"}
	errMissingDate            = &apiError{http.StatusBadRequest, "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header"}
	errMalformedDate          = &apiError{http.StatusBadRequest, "MalformedDate", "Invalid date format header, expected to be in ISO8601 format."}
	errPresignParams          = &apiError{http.StatusBadRequest, "AuthorizationQueryParametersError", "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters."}
	errPresignAlgorithm       = &apiError{http.StatusBadRequest, "AuthorizationQueryParametersError", `X-Amz-Algorithm only supports "AWS4-HMAC-SHA256".`}
	errPresignDate            = &apiError{http.StatusBadRequest, "AuthorizationQueryParametersError", `X-Amz-Date must be in the ISO8601 Long Format "yyyyMMdd'T'HHmmss'Z'"`}
	errPresignExpiresNumber   = &apiError{http.StatusBadRequest, "AuthorizationQueryParametersError", "X-Amz-Expires should be a number"}
	errPresignExpiresNegative = &apiError{http.StatusBadRequest, "AuthorizationQueryParametersError", "X-Amz-Expires must be non-negative"}
	errPresignExpiresMax      = &apiError{http.StatusBadRequest, "AuthorizationQueryParametersError", "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds"}
	errMalformedQuery         = &apiError{http.StatusBadRequest, "InvalidArgument", "The query string is not valid URL encoding."}
	errContentSHA256Mismatch  = &apiError{http.StatusBadRequest, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed."}
	errChecksumMismatch       = &apiError{http.StatusBadRequest, "XAmzContentChecksumMismatch", "The provided 'x-amz-checksum' header does not match what was computed."}
	errMissingContentLength   = &apiError{http.StatusLengthRequired, "MissingContentLength", "You must provide the x-amz-decoded-content-length header with an aws-chunked body."}
	errIncompleteBody         = &apiError{http.StatusBadRequest, "IncompleteBody", "You did not provide the number of bytes specified by the Content-Length HTTP header."}
)

// badChunk is a malformed aws-chunked body; MinIO answers these 400 BadRequest.
func badChunk(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, "BadRequest", "malformed chunked encoding: " + fmt.Sprintf(format, args...)}
}

func writeAPIError(w http.ResponseWriter, r *http.Request, e *apiError) {
	writeError(w, r, e.status, e.code, e.message)
}

// writeBodyError answers a request whose body could not be read: with the
// verifier's answer when a signature or hash failed, else IncompleteBody.
func writeBodyError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		writeAPIError(w, r, ae)
		return
	}
	writeError(w, r, http.StatusBadRequest, "IncompleteBody", err.Error())
}
