package schemas

import "fmt"

// Reason is why a message was rejected. Its String form is the stable code
// written to the dead-letter topic's "reason" header and to metrics labels.
type Reason uint8

const (
	ReasonNone          Reason = iota
	ReasonNotJSON              // not a single well-formed UTF-8 JSON object
	ReasonMissingField         // a required field is absent, null or empty
	ReasonWrongType            // a field has the wrong JSON type or format
	ReasonUnknownType          // room event "type" is not device/occupancy/stay
	ReasonUnknownState         // device "state" is not on/off
	ReasonUnknownAction        // stay "action" is not check_in/check_out
	ReasonOutOfRange           // a reading outside its physical range
	ReasonFromFuture           // ts more than MaxAhead after the record timestamp
	ReasonTooOld               // ts more than Retention before the record timestamp
	ReasonUnknownTopic         // the message came from a topic gridlake does not read
	ReasonKeyMismatch          // the Kafka key is not the event's battery_id / room_id
	ReasonBadID                // an id is not 1..128 bytes of letters, digits and -_.:/
	numReasons
)

var reasonCodes = [numReasons]string{
	ReasonNone:          "none",
	ReasonNotJSON:       "not_json",
	ReasonMissingField:  "missing_field",
	ReasonWrongType:     "wrong_type",
	ReasonUnknownType:   "unknown_type",
	ReasonUnknownState:  "unknown_state",
	ReasonUnknownAction: "unknown_action",
	ReasonOutOfRange:    "out_of_range",
	ReasonFromFuture:    "from_future",
	ReasonTooOld:        "too_old",
	ReasonUnknownTopic:  "unknown_topic",
	ReasonKeyMismatch:   "key_mismatch",
	ReasonBadID:         "bad_id",
}

func (r Reason) String() string {
	if r < numReasons {
		return reasonCodes[r]
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// Reasons lists every rejection reason, for metrics that want a zero series
// per reason.
func Reasons() []Reason {
	out := make([]Reason, 0, numReasons-1)
	for r := ReasonNone + 1; r < numReasons; r++ {
		out = append(out, r)
	}
	return out
}

// Rejection is the typed outcome of validation. The zero value means the
// event is valid. Field names the offending JSON field when there is one.
// It is a value, not an error pointer, so the hot path does not allocate.
type Rejection struct {
	Reason Reason
	Field  string
}

// OK reports whether the event passed validation.
func (r Rejection) OK() bool { return r.Reason == ReasonNone }

// Error describes the rejection in words a device maker can act on.
func (r Rejection) Error() string {
	switch r.Reason {
	case ReasonNone:
		return "valid"
	case ReasonNotJSON:
		return "not a JSON object: send one UTF-8 JSON object per message"
	case ReasonMissingField:
		return fmt.Sprintf("missing required field %q", r.Field)
	case ReasonWrongType:
		return fmt.Sprintf("field %q has the wrong type or format (see schemas/WIRE.md)", r.Field)
	case ReasonUnknownType:
		return `unknown "type": use device, occupancy or stay`
	case ReasonUnknownState:
		return `unknown "state": use on or off`
	case ReasonUnknownAction:
		return `unknown "action": use check_in or check_out`
	case ReasonOutOfRange:
		return fmt.Sprintf("field %q is outside its physical range", r.Field)
	case ReasonFromFuture:
		return `"ts" is more than the allowed skew ahead of the Kafka record timestamp: check the device clock`
	case ReasonTooOld:
		return `"ts" is older than the retention horizon before the Kafka record timestamp`
	case ReasonUnknownTopic:
		return "topic is not a gridlake event topic"
	case ReasonKeyMismatch:
		return fmt.Sprintf("the Kafka message key is not the event's %q: key every message by its id", r.Field)
	case ReasonBadID:
		return fmt.Sprintf("field %q is not an id: 1 to 128 bytes of letters, digits and -_.:/", r.Field)
	}
	return r.Reason.String()
}

func reject(r Reason, field string) Rejection { return Rejection{Reason: r, Field: field} }
