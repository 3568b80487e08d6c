package jobs

import (
	"testing"
	"time"
)

func TestSchedule_SlotsReplicasAgreeOn(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	seoul, _ := time.LoadLocation("Asia/Seoul")
	closeSched, err := CloseSchedule(seoul, time.Hour+30*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name       string
		s          Schedule
		now        string
		slot, next string
	}{
		{"interval, fired late", MustSchedule(5*time.Minute, ""), "2026-11-22T10:05:00.300Z", "2026-11-22T10:05:00Z", "2026-11-22T10:10:00Z"},
		{"interval, clock ahead", MustSchedule(5*time.Minute, ""), "2026-11-22T10:04:59.700Z", "2026-11-22T10:05:00Z", "2026-11-22T10:05:00Z"},
		{"cron with seconds", MustSchedule(0, "*/2 * * * * *"), "2026-11-22T10:00:03.100Z", "2026-11-22T10:00:04Z", "2026-11-22T10:00:04Z"},
		{"cron hourly", MustSchedule(0, "0 * * * *"), "2026-11-22T10:20:00Z", "2026-11-22T10:00:00Z", "2026-11-22T11:00:00Z"},
		// Local midnight plus 1h30 in Seoul is 16:30 UTC the day before.
		{"daily close", closeSched, "2026-11-22T16:29:59.500Z", "2026-11-22T16:30:00Z", "2026-11-22T16:30:00Z"},
		{"daily close, prev", closeSched, "2026-11-23T03:00:00Z", "2026-11-22T16:30:00Z", "2026-11-23T16:30:00Z"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			now := at(c.now)
			if got := c.s.Slot(now); !got.Equal(at(c.slot)) {
				t.Fatalf("slot at %s: %s, want %s", c.now, got.UTC(), c.slot)
			}
			if got := c.s.Next(now); !got.Equal(at(c.next)) {
				t.Fatalf("next after %s: %s, want %s", c.now, got.UTC(), c.next)
			}
		})
	}
	if _, err := ParseSchedule(0, "every tuesday"); err == nil {
		t.Fatal("a bad cron expression was accepted")
	}
	if _, err := ParseSchedule(100*time.Millisecond, ""); err == nil {
		t.Fatal("a sub-second interval was accepted")
	}
	if !MustSchedule(0, "").Manual() {
		t.Fatal("an empty schedule is manual")
	}
}

// MustSchedule is ParseSchedule for schedules known to be valid.
func MustSchedule(every time.Duration, expr string) Schedule {
	s, err := ParseSchedule(every, expr)
	if err != nil {
		panic(err)
	}
	return s
}
