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

// Hash returns a 64-bit FNV-1a hash of the identity, for compact
// de-duplication sets and partition-independent sharding.
func (id Identity) Hash() uint64 {
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	h = (h ^ uint64(id.Kind)) * prime
	for i := 0; i < len(id.ID); i++ {
		h = (h ^ uint64(id.ID[i])) * prime
	}
	ts := uint64(id.TS)
	for i := 0; i < 8; i++ {
		h = (h ^ (ts & 0xff)) * prime
		ts >>= 8
	}
	if id.Flag {
		h = (h ^ 1) * prime
	}
	return h
}

// Origin is where a message sat in Kafka. Among copies of one identity the
// lowest Origin wins.
type Origin struct {
	Partition int32
	Offset    int64
}

// Before reports whether o sorts before p in (partition, offset) order.
func (o Origin) Before(p Origin) bool {
	if o.Partition != p.Partition {
		return o.Partition < p.Partition
	}
	return o.Offset < p.Offset
}
