package pgwire

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/gridlake/gridlake/serving"
)

// SQLSTATE codes this package sends itself.
const (
	codeSyntax      = "42601" // syntax_error
	codeProtocol    = "08P01" // protocol_violation
	codeTooMany     = "53300" // too_many_connections
	codeLimit       = "54000" // program_limit_exceeded
	codeCanceled    = "57014" // query_canceled
	codeIdle        = "57P05" // idle_session_timeout
	codeBadPassword = "28P01" // invalid_password
	codeNoAuth      = "28000" // invalid_authorization_specification
	codeNoStatement = "26000" // invalid_sql_statement_name
	codeNoPortal    = "34000" // invalid_cursor_name
	codeFeature     = "0A000" // feature_not_supported
	codeInternal    = "XX000" // internal_error
)

// pgError is an error with its SQLSTATE; fatal ones end the session.
type pgError struct {
	code  string
	msg   string
	fatal bool
}

func (e *pgError) Error() string { return e.msg }

func errorf(code, format string, args ...any) error {
	return &pgError{code: code, msg: fmt.Sprintf(format, args...)}
}

func fatalf(code, format string, args ...any) error {
	return &pgError{code: code, msg: fmt.Sprintf(format, args...), fatal: true}
}

// Why a query's context was cancelled, to tell the client which.
var (
	errCanceledByClient = errors.New("canceling statement due to user request")
	errClientGone       = errors.New("client disconnected")
)

// sqlState maps errors to SQLSTATE codes.
func sqlState(err error) string {
	var pe *pgError
	if errors.As(err, &pe) {
		return pe.code
	}
	var qe *serving.QueryError
	if errors.As(err, &qe) {
		switch qe.Kind {
		case serving.KindRejected:
			return "42501" // insufficient_privilege
		case serving.KindTimeout:
			return codeCanceled
		case serving.KindTooLarge:
			return codeLimit
		case serving.KindBusy:
			return codeTooMany
		case serving.KindUnavailable:
			return "40001"
		}
		return codeSyntax // syntax_error or other user error
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, errCanceledByClient) {
		return codeCanceled
	}
	return codeInternal
}

// errorResponse is the message a client gets for err.
func errorResponse(err error) *pgproto3.ErrorResponse {
	sev := "ERROR"
	var pe *pgError
	if errors.As(err, &pe) && pe.fatal {
		sev = "FATAL"
	}
	return &pgproto3.ErrorResponse{Severity: sev, SeverityUnlocalized: sev, Code: sqlState(err), Message: err.Error()}
}

func isFatal(err error) bool {
	var pe *pgError
	return errors.As(err, &pe) && pe.fatal
}
