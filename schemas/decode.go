package schemas

import (
	"time"
)

// Limits are the validation settings that come from configuration. They are
// part of the contract: the speed and batch layers must use the same values.
type Limits struct {
	// Retention rejects events whose ts is more than this before the Kafka
	// record timestamp (DESIGN §3, default 30 days).
	Retention time.Duration
	// MaxAhead rejects events whose ts is more than this after the record
	// timestamp (default 5 minutes).
	MaxAhead time.Duration
}

// DefaultLimits are the limits of DESIGN §3.
func DefaultLimits() Limits {
	return Limits{Retention: 30 * 24 * time.Hour, MaxAhead: 5 * time.Minute}
}

// Decoder decodes and validates messages. It keeps scratch buffers and an
// intern table of ids, so one Decoder serves one goroutine; make one per
// consumer. Decoding never looks at the wall clock: the same message with the
// same record timestamp always gets the same answer.
type Decoder struct {
	limits Limits
	sc     scanner
	ids    interner
	f      fields
}

// NewDecoder returns a Decoder that applies limits.
func NewDecoder(limits Limits) *Decoder {
	return &Decoder{limits: limits, ids: interner{m: make(map[string]string, 1024)}}
}

// Validate is the one-shot form of Decoder.Decode, for tools and tests.
func Validate(limits Limits, topic string, key, value []byte, recordTime time.Time) (Event, Rejection) {
	var ev Event
	d := &Decoder{limits: limits, ids: interner{m: map[string]string{}}} // one message: no table to pre-size
	rej := d.Decode(topic, key, value, recordTime, &ev)
	return ev, rej
}

// field bits of what a message carried.
const (
	fTS uint32 = 1 << iota
	fBatteryID
	fVoltage
	fCurrent
	fTemperature
	fSOC
	fSOH
	fCycles
	fType
	fRoomID
	fDeviceID
	fDeviceType
	fState
	fPower
	fOccupied
	fAction
	fStayID
)

// fields collects what one message said before the event is assembled,
// because JSON fields come in any order and "type" may come last.
type fields struct {
	seen                        uint32
	ts                          int64
	batteryID, roomID, deviceID string
	deviceType, stayID          string
	voltage, current, temp, soc float64
	soh, power                  float64
	cycles                      int64
	typ, state, action          uint8 // 0 = unknown word
	occupied                    bool
	bad                         uint32 // fields whose last value had the wrong type
	badID                       uint32 // id fields whose last value is not an id
}

// words of the enumerated fields; 0 means an unknown word.
const (
	typDevice uint8 = iota + 1
	typOccupancy
	typStay
	stateOn  = 1
	stateOff = 2
	actIn    = 1
	actOut   = 2
)

// Decode decodes value, a message from topic with Kafka key key and record
// timestamp recordTime, into ev and validates it. The key must be the
// event's battery_id or room_id: both layers de-duplicate within a
// partition, so a copy keyed otherwise would be counted differently by
// them. A zero recordTime (a record without a timestamp) skips the
// time-window checks. On rejection ev is unspecified.
func (d *Decoder) Decode(topic string, key, value []byte, recordTime time.Time, ev *Event) Rejection {
	var room bool
	switch topic {
	case TopicBattery:
	case TopicRoom:
		room = true
	default:
		return reject(ReasonUnknownTopic, "")
	}
	d.f = fields{}
	if err := d.scanObject(value); err != nil {
		return reject(ReasonNotJSON, "")
	}
	f := &d.f
	if f.bad != 0 {
		return reject(ReasonWrongType, fieldNames[f.bad&-f.bad])
	}
	if bad := f.badID & f.idFields(room); bad != 0 {
		return reject(ReasonBadID, fieldNames[bad&-bad])
	}
	var rej Rejection
	if room {
		rej = f.room(ev)
	} else {
		rej = f.battery(ev)
	}
	if !rej.OK() {
		return rej
	}
	// The comparison converts nothing: Go compares string(key) in place.
	if room && string(key) != ev.RoomID() {
		return reject(ReasonKeyMismatch, "room_id")
	}
	if !room && string(key) != ev.Battery.BatteryID {
		return reject(ReasonKeyMismatch, "battery_id")
	}
	if !recordTime.IsZero() {
		rec := recordTime.UnixMilli()
		switch {
		case f.ts > rec+d.limits.MaxAhead.Milliseconds():
			return reject(ReasonFromFuture, "ts")
		case f.ts < rec-d.limits.Retention.Milliseconds():
			return reject(ReasonTooOld, "ts")
		}
	}
	return Rejection{}
}

// idFields are the id fields the event uses. An id-named field that its
// topic and type do not use is an unknown field, ignored like any other
// (DESIGN §3): a battery reading that also carries a "device_type" is
// still a valid reading.
func (f *fields) idFields(room bool) uint32 {
	if !room {
		return fBatteryID
	}
	switch f.typ {
	case typDevice:
		return fRoomID | fDeviceID | fDeviceType
	case typStay:
		return fRoomID | fStayID
	}
	return fRoomID
}

// scanObject reads the top-level object, storing known fields in d.f.
func (d *Decoder) scanObject(value []byte) error {
	s := &d.sc
	s.data, s.pos = value, 0
	if cap(s.buf) > maxScratch {
		s.buf = nil // one huge escaped string must not pin its buffer for good
	}
	if s.next() != '{' {
		return errSyntax
	}
	s.pos++
	if s.next() == '}' {
		s.pos++
	} else {
		for {
			if s.next() != '"' {
				return errSyntax
			}
			key, err := s.str()
			if err != nil {
				return err
			}
			// The key may alias s.buf, which the value's string reuses, so
			// resolve it to a field bit before reading the value.
			bit := fieldBit(key)
			if s.next() != ':' {
				return errSyntax
			}
			s.pos++
			kind, text, err := s.value(0)
			if err != nil {
				return err
			}
			d.set(bit, kind, text)
			c := s.next()
			if c == ',' {
				s.pos++
				continue
			}
			if c != '}' {
				return errSyntax
			}
			s.pos++
			break
		}
	}
	s.skipSpace()
	if s.pos != len(s.data) {
		return errSyntax
	}
	return nil
}

func fieldBit(key []byte) uint32 {
	switch string(key) {
	case "ts":
		return fTS
	case "battery_id":
		return fBatteryID
	case "voltage_v":
		return fVoltage
	case "current_a":
		return fCurrent
	case "temperature_c":
		return fTemperature
	case "soc_pct":
		return fSOC
	case "soh_pct":
		return fSOH
	case "cycle_count":
		return fCycles
	case "type":
		return fType
	case "room_id":
		return fRoomID
	case "device_id":
		return fDeviceID
	case "device_type":
		return fDeviceType
	case "state":
		return fState
	case "power_w":
		return fPower
	case "occupied":
		return fOccupied
	case "action":
		return fAction
	case "stay_id":
		return fStayID
	}
	return 0
}

var fieldNames = map[uint32]string{
	fTS: "ts", fBatteryID: "battery_id", fVoltage: "voltage_v", fCurrent: "current_a",
	fTemperature: "temperature_c", fSOC: "soc_pct", fSOH: "soh_pct", fCycles: "cycle_count",
	fType: "type", fRoomID: "room_id", fDeviceID: "device_id", fDeviceType: "device_type",
	fState: "state", fPower: "power_w", fOccupied: "occupied", fAction: "action", fStayID: "stay_id",
}

// set stores one field's value. As with encoding/json, a repeated key's last
// value wins. A JSON null or an empty id counts as absent; a value of the
// wrong type marks the field bad.
func (d *Decoder) set(bit uint32, kind valueKind, text []byte) {
	f := &d.f
	if bit == 0 {
		return
	}
	f.seen &^= bit
	f.bad &^= bit
	f.badID &^= bit
	if kind == vNull {
		return
	}
	ok := true
	switch bit {
	case fTS:
		switch kind {
		case vString:
			f.ts, ok = parseRFC3339MS(text)
		case vNumber:
			f.ts, ok = parseInt(text)
			ok = ok && f.ts >= 0 && f.ts <= maxEpochMS
		default:
			ok = false
		}
	case fBatteryID, fRoomID, fDeviceID, fDeviceType, fStayID:
		if ok = kind == vString; ok {
			if len(text) == 0 {
				return // empty ids count as missing
			}
			if !ValidID(text) { // checked before the id is copied
				f.badID |= bit
				return
			}
			id := d.ids.intern(text)
			switch bit {
			case fBatteryID:
				f.batteryID = id
			case fRoomID:
				f.roomID = id
			case fDeviceID:
				f.deviceID = id
			case fDeviceType:
				f.deviceType = id
			case fStayID:
				f.stayID = id
			}
		}
	case fVoltage, fCurrent, fTemperature, fSOC, fSOH, fPower:
		var v float64
		if ok = kind == vNumber; ok {
			v, ok = parseFloat(text)
		}
		switch bit {
		case fVoltage:
			f.voltage = v
		case fCurrent:
			f.current = v
		case fTemperature:
			f.temp = v
		case fSOC:
			f.soc = v
		case fSOH:
			f.soh = v
		case fPower:
			f.power = v
		}
	case fCycles:
		if ok = kind == vNumber; ok {
			f.cycles, ok = parseInt(text)
			ok = ok && f.cycles >= 0
		}
	case fOccupied:
		ok = kind == vTrue || kind == vFalse
		f.occupied = kind == vTrue
	case fType, fState, fAction:
		if ok = kind == vString; ok {
			w := bstr(text)
			switch bit {
			case fType:
				f.typ = word3(w, "device", "occupancy", "stay")
			case fState:
				f.state = word3(w, "on", "off", "")
			case fAction:
				f.action = word3(w, "check_in", "check_out", "")
			}
		}
	}
	if !ok {
		f.bad |= bit
		return
	}
	f.seen |= bit
}

func word3(w, a, b, c string) uint8 {
	switch w {
	case a:
		return 1
	case b:
		return 2
	case c:
		if c != "" {
			return 3
		}
	}
	return 0
}

// require checks that every bit in want was seen, naming the first missing
// field in a fixed order so the answer is deterministic.
func (f *fields) require(want uint32) Rejection {
	missing := want &^ f.seen
	if missing == 0 {
		return Rejection{}
	}
	lowest := missing & -missing
	return reject(ReasonMissingField, fieldNames[lowest])
}

func (f *fields) battery(ev *Event) Rejection {
	if r := f.require(fTS | fBatteryID | fVoltage | fCurrent | fTemperature | fSOC); !r.OK() {
		return r
	}
	switch {
	case f.voltage < 0 || f.voltage > 1500:
		return reject(ReasonOutOfRange, "voltage_v")
	case f.current < -5000 || f.current > 5000:
		return reject(ReasonOutOfRange, "current_a")
	case f.temp < -60 || f.temp > 200:
		return reject(ReasonOutOfRange, "temperature_c")
	case f.soc < 0 || f.soc > 100:
		return reject(ReasonOutOfRange, "soc_pct")
	case f.seen&fSOH != 0 && (f.soh < 0 || f.soh > 100):
		return reject(ReasonOutOfRange, "soh_pct")
	}
	ev.Kind = KindBattery
	ev.Battery = Battery{
		BatteryID: f.batteryID, TS: f.ts,
		VoltageV: f.voltage, CurrentA: f.current, TemperatureC: f.temp, SOCPct: f.soc,
		SOHPct: f.soh, HasSOH: f.seen&fSOH != 0,
		CycleCount: f.cycles, HasCycles: f.seen&fCycles != 0,
	}
	return Rejection{}
}

func (f *fields) room(ev *Event) Rejection {
	if f.seen&fType == 0 {
		return reject(ReasonMissingField, "type")
	}
	switch f.typ {
	case typDevice:
		if r := f.require(fTS | fRoomID | fDeviceID | fDeviceType | fState); !r.OK() {
			return r
		}
		if f.state == 0 {
			return reject(ReasonUnknownState, "state")
		}
		if f.seen&fPower != 0 && (f.power < 0 || f.power > 1e6) {
			return reject(ReasonOutOfRange, "power_w")
		}
		ev.Kind = KindDevice
		ev.Device = Device{
			RoomID: f.roomID, DeviceID: f.deviceID, DeviceType: f.deviceType, TS: f.ts,
			On: f.state == stateOn, PowerW: f.power, HasPower: f.seen&fPower != 0,
		}
	case typOccupancy:
		if r := f.require(fTS | fRoomID | fOccupied); !r.OK() {
			return r
		}
		ev.Kind = KindOccupancy
		ev.Occupancy = Occupancy{RoomID: f.roomID, TS: f.ts, Occupied: f.occupied}
	case typStay:
		if r := f.require(fTS | fRoomID | fAction | fStayID); !r.OK() {
			return r
		}
		if f.action == 0 {
			return reject(ReasonUnknownAction, "action")
		}
		ev.Kind = KindStay
		ev.Stay = Stay{RoomID: f.roomID, StayID: f.stayID, TS: f.ts, CheckIn: f.action == actIn}
	default:
		return reject(ReasonUnknownType, "type")
	}
	return Rejection{}
}

// interner returns one shared string per distinct id, so a fleet of 30,000
// batteries costs 30,000 id strings, not one allocation per reading.
type interner struct{ m map[string]string }

// maxInterned bounds the table against an unbounded id space (stay ids, or a
// hostile producer); past it the table starts over.
const maxInterned = 1 << 20

func (in *interner) intern(b []byte) string {
	if s, ok := in.m[string(b)]; ok {
		return s
	}
	if len(in.m) >= maxInterned {
		clear(in.m)
	}
	s := string(b)
	in.m[s] = s
	return s
}
