package views

import (
	"fmt"
	"strings"
)

// The SQL that builds the views from raw readings and from each other.
// The serving layer uses the same statements to merge batch and speed rows
// of one window, so both sides compute a window one way.

// StatsSelect aggregates table src (battery_id, ts_ms and the metrics) into
// battery view rows of windows of width ms. The sum of squared deviations
// is var_pop × n, so views merge with agg.Moments exactly like the speed
// layer's windows.
func StatsSelect(src string, width int64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "SELECT battery_id, to_timestamp((ts_ms // %[1]d * %[1]d) / 1000) AS window_start, ts_ms // %[1]d * %[1]d AS window_ms, count(*)::BIGINT AS n", width)
	for _, m := range Metrics {
		fmt.Fprintf(&b, ", min(%[1]s) AS %[1]s_min, max(%[1]s) AS %[1]s_max, avg(%[1]s) AS %[1]s_mean, var_pop(%[1]s) * count(*) AS %[1]s_m2", m)
	}
	b.WriteString(", max(ts_ms) AS last_ts_ms")
	for _, m := range Metrics {
		fmt.Fprintf(&b, ", arg_max(%[1]s, ts_ms) AS last_%[1]s", m)
	}
	fmt.Fprintf(&b, " FROM %s GROUP BY battery_id, window_ms ORDER BY battery_id, window_ms", src)
	return b.String()
}

// FleetSelect aggregates battery view rows of table src into fleet view
// rows: readings, distinct batteries and min/max/mean per metric.
func FleetSelect(src string) string {
	var b strings.Builder
	b.WriteString("SELECT window_start, window_ms, sum(n)::BIGINT AS readings, count(*)::BIGINT AS batteries")
	for _, m := range Metrics {
		fmt.Fprintf(&b, ", min(%[1]s_min) AS %[1]s_min, max(%[1]s_max) AS %[1]s_max, sum(n * %[1]s_mean) / sum(n) AS %[1]s_mean", m)
	}
	fmt.Fprintf(&b, " FROM %s GROUP BY window_start, window_ms ORDER BY window_ms", src)
	return b.String()
}

// MergeSelect merges battery view rows of table src into windows of width
// ms with the parallel formula M2 = Σ M2ᵢ + Σ nᵢ(meanᵢ − mean)², which is
// exact: hours come from minutes, days from hours, and the serving layer
// merges batch and speed rows of the same window with it.
func MergeSelect(src string, width int64) string {
	var g, sel strings.Builder
	fmt.Fprintf(&g, "SELECT battery_id, window_ms // %[1]d * %[1]d AS w, sum(n) AS nn", width)
	fmt.Fprintf(&sel, "SELECT s.battery_id, to_timestamp(g.w / 1000) AS window_start, g.w AS window_ms, g.nn::BIGINT AS n")
	for _, m := range Metrics {
		fmt.Fprintf(&g, ", sum(n * %[1]s_mean) / sum(n) AS %[1]s_gm", m)
		fmt.Fprintf(&sel, ", min(%[1]s_min) AS %[1]s_min, max(%[1]s_max) AS %[1]s_max, any_value(g.%[1]s_gm) AS %[1]s_mean,"+
			" sum(%[1]s_m2 + n * (%[1]s_mean - g.%[1]s_gm) * (%[1]s_mean - g.%[1]s_gm)) AS %[1]s_m2", m)
	}
	fmt.Fprintf(&g, " FROM %s GROUP BY battery_id, w", src)
	sel.WriteString(", max(last_ts_ms) AS last_ts_ms")
	for _, m := range Metrics {
		fmt.Fprintf(&sel, ", arg_max(last_%[1]s, last_ts_ms) AS last_%[1]s", m)
	}
	fmt.Fprintf(&sel, " FROM %s s JOIN (%s) g ON s.battery_id = g.battery_id AND s.window_ms // %d * %d = g.w GROUP BY s.battery_id, g.w, g.nn ORDER BY s.battery_id, g.w",
		src, g.String(), width, width)
	return sel.String()
}

// LatestSelect computes battery_latest rows from the last readings of the
// battery view rows in src.
func LatestSelect(src string) string {
	return latestOf(src, "last_ts_ms", "last_") + " ORDER BY battery_id"
}

// MergeLatestSelect keeps, of the battery_latest rows in src (several
// per battery), each battery's reading with the greatest ts.
func MergeLatestSelect(src string) string { return latestOf(src, "ts_ms", "") }

// latestOf picks each battery's values (columns prefix+metric) at its
// greatest ts (column ts) in src.
func latestOf(src, ts, prefix string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "SELECT battery_id, max(%[1]s) AS ts_ms, to_timestamp(max(%[1]s) / 1000) AS ts", ts)
	for _, m := range Metrics {
		fmt.Fprintf(&b, ", arg_max(%[1]s%[2]s, %[3]s) AS %[2]s", prefix, m, ts)
	}
	fmt.Fprintf(&b, " FROM %s GROUP BY battery_id", src)
	return b.String()
}
