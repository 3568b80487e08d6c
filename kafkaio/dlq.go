package kafkaio

import (
	"context"
	"fmt"
	"strconv"

	"github.com/segmentio/kafka-go"

	"github.com/gridlake/gridlake/schemas"
)

// Dead-letter headers. The message itself is forwarded unchanged.
const (
	HeaderReason    = "gridlake.reason"    // stable code, e.g. out_of_range
	HeaderError     = "gridlake.error"     // the reason in words
	HeaderField     = "gridlake.field"     // the offending field, when there is one
	HeaderTopic     = "gridlake.topic"     // source topic
	HeaderPartition = "gridlake.partition" // source partition
	HeaderOffset    = "gridlake.offset"    // source offset
	HeaderKey       = "gridlake.key"       // the source key: the letter's own key is the coordinates
)

// Writer is the part of a kafka-go writer the dead-letter queue needs.
type Writer interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// DeadLetters sends rejected messages to gridlake.dlq.
type DeadLetters struct {
	w Writer
}

// NewDeadLetters returns a dead-letter sender over w.
func NewDeadLetters(w Writer) *DeadLetters { return &DeadLetters{w: w} }

// Letter builds the dead-letter message for a rejected source message: the
// same value and headers, plus headers naming the reason, where the message
// came from and its key. Its key is the source coordinates, so two layers
// rejecting the same message produce recognisable copies of one letter.
func Letter(src kafka.Message, rej schemas.Rejection) kafka.Message {
	h := make([]kafka.Header, 0, len(src.Headers)+7)
	h = append(h, src.Headers...)
	h = append(h,
		kafka.Header{Key: HeaderReason, Value: []byte(rej.Reason.String())},
		kafka.Header{Key: HeaderError, Value: []byte(rej.Error())},
		kafka.Header{Key: HeaderField, Value: []byte(rej.Field)},
		kafka.Header{Key: HeaderTopic, Value: []byte(src.Topic)},
		kafka.Header{Key: HeaderPartition, Value: []byte(strconv.Itoa(src.Partition))},
		kafka.Header{Key: HeaderOffset, Value: []byte(strconv.FormatInt(src.Offset, 10))},
		kafka.Header{Key: HeaderKey, Value: src.Key},
	)
	return kafka.Message{
		Topic:   schemas.TopicDLQ,
		Key:     fmt.Appendf(nil, "%s/%d/%d", src.Topic, src.Partition, src.Offset),
		Value:   src.Value,
		Headers: h,
		Time:    src.Time,
	}
}

// Send forwards rejected messages to the dead-letter topic in one batch.
func (d *DeadLetters) Send(ctx context.Context, letters ...kafka.Message) error {
	if len(letters) == 0 {
		return nil
	}
	if err := d.w.WriteMessages(ctx, letters...); err != nil {
		return fmt.Errorf("send %d messages to %s: %w", len(letters), schemas.TopicDLQ, err)
	}
	return nil
}

// HeaderValue returns the value of the named header, or "".
func HeaderValue(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
