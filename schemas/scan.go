package schemas

import (
	"errors"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// scanner is a minimal JSON reader for flat objects. It exists because
// decoding is the hottest path of the pipeline: encoding/json with
// reflection costs several times more per event. It validates the full JSON
// grammar (RFC 8259) so "not JSON" is decided exactly, and it never
// allocates except to unescape strings that contain escapes.
type scanner struct {
	data []byte
	pos  int
	buf  []byte // scratch for unescaped strings
}

var errSyntax = errors.New("json syntax")

const maxDepth = 256

// maxScratch is the largest unescaping buffer a scanner keeps between
// messages; a bigger one is dropped so one huge message does not pin it.
const maxScratch = 64 << 10

// JSON value kinds as seen by the field dispatcher.
type valueKind uint8

const (
	vString valueKind = iota + 1
	vNumber
	vTrue
	vFalse
	vNull
	vComposite // object or array, skipped
)

func (s *scanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// next returns the next non-space byte without consuming it, or 0 at end.
func (s *scanner) next() byte {
	s.skipSpace()
	if s.pos < len(s.data) {
		return s.data[s.pos]
	}
	return 0
}

// str reads a string starting at the opening quote. The returned bytes alias
// either the input or the scratch buffer and are valid until the next str.
func (s *scanner) str() ([]byte, error) {
	if s.pos >= len(s.data) || s.data[s.pos] != '"' {
		return nil, errSyntax
	}
	s.pos++
	start := s.pos
	ascii := true
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			out := s.data[start:s.pos]
			s.pos++
			if !ascii && !utf8.Valid(out) {
				return nil, errSyntax
			}
			return out, nil
		case c == '\\':
			return s.strEscaped(start)
		case c < 0x20:
			return nil, errSyntax
		case c >= 0x80:
			ascii = false
		}
		s.pos++
	}
	return nil, errSyntax
}

// strEscaped finishes a string that contains escapes, unescaping into buf.
func (s *scanner) strEscaped(start int) ([]byte, error) {
	s.buf = append(s.buf[:0], s.data[start:s.pos]...)
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			s.pos++
			if !utf8.Valid(s.buf) {
				return nil, errSyntax
			}
			return s.buf, nil
		case c < 0x20:
			return nil, errSyntax
		case c != '\\':
			s.buf = append(s.buf, c)
			s.pos++
			continue
		}
		s.pos++ // backslash
		if s.pos >= len(s.data) {
			return nil, errSyntax
		}
		e := s.data[s.pos]
		s.pos++
		switch e {
		case '"', '\\', '/':
			s.buf = append(s.buf, e)
		case 'b':
			s.buf = append(s.buf, '\b')
		case 'f':
			s.buf = append(s.buf, '\f')
		case 'n':
			s.buf = append(s.buf, '\n')
		case 'r':
			s.buf = append(s.buf, '\r')
		case 't':
			s.buf = append(s.buf, '\t')
		case 'u':
			r, ok := s.hex4()
			if !ok {
				return nil, errSyntax
			}
			if utf16.IsSurrogate(r) {
				// A high surrogate must pair with a following \uXXXX low one;
				// a lone surrogate becomes U+FFFD as encoding/json does.
				save := s.pos
				if s.pos+1 < len(s.data) && s.data[s.pos] == '\\' && s.data[s.pos+1] == 'u' {
					s.pos += 2
					r2, ok := s.hex4()
					if !ok {
						return nil, errSyntax
					}
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						r = dec
					} else {
						s.pos = save
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			s.buf = utf8.AppendRune(s.buf, r)
		default:
			return nil, errSyntax
		}
	}
	return nil, errSyntax
}

func (s *scanner) hex4() (rune, bool) {
	if s.pos+4 > len(s.data) {
		return 0, false
	}
	var r rune
	for _, c := range s.data[s.pos : s.pos+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	s.pos += 4
	return r, true
}

// number reads a JSON number and returns its text.
func (s *scanner) number() ([]byte, error) {
	start := s.pos
	d := s.data
	i := s.pos
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		return nil, errSyntax
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return nil, errSyntax
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return nil, errSyntax
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	s.pos = i
	return d[start:i], nil
}

func (s *scanner) literal(word string) error {
	if len(s.data)-s.pos < len(word) || string(s.data[s.pos:s.pos+len(word)]) != word {
		return errSyntax
	}
	s.pos += len(word)
	return nil
}

// value reads any JSON value. Strings and numbers come back as text;
// objects and arrays are validated and skipped.
func (s *scanner) value(depth int) (valueKind, []byte, error) {
	switch s.next() {
	case '"':
		b, err := s.str()
		return vString, b, err
	case '{', '[':
		return vComposite, nil, s.skipComposite(depth + 1)
	case 't':
		return vTrue, nil, s.literal("true")
	case 'f':
		return vFalse, nil, s.literal("false")
	case 'n':
		return vNull, nil, s.literal("null")
	default:
		b, err := s.number()
		return vNumber, b, err
	}
}

func (s *scanner) skipComposite(depth int) error {
	if depth > maxDepth {
		return errSyntax
	}
	open := s.data[s.pos]
	s.pos++
	closer := byte(']')
	if open == '{' {
		closer = '}'
	}
	if s.next() == closer {
		s.pos++
		return nil
	}
	for {
		if open == '{' {
			if s.next() != '"' {
				return errSyntax
			}
			if _, err := s.str(); err != nil {
				return err
			}
			if s.next() != ':' {
				return errSyntax
			}
			s.pos++
		}
		if _, _, err := s.value(depth); err != nil {
			return err
		}
		switch s.next() {
		case ',':
			s.pos++
		case closer:
			s.pos++
			return nil
		default:
			return errSyntax
		}
	}
}

// bstr views b as a string without copying. The result must not outlive b.
func bstr(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// parseFloat parses JSON number text. JSON numbers are a subset of Go's float
// syntax, so strconv is exact; overflow to ±Inf is reported as not ok.
func parseFloat(b []byte) (float64, bool) {
	f, err := strconv.ParseFloat(bstr(b), 64)
	if err != nil || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// parseInt parses JSON number text that must be a plain integer.
func parseInt(b []byte) (int64, bool) {
	n, err := strconv.ParseInt(bstr(b), 10, 64)
	return n, err == nil
}
