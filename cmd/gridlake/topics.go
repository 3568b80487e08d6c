package main

import (
	"context"
	"fmt"

	"github.com/gridlake/gridlake/config"
	"github.com/gridlake/gridlake/kafkaio"
)

// topicSpec is how the configured topics are created.
func topicSpec(cfg *config.Config) kafkaio.TopicSpec {
	return kafkaio.TopicSpec{Partitions: cfg.Kafka.Partitions, Replication: cfg.Kafka.Replication, Retention: cfg.Kafka.Retention}
}

// connectKafka checks that a broker answers and creates the gridlake topics
// that are missing. Every process that reads or writes them calls it, so a
// deployment starts in any order, and without the simulator.
func connectKafka(ctx context.Context, cfg *config.Config, brokers []string) error {
	if err := kafkaio.Ping(ctx, brokers); err != nil {
		return fmt.Errorf("%w\nstart a broker (gridlake up) or pass --kafka-brokers host:port", err)
	}
	return kafkaio.EnsureTopics(ctx, brokers, topicSpec(cfg))
}
