// Package httpx holds what every gridlake HTTP surface shares: JSON
// answers and {"error": "..."} bodies, query parameters, the /healthz and
// /readyz endpoints and the profiler's routes.
package httpx

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// WriteJSON answers v as one line of JSON. It encodes before it sends the
// status, so that a value JSON cannot carry (a time past the year 9999, a
// NaN) is a 500 that says so, never a 200 with an empty body.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.Marshal(v)
	writeBody(w, code, body, err)
}

// WriteIndentedJSON is WriteJSON indented by two spaces, for answers read
// by people as often as by programs (/v1/jobs).
func WriteIndentedJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.MarshalIndent(v, "", "  ")
	writeBody(w, code, body, err)
}

func writeBody(w http.ResponseWriter, code int, body []byte, err error) {
	if err != nil {
		code = http.StatusInternalServerError
		body, _ = json.Marshal(ErrorBody(fmt.Sprintf("encode the answer: %s", err)))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}

// ErrorBody is the body of every error answer: {"error": msg}.
func ErrorBody(msg string) map[string]string { return map[string]string{"error": msg} }

// Error answers {"error": msg} with code.
func Error(w http.ResponseWriter, code int, msg string) { WriteJSON(w, code, ErrorBody(msg)) }

// IndentedError answers {"error": msg} indented, as WriteIndentedJSON.
func IndentedError(w http.ResponseWriter, code int, msg string) {
	WriteIndentedJSON(w, code, ErrorBody(msg))
}
