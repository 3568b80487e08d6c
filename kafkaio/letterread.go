package kafkaio

import (
	"strconv"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"

	"github.com/gridlake/gridlake/schemas"
)

// ReasonUnreadable is the reason a letter is kept with when its own
// headers do not say what it carries: anyone may write to gridlake.dlq,
// and a letter is never dropped for being odd.
const ReasonUnreadable = "unreadable_letter"

// Bounds on the header texts a letter carries; a letter written by
// gridlake stays far below them.
const (
	maxTopicBytes = 249 // Kafka's own limit on a topic name
	maxFieldBytes = 256
	maxErrorBytes = 1024
)

// LetterInfo is what a dead letter's headers say about the message it
// carries. HasSource is false when the source coordinates are missing or
// malformed; Reason is then ReasonUnreadable and Problem says why.
type LetterInfo struct {
	Reason    string
	Error     string
	Field     string
	HasSource bool
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte // the source key, nil when it had none
	Problem   string
}

// ReadLetter reads a dead letter's headers (see Letter). Of a repeated
// header the last wins: Letter appends its headers after the source's, so
// a source message carrying gridlake.* headers of its own cannot forge
// them. It never fails: what it cannot read it reports as unreadable.
func ReadLetter(headers []kafka.Header) LetterInfo {
	var reason, topic, part, off, field, errText, key []byte
	var seen [7]bool
	for _, h := range headers {
		i := -1
		switch h.Key {
		case HeaderReason:
			i, reason = 0, h.Value
		case HeaderTopic:
			i, topic = 1, h.Value
		case HeaderPartition:
			i, part = 2, h.Value
		case HeaderOffset:
			i, off = 3, h.Value
		case HeaderField:
			i, field = 4, h.Value
		case HeaderError:
			i, errText = 5, h.Value
		case HeaderKey:
			i, key = 6, h.Value
		}
		if i >= 0 {
			seen[i] = true
		}
	}
	li := LetterInfo{
		Field: TruncateText(field, maxFieldBytes),
		Error: TruncateText(errText, maxErrorBytes),
	}
	if len(key) > 0 {
		li.Key = key
	}
	switch {
	case !seen[0] || !seen[1] || !seen[2] || !seen[3]:
		li.Problem = "a gridlake.reason, gridlake.topic, gridlake.partition or gridlake.offset header is missing"
	case !validTopic(topic):
		li.Problem = "gridlake.topic is not a Kafka topic name"
	default:
		p, perr := strconv.ParseInt(string(part), 10, 32)
		o, oerr := strconv.ParseInt(string(off), 10, 64)
		switch {
		case perr != nil || p < 0:
			li.Problem = "gridlake.partition is not a partition number"
		case oerr != nil || o < 0:
			li.Problem = "gridlake.offset is not an offset"
		default:
			li.HasSource, li.Topic, li.Partition, li.Offset = true, string(topic), int32(p), o
		}
	}
	li.Reason = ReasonUnreadable
	if li.Problem == "" {
		if r, ok := knownReason(reason); ok {
			li.Reason = r
		} else {
			li.Problem = "gridlake.reason is not a rejection reason gridlake knows"
		}
	}
	return li
}

// knownReason returns the stable code equal to b, if it is one.
func knownReason(b []byte) (string, bool) {
	if len(b) > 32 {
		return "", false
	}
	for _, r := range schemas.Reasons() {
		if code := r.String(); code == string(b) {
			return code, true
		}
	}
	return "", false
}

// validTopic reports whether b is a legal Kafka topic name.
func validTopic(b []byte) bool {
	if len(b) == 0 || len(b) > maxTopicBytes {
		return false
	}
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// TruncateText returns b as valid UTF-8 text of at most max bytes: invalid
// bytes become U+FFFD and the cut falls between characters. It never
// allocates more than max bytes (plus one character).
func TruncateText(b []byte, max int) string {
	if max <= 0 {
		return ""
	}
	if len(b) <= max && utf8.Valid(b) {
		return string(b)
	}
	out := make([]byte, 0, min(len(b), max)+utf8.UTFMax)
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if len(out)+utf8.RuneLen(r) > max {
			break
		}
		out = utf8.AppendRune(out, r)
		b = b[n:]
	}
	return string(out)
}
