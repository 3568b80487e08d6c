package bench

import (
	"fmt"
	"math/rand/v2"
)

// endpoint is one kind of request of the load mix and its share of it.
type endpoint struct {
	Name  string
	Share float64
	Path  func(r *rand.Rand) string
}

// dashboardMix is what the dashboard asks of /v1 (serving/dashboard/app.js):
// most requests are battery pages (a battery's last-hour 1m stats and its
// latest reading); the fleet page polls fleet now, the fleet's last hour,
// the out-of-range list and the status every few seconds; the hotel page
// asks for today by room. At 2,000 requests/s, 0.5% each is ten fleet-page
// polls a second: fifty dashboards refreshing every five seconds.
func dashboardMix(batteries int) []endpoint {
	battery := func(r *rand.Rand) string { return fmt.Sprintf("B-%05d", r.IntN(max(batteries, 1))) }
	return []endpoint{
		{"battery_last_hour_1m", 0.725, func(r *rand.Rand) string { return "/v1/batteries/" + battery(r) + "/stats?res=1m" }},
		{"battery_latest", 0.25, func(r *rand.Rand) string { return "/v1/batteries/" + battery(r) }},
		{"fleet_now", 0.005, func(*rand.Rand) string { return "/v1/fleet/now?stale_after=60s" }},
		{"fleet_last_hour_1m", 0.005, func(*rand.Rand) string { return "/v1/fleet/stats?res=1m" }},
		{"out_of_range_page", 0.005, func(*rand.Rand) string { return "/v1/batteries?soc_below=20&limit=50" }},
		{"hotel_today", 0.005, func(*rand.Rand) string { return "/v1/hotel/days/today?by=room&limit=50" }},
		{"status", 0.005, func(*rand.Rand) string { return "/v1/status" }},
	}
}

// pick draws an endpoint index by share; the last takes any remainder.
func pick(mix []endpoint, r *rand.Rand) int {
	x := r.Float64()
	for i, e := range mix {
		if x < e.Share {
			return i
		}
		x -= e.Share
	}
	return len(mix) - 1
}
