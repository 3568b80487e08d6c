package alertd

import (
	"strings"
	"testing"
	"time"

	"github.com/gridlake/gridlake/alerts"
)

// FuzzSilenceBody: any POST /v1/alerts/silences body is refused with a
// message or gives a silence within the bounds: 1 to 8 matchers on rule
// or subject, ending after it starts, in the future, within max.
func FuzzSilenceBody(f *testing.F) {
	for _, s := range []string{
		`{"matchers":[{"field":"rule","value":"battery_hot"}],"duration":"2h","comment":"x"}`,
		`{"matchers":[{"field":"subject","value":"B-","prefix":true}],"starts_at":"2026-11-21T00:00:00Z","ends_at":"2026-11-22T00:00:00Z","comment":"y"}`,
		`{"matchers":[],"duration":"-1h","comment":""}`,
		`{"matchers":[{"field":"rule","value":"a"}],"duration":"9999999h","comment":"z"}`,
		`{"matchers":[{"field":"x"}]}`, `[]`, `null`, `{"matchers":null}`,
	} {
		f.Add([]byte(s))
	}
	now := time.Date(2026, 11, 21, 15, 0, 0, 0, time.UTC)
	const max = 24 * time.Hour
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := ParseSilence(body, now, max)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error without a message")
			}
			return
		}
		if len(s.Matchers) < 1 || len(s.Matchers) > maxMatchers || !s.EndsAt.After(s.StartsAt) || !s.EndsAt.After(now) || s.EndsAt.Sub(s.StartsAt) > max || strings.TrimSpace(s.Comment) == "" {
			t.Fatalf("accepted %q: %+v", body, s)
		}
		for _, m := range s.Matchers {
			if m.Field != "rule" && m.Field != "subject" || m.Value == "" {
				t.Fatalf("accepted matcher %+v", m)
			}
		}
		s.Matches(alerts.Transition{Rule: "battery_hot", Subject: "B-1"})
	})
}
