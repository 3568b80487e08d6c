package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/kafkaio/broker"
)

const brokerSynopsis = `Runs only the embedded Kafka-protocol broker on 127.0.0.1, persisted under
--data-dir/kafka, with the gridlake topics created. Useful to develop against
without Apache Kafka, and used by "gridlake bench".

Example: gridlake broker --kafka-embedded-port 19092`

func runBroker(ctx context.Context, e *env, args []string) error {
	fs, loader := flags(e, "broker", brokerSynopsis)
	cfg, err := load(fs, loader, e, args)
	if err != nil {
		return err
	}
	log := newLogger(e.stderr, cfg.Log)
	b, err := broker.Start(broker.Options{Port: cfg.Kafka.EmbeddedPort, DataDir: filepath.Join(cfg.DataDir, "kafka"),
		DefaultPartitions: cfg.Kafka.Partitions, Log: log})
	if err != nil {
		return err
	}
	defer b.Close()
	spec := topicSpec(&cfg)
	spec.Replication = 1 // one node
	if err := kafkaio.EnsureTopics(ctx, []string{b.Addr()}, spec); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "gridlake broker: %s\n", b.Addr())
	<-ctx.Done()
	return nil
}
