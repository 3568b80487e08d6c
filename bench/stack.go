package bench

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/gridlake/gridlake/internal/devstack"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/kafkaio/broker"
	"github.com/gridlake/gridlake/objstore"
	"github.com/gridlake/gridlake/simulate"
)

// startBroker starts the embedded broker in memory with the gridlake
// topics.
func startBroker(ctx context.Context, partitions int) (*broker.Broker, []string, error) {
	b, err := devstack.StartBroker(ctx, broker.Options{DefaultPartitions: partitions},
		kafkaio.TopicSpec{Partitions: partitions, Replication: 1, Retention: 7 * 24 * time.Hour})
	if err != nil {
		return nil, nil, err
	}
	return b, []string{b.Addr()}, nil
}

// startStore starts a MinIO server under dir (bin/minio from make deps),
// or the embedded S3 server when MinIO is not installed, and opens a
// bucket on it. kind says which.
func startStore(ctx context.Context, dir string, progress io.Writer) (*objstore.Store, string, func(), error) {
	so := devstack.ServerOptions{Dir: dir}
	if progress != nil {
		so.Fallback = func(err error) { fmt.Fprintf(progress, "bench: %v; using the embedded S3 server\n", err) }
	}
	srv, err := devstack.StartServer(so)
	if err != nil {
		return nil, "", nil, err
	}
	store, err := objstore.Open(ctx, srv.StoreOptions(benchBucket))
	if err != nil {
		srv.Close()
		return nil, "", nil, err
	}
	return store, string(srv.Kind), srv.Close, nil
}

// startMinIO is startStore for benchmarks that measure MinIO itself and
// refuse the embedded server.
func startMinIO(ctx context.Context, dir, bench string) (*objstore.Store, func(), error) {
	srv, store, err := startMinIOServer(ctx, dir, bench)
	if err != nil {
		return nil, nil, err
	}
	return store, srv.Close, nil
}

// benchBucket is the bucket every benchmark's store opens.
const benchBucket = "gridlake-bench"

// startMinIOServer starts a MinIO server under dir and opens the bench
// bucket on it; the server is returned for benchmarks that start gridlake
// processes on the same store (its endpoint and keys). Closing the server
// is the caller's.
func startMinIOServer(ctx context.Context, dir, bench string) (*devstack.Server, *objstore.Store, error) {
	srv, err := devstack.StartServer(devstack.ServerOptions{Dir: dir, Kind: devstack.MinIO})
	if err != nil {
		return nil, nil, fmt.Errorf("bench %s needs MinIO (run `make deps`): %w", bench, err)
	}
	store, err := objstore.Open(ctx, srv.StoreOptions(benchBucket))
	if err != nil {
		srv.Close()
		return nil, nil, err
	}
	return srv, store, nil
}

// percentile is the p-quantile of sorted latencies (0 when none).
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}

// Fleet is the shape of the traffic a benchmark preloads: the reference
// fleet is 30,000 batteries at one reading a second and 1,000 rooms.
type Fleet struct {
	Batteries   int
	Rooms       int
	Partitions  int
	FillSeconds int // fleet-seconds preloaded
}

// fill sends FillSeconds of the fleet into the broker as fast as it takes
// them, stamped as the last FillSeconds, and returns how many messages went
// and at what rate.
func fill(ctx context.Context, w simulate.Sink, f Fleet, progress io.Writer) (int64, float64, error) {
	st, rate, err := fillStats(ctx, w, f, progress)
	return st.Sent, rate, err
}

// fillStats is fill returning what the simulator sent, by topic.
func fillStats(ctx context.Context, w simulate.Sink, f Fleet, progress io.Writer) (simulate.Stats, float64, error) {
	fmt.Fprintf(progress, "bench: filling the broker with %d fleet-seconds of %d batteries and %d rooms\n", f.FillSeconds, f.Batteries, f.Rooms)
	d := time.Duration(f.FillSeconds) * time.Second
	sim := simulate.New(simulate.Options{Batteries: f.Batteries, Rooms: f.Rooms, Rate: 1, Seed: 1, Start: time.Now().Add(-d)})
	t0 := time.Now()
	if err := sim.Run(ctx, w, simulate.RunOptions{Duration: d, Fast: true, Progress: progress, ProgressEvery: 5 * time.Second}); err != nil {
		return simulate.Stats{}, 0, err
	}
	st := sim.Stats()
	rate := float64(st.Sent) / time.Since(t0).Seconds()
	fmt.Fprintf(progress, "bench: filled %d events at %.0f/s\n", st.Sent, rate)
	return st, rate, nil
}
