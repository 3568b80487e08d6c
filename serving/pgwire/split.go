package pgwire

import "strings"

// scan splits a query text into its statements as PostgreSQL does (on
// semicolons outside '...' strings, "..." identifiers, -- and /* */
// comments and $tag$ dollar quotes; statements with no code dropped) and
// finds the highest $n parameter it names. A parameter above the
// protocol's 65,535 is refused as soon as its digits pass it, before
// anything is sized by it.
func scan(q string) (stmts []string, params int, err error) {
	start, code := 0, false
	end := func(i int) {
		if code {
			stmts = append(stmts, strings.TrimSpace(q[start:i]))
		}
		start, code = i+1, false
	}
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == '-' && strings.HasPrefix(q[i:], "--"):
			if j := strings.IndexByte(q[i:], '\n'); j >= 0 {
				i += j + 1
			} else {
				i = len(q)
			}
			continue
		case c == '/' && strings.HasPrefix(q[i:], "/*"):
			i = skipComment(q, i)
			continue
		case c == ';':
			end(i)
			i++
			continue
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			i++
			continue
		}
		code = true
		switch {
		case c == '\'':
			// E'...' strings escape with backslashes; others only with ''.
			esc := i > 0 && (q[i-1] == 'E' || q[i-1] == 'e') && (i < 2 || !identChar(q[i-2]))
			i = skipQuoted(q, i, '\'', esc)
		case c == '"':
			i = skipQuoted(q, i, '"', false)
		case c == '$' && (i == 0 || !identChar(q[i-1])):
			if i+1 < len(q) && isDigit(q[i+1]) {
				n, j := 0, i+1
				for ; j < len(q) && isDigit(q[j]); j++ {
					if n = n*10 + int(q[j]-'0'); n > maxParams {
						return nil, 0, errorf(codeLimit, "parameter $%s is above the limit of 65,535 parameters a statement may have", digits(q[i+1:]))
					}
				}
				params, i = max(params, n), j
				continue
			}
			if tag := dollarTag(q[i:]); tag != "" {
				if j := strings.Index(q[i+len(tag):], tag); j >= 0 {
					i += 2*len(tag) + j
				} else {
					i = len(q)
				}
				continue
			}
			i++
		default:
			i++
		}
	}
	end(len(q))
	return stmts, params, nil
}

// digits is the run of digits s starts with, shortened for a message.
func digits(s string) string {
	j := 0
	for j < len(s) && isDigit(s[j]) {
		j++
	}
	if j > 20 {
		return s[:20] + "..."
	}
	return s[:j]
}

func skipQuoted(q string, i int, quote byte, backslash bool) int {
	for j := i + 1; j < len(q); j++ {
		switch {
		case backslash && q[j] == '\\':
			j++
		case q[j] == quote:
			if j+1 < len(q) && q[j+1] == quote {
				j++
				continue
			}
			return j + 1
		}
	}
	return len(q)
}

// skipComment skips a /* */ comment; they nest in PostgreSQL.
func skipComment(q string, i int) int {
	depth := 0
	for i < len(q) {
		switch {
		case strings.HasPrefix(q[i:], "/*"):
			depth++
			i += 2
		case strings.HasPrefix(q[i:], "*/"):
			depth--
			i += 2
			if depth == 0 {
				return i
			}
		default:
			i++
		}
	}
	return len(q)
}

// dollarTag is the $tag$ (or $$) s starts with, or "".
func dollarTag(s string) string {
	j := 1
	if j < len(s) && (s[j] == '_' || isLetter(s[j])) {
		for j < len(s) && (s[j] == '_' || isLetter(s[j]) || isDigit(s[j])) {
			j++
		}
	}
	if j < len(s) && s[j] == '$' {
		return s[:j+1]
	}
	return ""
}

func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80 }
func identChar(c byte) bool {
	return c == '_' || c == '$' || isLetter(c) || isDigit(c)
}
