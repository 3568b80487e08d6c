package serving

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/alertd"
	"github.com/gridlake/gridlake/alerts"
	"github.com/gridlake/gridlake/internal/httpx"
	"github.com/gridlake/gridlake/schemas"
)

var alertRuleName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// parseAlertFilter reads rule, kind, severity and subject (exact, or a
// prefix ending in *), and with times also from and to (bounds of the
// transition time).
func parseAlertFilter(q url.Values, times bool) (alertd.Filter, error) {
	f := alertd.Filter{Rule: q.Get("rule"), Kind: q.Get("kind"), Severity: q.Get("severity"), Subject: q.Get("subject")}
	if f.Rule != "" && !alertRuleName.MatchString(f.Rule) {
		return f, fmt.Errorf("rule: send a rule name (lower-case letters, digits and _), listed at GET /v1/alerts/rules (got %q)", clip(f.Rule))
	}
	switch alerts.Kind(f.Kind) {
	case "", alerts.KindThreshold, alerts.KindSilent, alerts.KindFleetShare, alerts.KindRoomWaste, alerts.KindPipeline:
	default:
		return f, fmt.Errorf("kind: send threshold, silent, fleet_share, room_waste or pipeline (got %q)", clip(f.Kind))
	}
	switch f.Severity {
	case "", "critical", "warning", "info":
	default:
		return f, fmt.Errorf("severity: send critical, warning or info (got %q)", clip(f.Severity))
	}
	if f.Subject != "" {
		s, prefix := strings.CutSuffix(f.Subject, "*")
		if !(prefix && s == "") && !schemas.ValidIDString(s) {
			return f, fmt.Errorf("subject: send a battery id, room/device, fleet or a job name, or a prefix ending in * (got %q)", clip(f.Subject))
		}
	}
	if !times {
		if q.Get("from") != "" || q.Get("to") != "" {
			return f, errors.New("from and to: only GET /v1/alerts/history takes a time range")
		}
		return f, nil
	}
	var err error
	if s := q.Get("from"); s != "" {
		if f.From, err = agg.ParseTime(s); err != nil {
			return f, fmt.Errorf("from: %w", err)
		}
	}
	if s := q.Get("to"); s != "" {
		if f.To, err = agg.ParseTime(s); err != nil {
			return f, fmt.Errorf("to: %w", err)
		}
	}
	if f.From != 0 && f.To != 0 && f.To <= f.From {
		return f, errors.New("to must be after from")
	}
	return f, nil
}

// historyParams are the parameters of /v1/alerts/history.
type historyParams struct {
	filter alertd.Filter
	limit  int
	cursor uint64 // 0: the newest page
}

func parseHistory(q url.Values, lim Limits) (historyParams, error) {
	var p historyParams
	var err error
	if p.filter, err = parseAlertFilter(q, true); err != nil {
		return p, err
	}
	if p.limit, err = httpx.IntParam(q, "limit", min(100, lim.MaxPage), 1, lim.MaxPage, "http.max_page"); err != nil {
		return p, err
	}
	if s := q.Get("cursor"); s != "" {
		if p.cursor, err = strconv.ParseUint(s, 10, 63); err != nil || p.cursor == 0 {
			return p, fmt.Errorf("cursor: send the next_cursor of the page before (got %q)", clip(s))
		}
	}
	return p, nil
}

// checkSilenceID refuses what no silence id can be (16 hex digits).
func checkSilenceID(id string) error {
	if len(id) != 16 || strings.Trim(id, "0123456789abcdef") != "" {
		return fmt.Errorf("silence id: send the 16 hex digits GET /v1/alerts/silences lists (got %q)", clip(id))
	}
	return nil
}
