package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/schemas"
)

// KafkaReadResult is the JSON line of `gridlake bench kafka-read`, the
// speed bench's peer: a bare kafka-go consumer that reads every record and
// discards it, the ceiling of any consumer of the same records.
type KafkaReadResult struct {
	Bench       string  `json:"bench"`
	Records     int64   `json:"records"`
	Seconds     float64 `json:"seconds"`
	RecordsPerS float64 `json:"records_per_s"`
}

// KafkaRead reads the battery and room topics' partitions from their first
// to their last offset at the start, one connection and goroutine per
// partition, with the fetch the speed layer uses (kafka-go's Conn.ReadBatch
// of up to 4 MiB), and discards the records.
func KafkaRead(ctx context.Context, brokers []string, partitions int) (KafkaReadResult, error) {
	res := KafkaReadResult{Bench: "kafka-read"}
	start := time.Now()
	n, err := readPartitions(ctx, brokers, partitions, func(string, int) (func(kafka.Message) error, func() error, error) {
		return func(kafka.Message) error { return nil }, func() error { return nil }, nil
	})
	if err != nil {
		return res, err
	}
	res.Records, res.Seconds = n, time.Since(start).Seconds()
	res.RecordsPerS = round0(float64(n) / res.Seconds)
	res.Seconds = round2(res.Seconds)
	return res, nil
}

// readPartitions reads every battery and room partition from its first
// offset to the end offset it has when the read starts, in parallel, and
// hands each record to the sink open gives that partition (closed after
// the last). It returns the records read.
func readPartitions(ctx context.Context, brokers []string, partitions int,
	open func(topic string, partition int) (each func(kafka.Message) error, done func() error, err error)) (int64, error) {
	type result struct {
		n   int64
		err error
	}
	var wg sync.WaitGroup
	var topics = []string{schemas.TopicBattery, schemas.TopicRoom}
	results := make([]result, len(topics)*partitions)
	for ti, topic := range topics {
		for p := 0; p < partitions; p++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := &results[ti*partitions+p]
				each, done, err := open(topic, p)
				if err != nil {
					r.err = err
					return
				}
				r.n, r.err = readPartition(ctx, brokers, topic, p, each)
				r.err = errors.Join(r.err, done())
			}()
		}
	}
	wg.Wait()
	var total int64
	for _, r := range results {
		if r.err != nil {
			return total, r.err
		}
		total += r.n
	}
	return total, nil
}

func readPartition(ctx context.Context, brokers []string, topic string, partition int, each func(kafka.Message) error) (int64, error) {
	conn, err := kafkaio.DialLeader(ctx, brokers, topic, partition)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	first, last, err := conn.ReadOffsets()
	if err != nil {
		return 0, fmt.Errorf("offsets of %s/%d: %w", topic, partition, err)
	}
	if _, err := conn.Seek(first, kafka.SeekAbsolute); err != nil {
		return 0, fmt.Errorf("seek %s/%d to %d: %w", topic, partition, first, err)
	}
	var n int64
	for next := first; next < last; {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		batch := conn.ReadBatchWith(kafka.ReadBatchConfig{MinBytes: 1, MaxBytes: 4 << 20, MaxWait: 250 * time.Millisecond})
		for next < last {
			m, err := batch.ReadMessage()
			if err != nil {
				break
			}
			next = m.Offset + 1
			n++
			if err := each(m); err != nil {
				batch.Close()
				return n, err
			}
		}
		if err := batch.Close(); err != nil && next < last && !kafkaio.IsTimeout(err) {
			return n, fmt.Errorf("read %s/%d at %d: %w", topic, partition, next, err)
		}
	}
	return n, nil
}

// runKafkaRead runs the bare consumer as its own process, like the speed
// process it is compared with.
func runKafkaRead(ctx context.Context, bin, broker string, partitions int, progress io.Writer) (KafkaReadResult, error) {
	var res KafkaReadResult
	cmd := exec.CommandContext(ctx, bin, "bench", "kafka-read", "--kafka-brokers", broker, "--partitions", strconv.Itoa(partitions))
	cmd.Env = os.Environ()
	cmd.Stderr = progress
	out, err := cmd.Output()
	if err != nil {
		return res, fmt.Errorf("bare consumer process: %w", err)
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return res, fmt.Errorf("read the bare consumer's line %q: %w", out, err)
	}
	return res, nil
}
