package schemas

// Identity is what makes two messages the same event (DESIGN §3). Copies of
// one identity count once; the layers keep the copy with the lowest
// (partition, offset). It is a comparable value, usable as a map key without
// allocating.
//
//	battery reading: (battery_id, ts)
//	device:          (device_id, ts, state)
//	occupancy:       (room_id, ts, occupied)
//	stay:            (room_id, ts, action)
type Identity struct {
	Kind Kind
	ID   string // battery_id, device_id, or room_id
	TS   int64  // Unix milliseconds
	Flag bool   // state on, occupied, or check_in; false for readings
}

// Identity returns the event's identity key.
func (e *Event) Identity() Identity {
	switch e.Kind {
	case KindBattery:
		return Identity{Kind: KindBattery, ID: e.Battery.BatteryID, TS: e.Battery.TS}
	case KindDevice:
		return Identity{Kind: KindDevice, ID: e.Device.DeviceID, TS: e.Device.TS, Flag: e.Device.On}
	case KindOccupancy:
		return Identity{Kind: KindOccupancy, ID: e.Occupancy.RoomID, TS: e.Occupancy.TS, Flag: e.Occupancy.Occupied}
	case KindStay:
		return Identity{Kind: KindStay, ID: e.Stay.RoomID, TS: e.Stay.TS, Flag: e.Stay.CheckIn}
	}
	return Identity{}
}
