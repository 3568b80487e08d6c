package schemas

import (
	"unicode"
	"unicode/utf8"
)

// MaxIDBytes is the longest id (battery_id, room_id, device_id,
// device_type, stay_id) the wire contract accepts (DESIGN §3).
const MaxIDBytes = 128

// idASCII marks the ASCII bytes an id may hold: letters, digits and -_.:/
var idASCII = func() (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "-_.:/" {
		t[c] = true
	}
	return t
}()

// ValidID reports whether b, valid UTF-8, is an id: 1..MaxIDBytes bytes of
// letters (any script, with their combining marks), decimal digits and
// -_.:/ . Spaces, controls, NUL, quotes and U+FFFD (what a lone surrogate
// escape decodes to) are not: ids show up in every listing and URL.
func ValidID(b []byte) bool {
	if len(b) == 0 || len(b) > MaxIDBytes {
		return false
	}
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if !idASCII[c] {
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError || !(unicode.IsLetter(r) || unicode.IsMark(r) || unicode.IsDigit(r)) {
			return false
		}
		i += n
	}
	return true
}

// ValidIDString is ValidID for an id that arrived as text (an HTTP path or
// parameter), so the API refuses exactly the ids ingest refuses.
func ValidIDString(id string) bool {
	if len(id) == 0 || len(id) > MaxIDBytes {
		return false // before the copy
	}
	return ValidID([]byte(id))
}
