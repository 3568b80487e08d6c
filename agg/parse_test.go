package agg

import (
	"strings"
	"testing"
	"time"
)

// TestParseTime_YearsOneTo9999: both forms are accepted exactly in the
// years 1 to 9999 UTC, and the bounds are those instants.
func TestParseTime_YearsOneTo9999(t *testing.T) {
	if lo, hi := time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli(), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli(); lo != MinTime || hi != MaxTime {
		t.Fatalf("MinTime %d MaxTime %d, want %d %d", MinTime, MaxTime, lo, hi)
	}
	cases := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0001-01-01T00:00:00Z", MinTime, true},
		{"-62135596800000", MinTime, true},
		{"-62135596800001", 0, false},
		{"0001-01-01T00:00:00+00:01", 0, false}, // year 0 in UTC
		{"9999-12-31T23:59:59.999Z", MaxTime - 1, true},
		{"253402300799999", MaxTime - 1, true},
		{"253402300800000", 0, false},
		{"9999-12-31T23:59:59-00:01", 0, false}, // year 10000 in UTC
		{"-9223372036854775808", 0, false},
		{"9223372036854775807", 0, false},
		{"1764000000000", 1764000000000, true},
	}
	for _, c := range cases {
		got, err := ParseTime(c.in)
		if c.ok && (err != nil || got != c.want) {
			t.Errorf("%s: %d, %v; want %d", c.in, got, err, c.want)
		}
		if !c.ok && (err == nil || !strings.Contains(err.Error(), "years 1 to 9999")) {
			t.Errorf("%s: %d, %v; want an error naming the years", c.in, got, err)
		}
	}
}

// TestDay_CompareAcrossYear9999: days compare and count as dates where
// their strings would not ("10000-01-01" < "9999-12-31").
func TestDay_CompareAcrossYear9999(t *testing.T) {
	last, err := ParseDay("9999-12-31")
	if err != nil {
		t.Fatal(err)
	}
	next := last.Next()
	if next.Compare(last) != 1 || last.Compare(next) != -1 || last.Compare(last) != 0 {
		t.Fatalf("%s vs %s compare wrongly", next, last)
	}
	if n := next.DaysSince(Day{1, time.January, 1}); n != 3652059 {
		t.Fatalf("days from 0001-01-01 to %s: %d", next, n)
	}
	if _, err := ParseDay("0000-12-31"); err == nil {
		t.Fatal("ParseDay accepted the year 0")
	}
}
