// Package devstack starts the broker and object store that `gridlake up`,
// `gridlake bench` and the integration tests (internal/testenv) run on when
// none is given: the embedded Kafka-protocol broker with the gridlake
// topics, and an S3 store, either the embedded server or a MinIO process.
package devstack

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/kafkaio/broker"
	"github.com/gridlake/gridlake/objstore"
)

// StartBroker starts the embedded broker and creates topics on it.
func StartBroker(ctx context.Context, o broker.Options, topics kafkaio.TopicSpec) (*broker.Broker, error) {
	b, err := broker.Start(o)
	if err != nil {
		return nil, err
	}
	if err := kafkaio.EnsureTopics(ctx, []string{b.Addr()}, topics); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// Options say which parts of a stack to start and how.
type Options struct {
	// Brokers of a running Kafka; empty starts the embedded broker.
	Brokers []string
	Broker  broker.Options
	// Topics are created on the brokers, embedded or not.
	Topics kafkaio.TopicSpec
	// S3Endpoint of a running object store; empty starts Server.
	S3Endpoint string
	Server     ServerOptions
	// Store opens the lake's bucket; its Endpoint is S3Endpoint or the
	// started server's.
	Store objstore.Options
	// Log, if set, hears which embedded parts started.
	Log *slog.Logger
	// BrokerHint and ServerHint end the error of an embedded part that
	// does not start, saying how to fix it (another port).
	BrokerHint, ServerHint string
}

// Stack is a broker and an object store with the lake's bucket open.
type Stack struct {
	Brokers []string
	// Broker and Server are the parts started, nil when given.
	Broker *broker.Broker
	Server *Server
	// S3Addr is the object store's host:port.
	S3Addr string
	Store  *objstore.Store
}

// Start starts the parts of o that are not given, creates the topics and
// opens the bucket. On error, what it started is stopped.
func Start(ctx context.Context, o Options) (_ *Stack, err error) {
	st := &Stack{Brokers: o.Brokers, S3Addr: o.S3Endpoint}
	defer func() {
		if err != nil {
			st.Close()
		}
	}()
	if len(st.Brokers) == 0 {
		b, err := broker.Start(o.Broker)
		if err != nil {
			return nil, hint(err, o.BrokerHint)
		}
		st.Broker, st.Brokers = b, []string{b.Addr()}
		if o.Log != nil {
			o.Log.Info("embedded Kafka broker started", "addr", b.Addr())
		}
	}
	if err := kafkaio.EnsureTopics(ctx, st.Brokers, o.Topics); err != nil {
		return nil, err
	}
	if st.S3Addr == "" {
		srv, err := StartServer(o.Server)
		if err != nil {
			return nil, hint(err, o.ServerHint)
		}
		st.Server, st.S3Addr = srv, srv.Endpoint
		if o.Log != nil {
			o.Log.Info("embedded object store started", "addr", srv.Endpoint)
		}
	}
	so := o.Store
	so.Endpoint = st.S3Addr
	if st.Store, err = objstore.Open(ctx, so); err != nil {
		return nil, err
	}
	return st, nil
}

func hint(err error, h string) error {
	if h == "" {
		return err
	}
	return fmt.Errorf("%w (%s)", err, h)
}

// Close stops what Start started, the store before the broker.
func (s *Stack) Close() {
	if s.Server != nil {
		s.Server.Close()
	}
	if s.Broker != nil {
		s.Broker.Close()
	}
}
