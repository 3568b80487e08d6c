package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/gridlake/gridlake/internal/minioproc"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/kafkaio/broker"
	"github.com/gridlake/gridlake/objstore"
	"github.com/gridlake/gridlake/objstore/s3server"
)

// startBroker starts the embedded broker in memory with the gridlake
// topics.
func startBroker(ctx context.Context, partitions int) (*broker.Broker, []string, error) {
	b, err := broker.Start(broker.Options{DefaultPartitions: partitions})
	if err != nil {
		return nil, nil, err
	}
	brokers := []string{b.Addr()}
	err = kafkaio.EnsureTopics(ctx, brokers, kafkaio.TopicSpec{Partitions: partitions, Replication: 1, Retention: 7 * 24 * time.Hour})
	if err != nil {
		b.Close()
		return nil, nil, err
	}
	return b, brokers, nil
}

// startStore starts a MinIO server under dir (bin/minio from make deps),
// or the embedded S3 server when MinIO is not installed, and opens a
// bucket on it. kind says which.
func startStore(ctx context.Context, dir string, progress io.Writer) (*objstore.Store, string, func(), error) {
	opts := objstore.Options{AccessKey: minioproc.AccessKey, SecretKey: minioproc.SecretKey, Bucket: "gridlake-bench"}
	kind := "minio"
	var stop func()
	if bin, err := minioproc.Binary(); err == nil {
		srv, err := minioproc.Start(bin, filepath.Join(dir, "minio"))
		if err != nil {
			return nil, "", nil, err
		}
		opts.Endpoint, stop = srv.Endpoint, srv.Stop
	} else {
		if progress != nil {
			fmt.Fprintf(progress, "bench: %v; using the embedded S3 server\n", err)
		}
		srv := s3server.New(filepath.Join(dir, "s3"), minioproc.AccessKey, slog.New(slog.DiscardHandler))
		if err := srv.Start("127.0.0.1:0"); err != nil {
			return nil, "", nil, err
		}
		opts.Endpoint, stop, kind = srv.Addr(), func() { _ = srv.Close() }, "embedded"
	}
	store, err := objstore.Open(ctx, opts)
	if err != nil {
		stop()
		return nil, "", nil, err
	}
	return store, kind, stop, nil
}
