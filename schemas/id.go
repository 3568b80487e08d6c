package schemas

// MaxIDLen is the longest battery, room, device or stay id in bytes
// (DESIGN §3).
const MaxIDLen = 128

// ValidID reports whether id is 1..MaxIDLen bytes of ASCII letters, digits
// and -_.:/ (DESIGN §3). The HTTP interfaces refuse any other id before a
// lookup.
func ValidID(id string) bool {
	if len(id) < 1 || len(id) > MaxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '_', c == '.', c == ':', c == '/':
		default:
			return false
		}
	}
	return true
}
