package flightsql

// maxPattern bounds a catalog filter pattern before it is matched.
const maxPattern = 1024

// like matches s against a SQL LIKE pattern as Flight SQL's catalog
// filters use them: % is any run of characters, _ any one, and \ escapes
// the next. The match is linear in len(s) per pattern byte (no
// backtracking blow-up), so no pattern can stall a call.
func like(pattern, s string) bool {
	if len(pattern) > maxPattern {
		return false
	}
	p, t := []rune(pattern), []rune(s)
	// cur[j]: pattern p[:i] matches t[:j].
	cur := make([]bool, len(t)+1)
	next := make([]bool, len(t)+1)
	cur[0] = true
	for i := 0; i < len(p); i++ {
		c, lit := p[i], false
		if c == '\\' && i+1 < len(p) {
			i++
			c, lit = p[i], true
		}
		clear(next)
		switch {
		case c == '%' && !lit:
			any := false
			for j := 0; j <= len(t); j++ {
				any = any || cur[j]
				next[j] = any
			}
		default:
			for j := 1; j <= len(t); j++ {
				next[j] = cur[j-1] && (c == '_' && !lit || t[j-1] == c)
			}
		}
		cur, next = next, cur
	}
	return cur[len(t)]
}
