package flightsql

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// FuzzFlightInputs feeds arbitrary bytes to what a Flight SQL client
// sends back or filters with: a prepared statement handle never panics
// and, when it decodes, encodes back to the same statement; a catalog
// filter pattern never panics and matches like a regular LIKE.
func FuzzFlightInputs(f *testing.F) {
	h, _ := encodeHandle(handle{Query: "SELECT $1, $2", Params: []param{{T: "int", V: "-7"}, {T: "ts", V: "2026-11-21T10:00:00.5Z"}}})
	f.Add(h, "battery\\_%", "battery_stats_1m")
	f.Add([]byte(handlePrefix+`{"q":"x","p":[{"t":"float","v":"1e309"}]}`), "%_%", "")
	f.Add([]byte(handlePrefix+`{"p":[{"t":"date","v":"2026-02-30"}]}`), "\\", "\\")
	f.Fuzz(func(t *testing.T, b []byte, pattern, name string) {
		q, args, err := decodeHandle(b, 1<<20)
		if err == nil {
			var ps []param
			for _, a := range args {
				ps = append(ps, paramFor(a))
			}
			again, err := encodeHandle(handle{Query: q, Params: ps})
			if err != nil {
				t.Fatal(err)
			}
			q2, args2, err := decodeHandle(again, 1<<21)
			if err != nil || q2 != q || !reflect.DeepEqual(args2, args) {
				t.Fatalf("handle %q decodes to %q %v, re-encoded to %q %v (%v)", b, q, args, q2, args2, err)
			}
		}
		got := like(pattern, name)
		if want := likeByRegexp(pattern, name); len(pattern) <= maxPattern && got != want {
			t.Fatalf("like(%q, %q) = %v, want %v", pattern, name, got, want)
		}
	})
}

// paramFor is the param a decoded value came from (for the round trip).
func paramFor(v any) param {
	switch x := v.(type) {
	case nil:
		return param{T: "null"}
	case bool:
		return param{T: "bool", V: map[bool]string{true: "true", false: "false"}[x]}
	case int64:
		return intParam(x)
	case uint64:
		return uintParam(x)
	case float64:
		return param{T: "float", V: strings.TrimSpace(formatFloat(x))}
	case string:
		return param{T: "string", V: x}
	case []byte:
		return param{T: "bytes", V: encodeB64(x)}
	case time.Time:
		return param{T: "ts", V: x.UTC().Format(time.RFC3339Nano)}
	}
	panic("unknown value")
}
