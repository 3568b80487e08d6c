package lake

import "fmt"

// BehindCutMetric counts the refusals of a layer to go on because a topic
// partition ends below the lake's cut; any increase needs an operator.
const BehindCutMetric = "gridlake_topic_behind_cut_total"

// BehindCutError means a Kafka partition's newest offset is below the
// lake's committed cut for it: the topic was re-created or emptied (Kafka's
// log directory was lost). Reading on would skip the new records at the
// offsets the lake already covers, so batch and speed stop instead.
type BehindCutError struct {
	Layer     string // "batch" or "speed": who refused
	Topic     string
	Partition int
	Cut       int64 // the lake's cut offset of the partition
	Newest    int64 // the partition's high watermark; 0 when it is missing
	Missing   bool  // the topic now has fewer partitions than the cut names
	Version   int64 // the manifest version holding the cut
}

func (e *BehindCutError) Error() string {
	what := fmt.Sprintf("newest offset %d is below", e.Newest)
	if e.Missing {
		what = "partition no longer exists, yet it has"
	}
	return fmt.Sprintf("%s stopped: Kafka topic %s partition %d: %s the lake's committed cut %d (manifest version %d). "+
		"The topic was re-created or emptied (was Kafka's log directory on a persistent volume?); going on would silently skip "+
		"its records at offsets below %d. Restore the topic's data (the Kafka volume) and restart, or keep the lake in a new bucket "+
		"(s3.bucket); the metric %s counts these refusals",
		e.Layer, e.Topic, e.Partition, what, e.Cut, e.Version, e.Cut, BehindCutMetric)
}

// CheckBehind returns a *BehindCutError when newest, a partition's high
// watermark, is below m's cut for it. A nil manifest has no cut.
func CheckBehind(layer string, m *Manifest, topic string, partition int, newest int64) error {
	if m == nil {
		return nil
	}
	cut := m.Cut.Offset(topic, partition)
	if newest >= cut {
		return nil
	}
	return &BehindCutError{Layer: layer, Topic: topic, Partition: partition, Cut: cut, Newest: newest, Version: m.Version}
}

// CheckPartitions returns a *BehindCutError when m's cut names a partition
// of topic at or beyond n (the topic's partition count now) with records
// below the cut: a topic re-created with fewer partitions.
func CheckPartitions(layer string, m *Manifest, topic string, n int) error {
	if m == nil {
		return nil
	}
	for p := n; p < len(m.Cut[topic]); p++ {
		if cut := m.Cut[topic][p]; cut > 0 {
			return &BehindCutError{Layer: layer, Topic: topic, Partition: p, Cut: cut, Missing: true, Version: m.Version}
		}
	}
	return nil
}
