package agg

// Window is one battery's statistics over one window of a resolution,
// whichever side (batch view, speed layer, merge) computed it.
type Window struct {
	Start int64        `json:"start_ms"` // Unix ms
	Stats BatteryStats `json:"stats"`
}

// FleetWindow is the whole fleet's statistics over one window.
type FleetWindow struct {
	Start int64      `json:"start_ms"` // Unix ms
	Stats FleetStats `json:"stats"`
}
