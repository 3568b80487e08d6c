// Package lake defines the lake's shared contract: object keys, the batch
// manifest that commits a cut, and the generation boundaries the speed layer
// publishes so batch cuts can fall on them. The batch layer writes
// manifests; the speed and serving layers read them.
package lake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gridlake/gridlake/objstore"
)

// Cut is one Kafka offset per partition per topic: the batch view covers
// records below it, the speed layer those at or above it.
type Cut map[string][]int64

// Offset returns the cut's offset of a partition, 0 when the cut does not
// name it (nothing of it is in batch).
func (c Cut) Offset(topic string, partition int) int64 {
	offs := c[topic]
	if partition < len(offs) {
		return offs[partition]
	}
	return 0
}

// Manifest is one committed version of the lake.
type Manifest struct {
	Version     int64     `json:"version"`
	Cut         Cut       `json:"cut"`
	CommittedAt time.Time `json:"committed_at"`
	// CutTime is the greatest Kafka record time below the cut; the speed
	// layer replays from a little before it to seed de-duplication.
	CutTime time.Time `json:"cut_time"`
	// ClosedThrough is the last local day whose room reports batch has
	// closed ("" when none); days after it are open and served by speed.
	ClosedThrough string `json:"closed_through,omitempty"`
	// Files are the live raw Parquet files: together they hold every valid
	// record below the cut exactly once.
	Files []File `json:"files"`
	// Views are the batch views, consistent with Files: each view file was
	// computed from exactly the raw files its Sources names.
	Views []ViewFile `json:"views"`
	// Garbage are objects replaced or expired by this or earlier versions:
	// readers of older versions may still read them, so they are deleted
	// only a grace period after Since.
	Garbage []Garbage `json:"garbage,omitempty"`
	// Run says what produced this version.
	Run RunInfo `json:"run"`
	// Fences is, per scheduled job, the newest run number that committed:
	// an older run of that job can never commit after it (see Fence).
	Fences map[string]int64 `json:"fences,omitempty"`
}

// Garbage is an object no longer referenced, and since when.
type Garbage struct {
	Key   string    `json:"key"`
	Since time.Time `json:"since"`
}

// Next returns a copy of m as the base of the following version.
func (m *Manifest) Next(kind string, now time.Time) *Manifest {
	n := *m
	n.Version = m.Version + 1
	n.Cut = Cut{}
	for t, offs := range m.Cut {
		n.Cut[t] = append([]int64(nil), offs...)
	}
	n.Files = append([]File(nil), m.Files...)
	n.Views = append([]ViewFile(nil), m.Views...)
	n.Garbage = append([]Garbage(nil), m.Garbage...)
	n.Run = RunInfo{Kind: kind, Started: now, Previous: m.Version}
	return &n
}

// ViewFile is one partition of a batch view.
type ViewFile struct {
	View string `json:"view"` // battery_1m, battery_1h, battery_1d, fleet_1m, ...
	// Part is the view partition: a UTC hour (2006-01-02T15) for the minute
	// and hour views, a UTC day (2006-01-02) for the daily ones.
	Part string `json:"part"`
	Key  string `json:"key"`
	ETag string `json:"etag"`
	Rows int64  `json:"rows"`
	// Sources fingerprints the inputs (raw file keys, or the hourly views of
	// a day); a partition whose inputs changed is recomputed.
	Sources string `json:"sources"`
	// Logic is the version of the computation; raising it recomputes.
	Logic int `json:"logic"`
	// Settings are the recompute settings the partition was built with
	// (lineage: a backfill after a settings change shows here).
	Settings string `json:"settings,omitempty"`
	// Zone is the time zone a room day was closed in.
	Zone string `json:"zone,omitempty"`
	// Revision counts how often a closed room day was computed: late
	// events re-close a day with a higher revision.
	Revision int64 `json:"revision,omitempty"`
}

// File is one raw Parquet object.
type File struct {
	Key       string `json:"key"`
	Topic     string `json:"topic"`
	Partition int    `json:"partition"`
	// FirstOffset and LastOffset bound the Kafka range the file was cut
	// from (inclusive); its rows are that range's valid records whose
	// event time falls in Hour.
	FirstOffset int64  `json:"first_offset"`
	LastOffset  int64  `json:"last_offset"`
	Hour        string `json:"hour"` // UTC, 2006-01-02T15
	Rows        int64  `json:"rows"`
	Bytes       int64  `json:"bytes"`
	ETag        string `json:"etag"`
}

// RunInfo is the lineage of a manifest version.
type RunInfo struct {
	Kind    string    `json:"kind"` // compact, recompute, rebuild, backfill, merge, retention, collect
	Started time.Time `json:"started"`
	Rows    int64     `json:"rows"`
	Invalid int64     `json:"invalid"`
	// DeadLetters are the rows of gridlake.dlq compacted (not in Rows).
	DeadLetters int64 `json:"dead_letters,omitempty"`
	Bytes       int64 `json:"bytes"`
	Previous    int64 `json:"previous_version"`
	// Job and Token name the scheduled run that committed (see Fence).
	Job   string `json:"job,omitempty"`
	Token int64  `json:"token,omitempty"`
	// From and To bound a backfill (local days, inclusive); Settings are
	// the recompute settings it ran with.
	From     string `json:"from,omitempty"`
	To       string `json:"to,omitempty"`
	Settings string `json:"settings,omitempty"`
}

const manifestDir = "_manifests/"

// ManifestKey is the object key of a manifest version.
func ManifestKey(version int64) string { return fmt.Sprintf("%s%020d.json", manifestDir, version) }

// latestHint names the newest version known; it is only a hint, written
// after each commit, so readers probe forward from it rather than listing.
const latestHint = manifestDir + "latest"

// ErrConflict means another writer committed the version first.
var ErrConflict = errors.New("manifest version already committed")

// Commit writes m as the next version with a conditional put. It fails with
// ErrConflict when that version exists, so two batch runs can never both
// commit the same version.
//
// A context carrying a Fence (WithFence) also refuses a commit by a run
// whose lease a newer run of the same job has taken.
func Commit(ctx context.Context, s objstore.Bucket, m *Manifest) error {
	if err := fence(ctx, m); err != nil {
		return err
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if _, err := s.PutIfAbsent(ctx, ManifestKey(m.Version), data); err != nil {
		if objstore.IsConditionNotMet(err) {
			return fmt.Errorf("commit manifest %d: %w", m.Version, ErrConflict)
		}
		return fmt.Errorf("commit manifest %d: %w", m.Version, err)
	}
	// The hint is best effort: a reader that finds it stale probes forward.
	_, _ = s.Put(ctx, latestHint, []byte(strconv.FormatInt(m.Version, 10)))
	return nil
}

// Latest returns the newest committed manifest, or nil when none exists.
func Latest(ctx context.Context, s objstore.Bucket) (*Manifest, error) {
	v := int64(0)
	if data, _, err := s.Get(ctx, latestHint); err == nil {
		v, _ = strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	} else if !objstore.IsNotFound(err) {
		return nil, fmt.Errorf("read manifest hint: %w", err)
	}
	var newest *Manifest
	if v > 0 {
		m, err := Read(ctx, s, v)
		if err != nil && !objstore.IsNotFound(err) {
			return nil, err
		}
		newest = m
	}
	for next := v + 1; ; next++ {
		m, err := Read(ctx, s, next)
		if objstore.IsNotFound(err) {
			return newest, nil
		}
		if err != nil {
			return nil, err
		}
		newest = m
	}
}

// Read returns one manifest version.
func Read(ctx context.Context, s objstore.Bucket, version int64) (*Manifest, error) {
	data, _, err := s.Get(ctx, ManifestKey(version))
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("manifest %d is corrupt: %w", version, err)
	}
	return &m, nil
}

// Boundaries are the generation boundaries a speed process publishes for a
// partition it owns: offsets where its state can be split, oldest first.
type Boundaries struct {
	Topic     string    `json:"topic"`
	Partition int       `json:"partition"`
	Offsets   []int64   `json:"offsets"`
	Updated   time.Time `json:"updated"`
}

// SpeedGroup is the speed layer's consumer group when none is configured:
// the group whose published boundaries batch cuts fall on.
const SpeedGroup = "gridlake-speed"

// BoundariesKey is where the speed group publishes a partition's boundaries.
func BoundariesKey(group, topic string, partition int) string {
	return fmt.Sprintf("_speed/%s/%s/p%d.json", group, topic, partition)
}

// PublishBoundaries writes a partition's boundaries.
func PublishBoundaries(ctx context.Context, s objstore.Bucket, group string, b Boundaries) error {
	data, err := json.Marshal(b)
	if err != nil {
		return err
	}
	if _, err := s.Put(ctx, BoundariesKey(group, b.Topic, b.Partition), data); err != nil {
		return fmt.Errorf("publish generation boundaries: %w", err)
	}
	return nil
}

// ReadBoundaries reads a partition's published boundaries; none is not an
// error (the speed layer may not run).
func ReadBoundaries(ctx context.Context, s objstore.Bucket, group, topic string, partition int) (Boundaries, error) {
	data, _, err := s.Get(ctx, BoundariesKey(group, topic, partition))
	if objstore.IsNotFound(err) {
		return Boundaries{Topic: topic, Partition: partition}, nil
	}
	if err != nil {
		return Boundaries{}, err
	}
	var b Boundaries
	return b, json.Unmarshal(data, &b)
}
