// Package broker runs the embedded Kafka-protocol broker of `gridlake up`
// and of the tests: franz-go's kfake on 127.0.0.1, persisted under a data
// directory. The pipeline talks to it over TCP with kafka-go exactly as it
// talks to Apache Kafka, so nothing else knows it is embedded.
package broker

import (
	"fmt"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/gridlake/gridlake/internal/netutil"
)

// Broker is a running single-node embedded broker.
type Broker struct {
	cluster *kfake.Cluster
}

// Options configure the embedded broker.
type Options struct {
	// Port on 127.0.0.1; 0 picks a free one.
	Port int
	// DataDir persists topics, logs and committed offsets across restarts;
	// empty keeps everything in memory (tests).
	DataDir string
	// DefaultPartitions is used for auto-created topics.
	DefaultPartitions int
	// Log receives accept failures (descriptors exhausted); nil discards.
	Log *slog.Logger
}

// Start starts the broker.
func Start(o Options) (*Broker, error) {
	// kfake's accept loop ends at the first error: the wrapped listener
	// retries instead, so running out of descriptors only pauses the broker.
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(o.Port), kfake.ClusterID("gridlake"),
		kfake.ListenFn(netutil.ListenFunc(o.Log))}
	if o.DataDir != "" {
		opts = append(opts, kfake.DataDir(o.DataDir))
	}
	if o.DefaultPartitions > 0 {
		opts = append(opts, kfake.DefaultNumPartitions(o.DefaultPartitions))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start embedded Kafka broker on port %d: %w", o.Port, err)
	}
	return &Broker{cluster: c}, nil
}

// Addr is the broker's host:port.
func (b *Broker) Addr() string { return b.cluster.ListenAddrs()[0] }

// Close stops the broker, flushing its data directory.
func (b *Broker) Close() { b.cluster.Close() }
