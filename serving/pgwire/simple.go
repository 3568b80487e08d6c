package pgwire

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"
)

// simple runs a simple-protocol query: each of its statements in order,
// each answered with its rows and CommandComplete, stopping at the first
// error (returned; the caller sends it and ReadyForQuery).
func (ss *session) simple(ctx context.Context, q string) error {
	stmts, _, err := scan(q)
	if err != nil {
		return err
	}
	if len(stmts) == 0 {
		ss.be.Send(&pgproto3.EmptyQueryResponse{})
		return nil
	}
	for _, st := range stmts {
		if tag, ok := sessionSetting(st); ok {
			ss.be.Send(&pgproto3.CommandComplete{CommandTag: []byte(tag)})
			continue
		}
		if isCopy, err := ss.copyStatement(ctx, st); isCopy {
			if err != nil {
				return err
			}
			continue
		}
		w := &rowWriter{ss: ss, describe: true}
		if err := ss.run(ctx, st, nil, w); err != nil {
			return err
		}
		ss.be.Send(w.complete())
	}
	return nil
}

// sessionSetting reports whether a statement is a client session setting
// that drivers send on connect (harmless; answered without running it).
func sessionSetting(q string) (tag string, ok bool) {
	f := strings.Fields(strings.ToLower(strings.TrimRight(strings.TrimSpace(q), ";")))
	if len(f) == 0 {
		return "", false
	}
	switch f[0] {
	case "begin", "start", "commit", "rollback", "end", "discard", "deallocate":
		return strings.ToUpper(f[0]), true
	case "set", "reset":
		if len(f) > 1 {
			name := strings.TrimPrefix(f[1], "session")
			if len(f) > 2 && (f[1] == "session" || f[1] == "local") {
				name = f[2]
			}
			// SET name=value has no space around the '='.
			if i := strings.IndexAny(name, "=:"); i >= 0 {
				name = name[:i]
			}
			switch strings.Trim(name, `"`) {
			case "extra_float_digits", "application_name", "client_encoding", "datestyle", "timezone",
				"search_path", "statement_timeout", "intervalstyle", "client_min_messages", "bytea_output":
				return "SET", true
			}
		}
	}
	return "", false
}
