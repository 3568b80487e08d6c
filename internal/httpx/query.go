package httpx

import (
	"fmt"
	"net/url"
	"strconv"
)

// IntParam reads the whole number name of q in [lo, hi], def when absent;
// setting names the limit that sets hi, if one does.
func IntParam(q url.Values, name string, def, lo, hi int, setting string) (int, error) {
	s := q.Get(name)
	if s == "" {
		return def, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		if setting != "" {
			return 0, fmt.Errorf("%s: send a whole number from %d to %d (%s) (got %q)", name, lo, hi, setting, clip(s))
		}
		return 0, fmt.Errorf("%s: send a whole number from %d to %d (got %q)", name, lo, hi, clip(s))
	}
	return v, nil
}

// NonNegativeParam reads the whole number name of q from 0 up (a version,
// an offset into a log), def when absent.
func NonNegativeParam(q url.Values, name string, def int64) (int64, error) {
	s := q.Get(name)
	if s == "" {
		return def, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%s: send a non-negative whole number", name)
	}
	return v, nil
}

// clip shortens a value quoted back in an error.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
