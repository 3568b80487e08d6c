// Package schemas is the wire contract of gridlake: the four event kinds, their
// JSON decoding, the one validation function every layer uses, identity keys
// for de-duplication and the Arrow schemas of the raw tables.
//
// The speed and batch layers must agree on which events count, so neither
// decodes JSON itself: both call Validator.Decode.
package schemas

// Topic names of the wire contract (DESIGN §3).
const (
	TopicBattery = "gridlake.battery"
	TopicRoom    = "gridlake.room"
	TopicDLQ     = "gridlake.dlq"
)

// Kind says which of the four event kinds an Event holds.
type Kind uint8

const (
	KindUnknown Kind = iota
	KindBattery
	KindDevice
	KindOccupancy
	KindStay
)

func (k Kind) String() string {
	switch k {
	case KindBattery:
		return "battery"
	case KindDevice:
		return "device"
	case KindOccupancy:
		return "occupancy"
	case KindStay:
		return "stay"
	}
	return "unknown"
}

// Battery is one reading of a battery pack's management system.
type Battery struct {
	BatteryID    string
	TS           int64 // event time, Unix milliseconds UTC
	VoltageV     float64
	CurrentA     float64 // negative while discharging
	TemperatureC float64
	SOCPct       float64
	SOHPct       float64 // valid when HasSOH
	CycleCount   int64   // valid when HasCycleCount
	HasSOH       bool
	HasCycles    bool
}

// Device is an on/off report of a room device (light, hvac, tv, ...).
type Device struct {
	RoomID     string
	DeviceID   string
	DeviceType string
	TS         int64
	On         bool
	PowerW     float64 // valid when HasPower
	HasPower   bool
}

// Occupancy is a room occupancy sensor report.
type Occupancy struct {
	RoomID   string
	TS       int64
	Occupied bool
}

// Stay is a guest check-in or check-out.
type Stay struct {
	RoomID  string
	StayID  string
	TS      int64
	CheckIn bool // false means check_out
}

// Event holds one decoded event. Only the member named by Kind is meaningful;
// keeping all four inline lets a consumer reuse one Event for a whole fetch
// without allocating per message.
type Event struct {
	Kind      Kind
	Battery   Battery
	Device    Device
	Occupancy Occupancy
	Stay      Stay
}

// TS returns the event time in Unix milliseconds whatever the kind.
func (e *Event) TS() int64 {
	switch e.Kind {
	case KindBattery:
		return e.Battery.TS
	case KindDevice:
		return e.Device.TS
	case KindOccupancy:
		return e.Occupancy.TS
	case KindStay:
		return e.Stay.TS
	}
	return 0
}

// RoomID returns the room of a room event, "" for a battery reading.
func (e *Event) RoomID() string {
	switch e.Kind {
	case KindDevice:
		return e.Device.RoomID
	case KindOccupancy:
		return e.Occupancy.RoomID
	case KindStay:
		return e.Stay.RoomID
	}
	return ""
}
