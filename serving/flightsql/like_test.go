package flightsql

import (
	"encoding/base64"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// likeByRegexp is the reference LIKE: the pattern as an anchored regexp.
func likeByRegexp(pattern, s string) bool {
	var re strings.Builder
	re.WriteString("(?s)^")
	p := []rune(pattern)
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\' && i+1 < len(p):
			i++
			re.WriteString(regexp.QuoteMeta(string(p[i])))
		case c == '%':
			re.WriteString(".*")
		case c == '_':
			re.WriteString(".")
		default:
			re.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	re.WriteString("$")
	return regexp.MustCompile(re.String()).MatchString(s)
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
func encodeB64(b []byte) string    { return base64.StdEncoding.EncodeToString(b) }

func TestLike_MatchesAsSQLDoes(t *testing.T) {
	for _, c := range []struct {
		pattern, s string
		want       bool
	}{
		{"battery%", "battery_now", true},
		{"battery\\_stats\\_1_", "battery_stats_1m", true},
		{"battery\\_stats\\_1_", "batteryxstatsx1m", false},
		{"battery_stats_1_", "batteryxstatsx1m", true},
		{"%now", "battery_now", true},
		{"%now", "battery_now_x", false},
		{"", "", true},
		{"", "a", false},
		{"%", "", true},
		{"_", "é", true},
		{"a%b%c", "aXbYc", true},
		{"a%b%c", "aXcYb", false},
	} {
		if got := like(c.pattern, c.s); got != c.want {
			t.Errorf("like(%q, %q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
		if got := likeByRegexp(c.pattern, c.s); got != c.want {
			t.Errorf("reference like(%q, %q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
	}
}
