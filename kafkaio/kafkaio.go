// Package kafkaio is gridlake's Kafka wiring on kafka-go: topic creation,
// producers with Kafka's default partitioning, and the dead-letter queue.
package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/gridlake/gridlake/alerts"
	"github.com/gridlake/gridlake/schemas"
)

// Topics are the topics gridlake creates: the two event topics, the
// dead-letter queue and the alert transitions.
var Topics = []string{schemas.TopicBattery, schemas.TopicRoom, schemas.TopicDLQ, alerts.Topic}

// TopicSpec says how to create the topics.
type TopicSpec struct {
	Partitions  int
	Replication int
	Retention   time.Duration
}

// EnsureTopics creates the gridlake topics that do not exist yet. Existing
// topics are left as they are.
func EnsureTopics(ctx context.Context, brokers []string, spec TopicSpec) error {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	req := &kafka.CreateTopicsRequest{}
	for _, t := range Topics {
		req.Topics = append(req.Topics, kafka.TopicConfig{
			Topic:             t,
			NumPartitions:     spec.Partitions,
			ReplicationFactor: spec.Replication,
			ConfigEntries: []kafka.ConfigEntry{
				{ConfigName: "retention.ms", ConfigValue: strconv.FormatInt(spec.Retention.Milliseconds(), 10)},
			},
		})
	}
	resp, err := client.CreateTopics(ctx, req)
	if err != nil {
		return fmt.Errorf("create topics on %v (is the broker reachable?): %w", brokers, err)
	}
	for topic, err := range resp.Errors {
		if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", topic, err)
		}
	}
	return nil
}

// Partitions returns the partition count of topic.
func Partitions(ctx context.Context, brokers []string, topic string) (int, error) {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	for _, t := range md.Topics {
		if t.Name == topic {
			if errors.Is(t.Error, kafka.UnknownTopicOrPartition) {
				return 0, fmt.Errorf("metadata of %s: %w", topic, ErrNoTopic)
			}
			if t.Error != nil {
				return 0, fmt.Errorf("metadata of %s: %w", topic, t.Error)
			}
			return len(t.Partitions), nil
		}
	}
	return 0, fmt.Errorf("metadata of %s: %w", topic, ErrNoTopic)
}

// ErrNoTopic means the broker does not know the topic.
var ErrNoTopic = errors.New("topic not found")

// NewWriter returns a producer that partitions by key the way the Java
// client does (murmur2), so devices keyed by id land on the same partition
// whichever client produced them. Topic is set per message.
func NewWriter(brokers []string) *kafka.Writer {
	return &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Balancer:     &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll,
		BatchSize:    1000,
		BatchBytes:   4 << 20,
		BatchTimeout: 5 * time.Millisecond,
		Compression:  kafka.Lz4,
	}
}

// Ping checks that a broker answers a metadata request.
func Ping(ctx context.Context, brokers []string) error {
	// A transport of its own: the shared one keeps connections open, and a
	// broker that stopped accepting new ones would still look healthy.
	tr := &kafka.Transport{DialTimeout: 3 * time.Second, IdleTimeout: time.Second}
	defer tr.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 3 * time.Second, Transport: tr}
	if _, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{}}); err != nil {
		return fmt.Errorf("kafka %v: %w", brokers, err)
	}
	return nil
}

// DialLeader connects to the leader of a partition through the first
// broker that answers, for direct partition reads (speed and batch layers
// read partitions, not a group's share of them).
func DialLeader(ctx context.Context, brokers []string, topic string, partition int) (*kafka.Conn, error) {
	var last error
	for _, b := range brokers {
		conn, err := kafka.DialLeader(ctx, "tcp", b, topic, partition)
		if err == nil {
			return conn, nil
		}
		last = err
	}
	return nil, fmt.Errorf("dial leader of %s/%d: %w", topic, partition, last)
}

// IsTimeout reports whether a fetch ended by its deadline or the broker's
// wait rather than by a failure: an empty poll, not an error.
func IsTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout() || errors.Is(err, kafka.RequestTimedOut)
}

// HighWatermarks returns the sum of the high watermarks of topics'
// partitions: it moves when any record arrives.
func HighWatermarks(ctx context.Context, brokers []string, topics ...string) (int64, error) {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	req := map[string][]kafka.OffsetRequest{}
	for _, topic := range topics {
		n, err := Partitions(ctx, brokers, topic)
		if err != nil {
			return 0, err
		}
		for p := range n {
			req[topic] = append(req[topic], kafka.LastOffsetOf(p))
		}
	}
	res, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: req})
	if err != nil {
		return 0, fmt.Errorf("high watermarks of %v: %w", topics, err)
	}
	var sum int64
	for topic, parts := range res.Topics {
		for _, p := range parts {
			if p.Error != nil {
				return 0, fmt.Errorf("high watermark of %s/%d: %w", topic, p.Partition, p.Error)
			}
			sum += p.LastOffset
		}
	}
	return sum, nil
}
