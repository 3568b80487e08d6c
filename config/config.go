// Package config holds gridlake's settings: one struct, defaults in one
// place, loaded from a YAML file, GRIDLAKE_* environment variables and
// command-line flags (in rising precedence), and validated all at once so a
// bad setting fails at start with a precise message.
package config

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"time"

	"github.com/gridlake/gridlake/schemas"
)

// Config is every setting of every subcommand. A subcommand reads the parts
// it needs. Each field's YAML key, flag and environment variable derive from
// its yaml tag path (see Keys): s3.access_key is --s3-access-key and
// GRIDLAKE_S3_ACCESS_KEY.
type Config struct {
	DataDir string `yaml:"data_dir" help:"folder of the embedded broker's log and the embedded object store"`
	Log     Log    `yaml:"log"`
	Kafka   Kafka  `yaml:"kafka"`
	S3      S3     `yaml:"s3"`
	Site    Site   `yaml:"site"`
	Events  Events `yaml:"events"`
	HTTP    HTTP   `yaml:"http"`
	Notify  Notify `yaml:"notify"`
	Batch   Batch  `yaml:"batch"`
	Serve   Serve  `yaml:"serve"`
	Speed   Speed  `yaml:"speed"`
	Jobs    Jobs   `yaml:"jobs"`
	Sim     Sim    `yaml:"simulate"`
	Auth    Auth   `yaml:"auth"`
	Alerts  Alerts `yaml:"alerts"`
}

// Alerts configures the control room's alert rules (DESIGN §11).
type Alerts struct {
	Enabled   bool          `yaml:"enabled" help:"evaluate the alert rules in the speed layer and write transitions to gridlake.alerts"`
	RulesFile string        `yaml:"rules_file" help:"YAML file of alert rules (rules: [...]), reloaded on SIGHUP or when it changes; empty: the built-in defaults"`
	Lateness  time.Duration `yaml:"lateness" help:"an event counts for alerts when its ts is at most this far behind the greatest record time before it in its partition; alerts wait this long for stragglers"`
	// SnapshotEvery bounds how much a restarted speed process replays
	// into its alert evaluators.
	SnapshotEvery time.Duration `yaml:"snapshot_every" help:"how often the speed layer stores its alert evaluators' state in the object store"`
}

// Auth configures who may do what (DESIGN §9). Users and tokens live in the
// users file, as hashes, written by `gridlake auth`.
type Auth struct {
	UsersFile string `yaml:"users_file" help:"YAML file of users and API tokens (hashes only), written by gridlake auth and reloaded when it changes; empty: <data_dir>/users.yaml"`
	// SessionSecret signs dashboard session cookies; replicas behind one
	// load balancer need the same one.
	SessionSecret string        `yaml:"session_secret" secret:"true" help:"key that signs dashboard session cookies, 32+ characters; empty: a random key per process (sessions end on restart)"`
	SessionTTL    time.Duration `yaml:"session_ttl" help:"a dashboard sign-in lasts this long"`
}

// UsersPath is the users file of this configuration.
func (c *Config) UsersPath() string {
	if c.Auth.UsersFile != "" {
		return c.Auth.UsersFile
	}
	return filepath.Join(c.DataDir, "users.yaml")
}

type Batch struct {
	MergeAfter time.Duration `yaml:"merge_after" help:"merge an hour's small raw files once the hour ended this long ago"`
	Grace      time.Duration `yaml:"grace" help:"replaced lake objects stay readable this long before deletion"`
	// The three limits keep batch work from starving the speed layer.
	Concurrency      int     `yaml:"concurrency" help:"Kafka partitions a compaction reads at once"`
	MaxRecordsPerSec float64 `yaml:"max_records_per_s" help:"cap on Kafka records a compaction reads per second (0: none)"`
	Threads          int     `yaml:"threads" help:"DuckDB threads of the batch recompute (0: every core)"`
	Nice             int     `yaml:"nice" help:"CPU nice value (0-19) of gridlake jobs and gridlake batch processes, so they yield to the speed layer on a shared machine"`
	// DLQMaxValueBytes bounds what the lake's dead_letters table keeps of a
	// rejected message's value and key; value_bytes keeps the full length.
	DLQMaxValueBytes int `yaml:"dlq_max_value_bytes" help:"bytes of a rejected message's value (and key) the dead_letters table keeps"`
	// DLQMaxRunBytes bounds the dead letters one compaction holds in
	// memory per dlq partition; the next run takes the rest.
	DLQMaxRunBytes int `yaml:"dlq_max_run_bytes" help:"bytes of dead letters a compaction holds per gridlake.dlq partition before it cuts there"`
}

// Jobs configures the scheduler of the batch jobs (gridlake up, gridlake
// jobs). Each job runs every Every, or on Cron; a job with neither only
// runs when triggered (gridlake jobs run, POST /v1/jobs/NAME/run).
type Jobs struct {
	Enabled   bool     `yaml:"enabled" help:"run the job scheduler in gridlake up and gridlake serve"`
	Compact   Schedule `yaml:"compact"`
	Recompute Schedule `yaml:"recompute"`
	Close     Schedule `yaml:"close"`
	Merge     Schedule `yaml:"merge"`
	Retain    Schedule `yaml:"retain"`
	Collect   Schedule `yaml:"collect"`
	// Lease is how long a run holds its slot without renewing it; a
	// replica takes over a slot whose holder died once the lease ran out.
	Lease   time.Duration `yaml:"lease" help:"lease of a running job, renewed while it runs; a dead holder's slot is taken over after it"`
	Retries int           `yaml:"retries" help:"attempts after the first failure of a run"`
	Backoff time.Duration `yaml:"backoff" help:"wait before the first retry, doubled for each next one"`
	Timeout time.Duration `yaml:"timeout" help:"a run taking longer is cancelled and fails"`
	// BackfillMaxDays bounds one backfill, checked before its slot is claimed.
	BackfillMaxDays int `yaml:"backfill_max_days" help:"most local days one backfill may cover; split longer ranges"`
}

// Schedule is when a job runs: every interval, aligned to multiples of it,
// or on a cron expression (5 fields, or 6 with seconds; CRON_TZ=Zone first
// for local times). Empty cron for the close job means local midnight of
// site.timezone plus events.close_grace.
type Schedule struct {
	Every time.Duration `yaml:"every" help:"run every this long, aligned to multiples of it (0: use cron)"`
	Cron  string        `yaml:"cron" help:"cron expression, for example '*/5 * * * *' or 'CRON_TZ=Asia/Seoul 0 1 * * *'"`
}

type Log struct {
	Level  string `yaml:"level" help:"log level: debug, info, warn or error"`
	Format string `yaml:"format" help:"log format: text or json"`
}

type Kafka struct {
	Brokers      []string `yaml:"brokers" help:"Kafka bootstrap host:port list, comma separated; empty starts the embedded broker"`
	EmbeddedPort int      `yaml:"embedded_port" help:"port of the embedded broker on 127.0.0.1 (0 picks a free one)"`
	Partitions   int      `yaml:"partitions" help:"partitions of the topics gridlake creates"`
	Replication  int      `yaml:"replication" help:"replication factor of the topics gridlake creates"`
	// Retention must exceed the batch interval by a wide margin: the speed
	// layer rebuilds itself by replaying Kafka from the last batch cut.
	Retention time.Duration `yaml:"retention" help:"retention of the topics gridlake creates; must far exceed the batch interval"`
}

type S3 struct {
	Endpoint     string `yaml:"endpoint" help:"MinIO/S3 host:port; empty starts the embedded S3-compatible server"`
	EmbeddedPort int    `yaml:"embedded_port" help:"port of the embedded S3 server on 127.0.0.1 (0 picks a free one)"`
	AccessKey    string `yaml:"access_key" help:"S3 access key"`
	SecretKey    string `yaml:"secret_key" secret:"true" help:"S3 secret key"`
	Bucket       string `yaml:"bucket" help:"bucket of the lake (created when missing)"`
	Region       string `yaml:"region" help:"S3 region"`
	UseTLS       bool   `yaml:"use_tls" help:"connect to the S3 endpoint with TLS"`
	// Timeout bounds every store call, so an outage degrades answers
	// instead of hanging them.
	Timeout time.Duration `yaml:"timeout" help:"an object store call fails once the store made no progress for this long; serving then answers from the last loaded batch version"`
}

type Site struct {
	Timezone string `yaml:"timezone" help:"IANA time zone of the hotel's local days (room energy report)"`
	Tariff   Tariff `yaml:"tariff"`
}

// Tariff prices the hotel's energy: the API and dashboard show each kWh's
// cost and CO2 beside it. The defaults suit the reference site in Seoul.
type Tariff struct {
	Currency    string  `yaml:"currency" help:"ISO 4217 code of the energy price, for example KRW or EUR"`
	PricePerKWh float64 `yaml:"price_per_kwh" help:"energy price per kWh in site.tariff.currency"`
	CO2GPerKWh  float64 `yaml:"co2_g_per_kwh" help:"grams of CO2 emitted per kWh drawn from the grid"`
}

type Events struct {
	Retention  time.Duration `yaml:"retention" help:"reject events older than this before their Kafka record time; also the lake's horizon"`
	MaxAhead   time.Duration `yaml:"max_ahead" help:"reject events whose ts is this far ahead of their Kafka record time"`
	CloseGrace time.Duration `yaml:"close_grace" help:"a local day is closed by batch this long after it ends"`
}

type HTTP struct {
	Addr string `yaml:"addr" help:"listen address of the HTTP API, dashboard, /healthz and /metrics"`
	// TLS from certificate files; both set turns HTTPS on.
	TLSCertFile string `yaml:"tls_cert_file" help:"PEM certificate (chain) of the HTTP listener; with tls_key_file, serve HTTPS"`
	TLSKeyFile  string `yaml:"tls_key_file" help:"PEM private key of the HTTP listener"`
	// These reap half-open and idle connections of the HTTP API and the
	// embedded S3 server, so they cannot exhaust file descriptors.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout" help:"a connection that has not sent its request headers within this is closed (HTTP API and embedded S3)"`
	IdleTimeout       time.Duration `yaml:"idle_timeout" help:"an idle keep-alive connection is closed after this (HTTP API and embedded S3)"`
	MaxHeaderBytes    int           `yaml:"max_header_bytes" help:"request headers larger than this are refused with 431 (HTTP API and embedded S3)"`
	// Bounds of one /v1 request, checked before any work is done for it.
	MaxWindows int `yaml:"max_windows" help:"most windows a /v1 stats range may hold (to-from over res)"`
	MaxDays    int `yaml:"max_days" help:"most days a /v1/rooms/{id}/days range may hold"`
	// A hotel day replays every room whose day is open: a tighter bound.
	MaxHotelDays int `yaml:"max_hotel_days" help:"most days a /v1/hotel/days trend may hold"`
	MaxIDs       int `yaml:"max_ids" help:"most ids in one ids= list of /v1/batteries"`
	MaxPage      int `yaml:"max_page" help:"largest limit= of a /v1 listing"`
}

// Serve configures the serving layer's SQL access.
type Serve struct {
	PGAddr string `yaml:"pg_addr" help:"listen address of the PostgreSQL wire protocol (psql -h host -p port); empty disables it"`
	// TLS for PostgreSQL clients: with both set, SSLRequest is answered.
	PGTLSCertFile string        `yaml:"pg_tls_cert_file" help:"PEM certificate (chain) of the PostgreSQL listener; with pg_tls_key_file, clients may use sslmode=require/verify-full"`
	PGTLSKeyFile  string        `yaml:"pg_tls_key_file" help:"PEM private key of the PostgreSQL listener"`
	PGTLSRequired bool          `yaml:"pg_tls_required" help:"with a PostgreSQL certificate, refuse clients that do not use TLS (FATAL 28000 before sign-in)"`
	SQLTimeout    time.Duration `yaml:"sql_timeout" help:"a SQL query running longer is cancelled"`
	SQLMaxRows    int           `yaml:"sql_max_rows" help:"a SQL query returning more rows is refused"`
	// The SQL engine's bounds (serving/sql.go).
	SQLMaxResultBytes int `yaml:"sql_max_result_bytes" help:"a SQL query whose values add up to more text bytes is refused (too_large)"`
	SQLMemoryLimit    int `yaml:"sql_memory_limit" help:"bytes of memory the SQL engine's DuckDB may use (it spills to disk beyond); a query needing more is refused (too_large)"`
	SQLMaxSpillBytes  int `yaml:"sql_max_spill_bytes" help:"bytes of disk the SQL engine's DuckDB may spill to beyond its memory; a query needing more is refused (too_large)"`
	SQLMaxConcurrent  int `yaml:"sql_max_concurrent" help:"SQL queries running at once; more wait up to 1s, then get 429 / SQLSTATE 53300"`
	SQLMaxBodyBytes   int `yaml:"sql_max_body_bytes" help:"a POST /v1/sql body larger than this gets 413"`
	SQLMaxRoomDays    int `yaml:"sql_max_room_days" help:"local days the SQL tables room_day_live and hotel_day may span (from the first room day through today); past it a query reading them is refused (too_large)"`

	PGMaxConns        int           `yaml:"pg_max_conns" help:"concurrent PostgreSQL sessions; past it a client gets FATAL 53300 too_many_connections"`
	PGStartupTimeout  time.Duration `yaml:"pg_startup_timeout" help:"a PostgreSQL connection must finish startup and authentication within this"`
	PGIdleTimeout     time.Duration `yaml:"pg_idle_timeout" help:"a PostgreSQL session sending nothing (or reading nothing) this long is closed"`
	PGWriteTimeout    time.Duration `yaml:"pg_write_timeout" help:"a PostgreSQL client reading none of its results this long is closed (it would hold a SQL engine thread)"`
	PGMaxMessageBytes int           `yaml:"pg_max_message_bytes" help:"largest PostgreSQL protocol message after authentication (before it: 8 KiB); a bigger one closes the session"`
	PGMaxSessionBytes int           `yaml:"pg_max_session_bytes" help:"bytes of prepared statements and bound portals one PostgreSQL session may hold"`

	// Arrow Flight SQL (serving/flightsql); TLS from the pg_tls_* files.
	FlightAddr            string        `yaml:"flight_addr" help:"listen address of Arrow Flight SQL (grpc://host:port for ADBC, pandas, polars); TLS with serve.pg_tls_cert_file/pg_tls_key_file; empty disables it"`
	FlightMaxConns        int           `yaml:"flight_max_conns" help:"concurrent Flight SQL connections; more wait to be accepted"`
	FlightMaxMessageBytes int           `yaml:"flight_max_message_bytes" help:"largest gRPC message a Flight SQL client may send (queries, bound parameters)"`
	FlightIdleTimeout     time.Duration `yaml:"flight_idle_timeout" help:"a Flight SQL connection without calls this long is closed"`

	// Speed is where the speed side of the merge comes from.
	Speed        string        `yaml:"speed" help:"local: run the speed layer in this process (it must own every partition); remote: ask the gridlake speed processes that announce themselves in the lake"`
	SpeedToken   string        `yaml:"speed_token" secret:"true" help:"with serve.speed=remote: bearer token of an engineer (or admin) that the speed processes' users file knows"`
	SpeedTimeout time.Duration `yaml:"speed_timeout" help:"with serve.speed=remote: one call to a speed process fails after this"`
	// SpeedMaxAnswerBytes bounds what one speed process may answer.
	SpeedMaxAnswerBytes int `yaml:"speed_max_answer_bytes" help:"with serve.speed=remote: largest answer one speed process may send"`
}

// Speed configures how speed processes and serving processes find each
// other (DESIGN §12): each gridlake speed process announces itself in the
// lake; a gridlake serve with serve.speed=remote asks them.
type Speed struct {
	// AdvertiseURL is how serving processes reach this speed process.
	AdvertiseURL  string        `yaml:"advertise_url" help:"base URL serving processes reach this speed process's /speed/v1 at (http://speed-1:8080); empty: http:// and the bound http.addr"`
	AnnounceEvery time.Duration `yaml:"announce_every" help:"how often a speed process publishes what it owns in the lake (_speed/<group>/members/)"`
	MemberTTL     time.Duration `yaml:"member_ttl" help:"a speed process that published nothing for this long counts as gone"`
	// SourceMaxItems bounds one answer of the source interface.
	SourceMaxItems int `yaml:"source_max_items" help:"most items (battery windows, readings, rooms) one answer of /speed/v1/source/ may hold"`
}

// Sim configures the device simulator (gridlake simulate, gridlake up --simulate).
type Sim struct {
	Batteries int           `yaml:"batteries" help:"simulated battery packs"`
	Rooms     int           `yaml:"rooms" help:"simulated hotel rooms"`
	Rate      float64       `yaml:"rate" help:"readings per second per battery"`
	Seed      uint64        `yaml:"seed" help:"random seed; the same seed sends the same messages"`
	Duration  time.Duration `yaml:"duration" help:"stop after this much simulated time (0 runs until interrupted)"`
	Start     string        `yaml:"start" help:"simulated start time, RFC 3339 (empty: now)"`
	Fast      bool          `yaml:"fast" help:"send as fast as possible instead of pacing to real time"`
	Duplicate float64       `yaml:"duplicate" help:"probability that a message is sent twice"`
	Reorder   time.Duration `yaml:"reorder" help:"maximum delay of a reordered message (0: in order)"`
	Loss      float64       `yaml:"loss" help:"probability that a message is lost"`
	Late      float64       `yaml:"late" help:"probability that a message is held back as an edge backlog"`
	LateDelay time.Duration `yaml:"late_delay" help:"how old the edge backlog is when it is finally sent"`
	Malformed float64       `yaml:"malformed" help:"probability of a malformed message"`
	Record    string        `yaml:"record" help:"write every message sent, as NDJSON, to this file"`
}

// Default returns the documented defaults: an embedded single-machine stack.
func Default() Config {
	return Config{
		DataDir: "./data",
		Log:     Log{Level: "info", Format: "text"},
		Kafka: Kafka{
			EmbeddedPort: 19092,
			Partitions:   12,
			Replication:  1,
			Retention:    7 * 24 * time.Hour,
		},
		S3: S3{
			EmbeddedPort: 19000,
			AccessKey:    "gridlake",
			SecretKey:    "gridlake-secret",
			Bucket:       "gridlake",
			Region:       "us-east-1",
			Timeout:      5 * time.Second,
		},
		// KEPCO's general-service rate is about 150 KRW/kWh; Korea's grid
		// emission factor (GIR) is 0.4594 tCO2/MWh.
		Site: Site{Timezone: "Asia/Seoul", Tariff: Tariff{Currency: "KRW", PricePerKWh: 150, CO2GPerKWh: 459.4}},
		Events: Events{
			Retention:  30 * 24 * time.Hour,
			MaxAhead:   5 * time.Minute,
			CloseGrace: time.Hour,
		},
		HTTP: HTTP{Addr: "127.0.0.1:8080", ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
			MaxWindows: 100_000, MaxDays: 366, MaxHotelDays: 93, MaxIDs: 1000, MaxPage: 10_000},
		Batch: Batch{MergeAfter: 2 * time.Hour, Grace: time.Hour, Concurrency: 2 /* batch.DefaultConcurrency */, Threads: 1, Nice: 10,
			DLQMaxValueBytes: 4096 /* batch.DefaultLetterValueBytes */, DLQMaxRunBytes: 64 << 20 /* batch.DefaultMaxLetterBytes */},
		Jobs: Jobs{
			Enabled:   true,
			Compact:   Schedule{Every: 5 * time.Minute},
			Recompute: Schedule{Every: time.Hour},
			Merge:     Schedule{Every: time.Hour},
			Retain:    Schedule{Every: 24 * time.Hour},
			Collect:   Schedule{Every: time.Hour},
			Lease:     30 * time.Second,
			Retries:   3,
			Backoff:   5 * time.Second,
			Timeout:   time.Hour,
			// A year and a leap day: one backfill per year of history.
			BackfillMaxDays: 366,
		},
		Serve: Serve{PGAddr: "127.0.0.1:15432", SQLTimeout: 30 * time.Second, SQLMaxRows: 100_000,
			SQLMaxResultBytes: 64 << 20, SQLMemoryLimit: 1 << 30, SQLMaxSpillBytes: 4 << 30, SQLMaxConcurrent: 4, SQLMaxBodyBytes: 1 << 20, SQLMaxRoomDays: 400,
			PGMaxConns: 64, PGStartupTimeout: 10 * time.Second, PGIdleTimeout: 10 * time.Minute, PGWriteTimeout: 30 * time.Second,
			PGMaxMessageBytes: 1 << 20, PGMaxSessionBytes: 16 << 20,
			FlightAddr: "127.0.0.1:8815", FlightMaxConns: 64, FlightMaxMessageBytes: 4 << 20, FlightIdleTimeout: 10 * time.Minute,
			Speed: "local", SpeedTimeout: 5 * time.Second, SpeedMaxAnswerBytes: 256 << 20},
		Notify: defaultNotify(),
		Speed:  Speed{AnnounceEvery: time.Second, MemberTTL: 5 * time.Second, SourceMaxItems: 2_000_000},
		Sim: Sim{
			Batteries: 1000,
			Rooms:     50,
			Rate:      1,
			Seed:      1,
			LateDelay: 2 * time.Hour,
		},
		Auth:   Auth{SessionTTL: 12 * time.Hour},
		Alerts: Alerts{Enabled: true, Lateness: time.Minute, SnapshotEvery: 30 * time.Second},
	}
}

// Limits returns the validation limits of schemas for this configuration.
func (c *Config) Limits() schemas.Limits {
	return schemas.Limits{Retention: c.Events.Retention, MaxAhead: c.Events.MaxAhead}
}

// Location loads the site time zone.
func (c *Config) Location() (*time.Location, error) {
	return time.LoadLocation(c.Site.Timezone)
}

// Validate checks every setting and returns all problems at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.DataDir == "" {
		bad("data_dir", "must not be empty")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		bad("log.format", "%q is not text or json", c.Log.Format)
	}
	if c.Kafka.Partitions < 1 || c.Kafka.Partitions > 1000 {
		bad("kafka.partitions", "%d must be between 1 and 1000", c.Kafka.Partitions)
	}
	if c.Kafka.Replication < 1 {
		bad("kafka.replication", "%d must be at least 1", c.Kafka.Replication)
	}
	if c.Alerts.Lateness <= 0 || c.Alerts.Lateness > time.Hour {
		bad("alerts.lateness", "%s must be above 0 and at most 1h", c.Alerts.Lateness)
	}
	if c.Alerts.SnapshotEvery < 100*time.Millisecond || c.Alerts.SnapshotEvery > time.Hour {
		bad("alerts.snapshot_every", "%s must be 100ms to 1h", c.Alerts.SnapshotEvery)
	}
	if c.Kafka.Retention < time.Hour {
		bad("kafka.retention", "%s must be at least 1h: the speed layer replays Kafka from the last batch cut", c.Kafka.Retention)
	}
	checkPort(bad, "kafka.embedded_port", c.Kafka.EmbeddedPort)
	checkPort(bad, "s3.embedded_port", c.S3.EmbeddedPort)
	if c.S3.Bucket == "" {
		bad("s3.bucket", "must not be empty")
	}
	if len(c.S3.AccessKey) < 3 || len(c.S3.SecretKey) < 8 {
		bad("s3.access_key/s3.secret_key", "access key needs 3+ characters and secret key 8+ (MinIO's rule)")
	}
	if _, err := time.LoadLocation(c.Site.Timezone); err != nil {
		bad("site.timezone", "%q is not an IANA time zone (for example Asia/Seoul, Europe/Berlin)", c.Site.Timezone)
	}
	checkTariff(bad, c.Site.Tariff)
	if c.Events.Retention < time.Hour {
		bad("events.retention", "%s must be at least 1h", c.Events.Retention)
	}
	if c.Events.MaxAhead < 0 {
		bad("events.max_ahead", "%s must not be negative", c.Events.MaxAhead)
	}
	if c.Events.CloseGrace < 0 {
		bad("events.close_grace", "%s must not be negative", c.Events.CloseGrace)
	}
	if c.Batch.MergeAfter < 0 || c.Batch.Grace < 0 {
		bad("batch.merge_after/batch.grace", "must not be negative")
	}
	if c.Batch.Nice < 0 || c.Batch.Nice > 19 {
		bad("batch.nice", "%d must be between 0 (no change) and 19", c.Batch.Nice)
	}
	if c.Batch.Concurrency < 1 || c.Batch.Threads < 0 || c.Batch.MaxRecordsPerSec < 0 {
		bad("batch.concurrency/threads/max_records_per_s", "concurrency must be at least 1, threads and the rate not negative")
	}
	if c.Batch.DLQMaxValueBytes < 1 || c.Batch.DLQMaxValueBytes > 1<<20 {
		bad("batch.dlq_max_value_bytes", "%d must be between 1 and 1048576", c.Batch.DLQMaxValueBytes)
	}
	if c.Batch.DLQMaxRunBytes < 1 {
		bad("batch.dlq_max_run_bytes", "%d must be at least 1", c.Batch.DLQMaxRunBytes)
	}
	if c.Jobs.Lease < time.Second || c.Jobs.Retries < 0 || c.Jobs.Backoff < 0 || c.Jobs.Timeout <= 0 {
		bad("jobs.lease/retries/backoff/timeout", "lease must be at least 1s, retries and backoff not negative, timeout positive")
	}
	if c.Jobs.BackfillMaxDays < 1 {
		bad("jobs.backfill_max_days", "must be at least 1")
	}
	if c.HTTP.Addr == "" {
		bad("http.addr", "must not be empty (for example 127.0.0.1:8080)")
	}
	if c.HTTP.ReadHeaderTimeout <= 0 || c.HTTP.IdleTimeout <= 0 {
		bad("http.read_header_timeout/idle_timeout", "must be positive")
	}
	if c.HTTP.MaxHeaderBytes < 4<<10 || c.HTTP.MaxHeaderBytes > 16<<20 {
		bad("http.max_header_bytes", "%d must be between 4096 and 16777216", c.HTTP.MaxHeaderBytes)
	}
	if c.S3.Timeout < 100*time.Millisecond {
		bad("s3.timeout", "%s must be at least 100ms", c.S3.Timeout)
	}
	if h := c.HTTP; h.MaxWindows < 1 || h.MaxDays < 1 || h.MaxHotelDays < 1 || h.MaxIDs < 1 || h.MaxPage < 1 {
		bad("http.max_windows/max_days/max_hotel_days/max_ids/max_page", "must be at least 1")
	}
	if c.Serve.SQLTimeout <= 0 || c.Serve.SQLMaxRows <= 0 {
		bad("serve.sql_timeout/sql_max_rows", "must be positive")
	}
	if c.Serve.SQLMaxResultBytes < 1<<10 || c.Serve.SQLMaxBodyBytes < 1<<10 {
		bad("serve.sql_max_result_bytes/sql_max_body_bytes", "must be at least 1024 bytes")
	}
	if c.Serve.SQLMaxSpillBytes < 0 {
		bad("serve.sql_max_spill_bytes", "%d must not be negative", c.Serve.SQLMaxSpillBytes)
	}
	if c.Serve.SQLMemoryLimit < 64<<20 {
		bad("serve.sql_memory_limit", "%d must be at least 67108864 bytes (64 MiB) for DuckDB to run", c.Serve.SQLMemoryLimit)
	}
	if c.Serve.SQLMaxRoomDays < 1 || c.Serve.SQLMaxRoomDays > 100_000 {
		bad("serve.sql_max_room_days", "%d must be between 1 and 100000 (each day is every room's report, computed per query)", c.Serve.SQLMaxRoomDays)
	}
	if c.Serve.SQLMaxConcurrent < 1 || c.Serve.SQLMaxConcurrent > 256 {
		bad("serve.sql_max_concurrent", "%d must be between 1 and 256 (each is an engine thread)", c.Serve.SQLMaxConcurrent)
	}
	if c.Serve.PGMaxConns < 1 || c.Serve.PGStartupTimeout <= 0 || c.Serve.PGIdleTimeout <= 0 || c.Serve.PGWriteTimeout <= 0 {
		bad("serve.pg_max_conns/pg_startup_timeout/pg_idle_timeout/pg_write_timeout", "must be positive")
	}
	if c.Serve.PGMaxMessageBytes < 8<<10 || c.Serve.PGMaxMessageBytes > 1<<30 {
		bad("serve.pg_max_message_bytes", "%d must be between 8 KiB and 1 GiB", c.Serve.PGMaxMessageBytes)
	}
	if c.Serve.PGMaxSessionBytes < c.Serve.PGMaxMessageBytes {
		bad("serve.pg_max_session_bytes", "%d must be at least serve.pg_max_message_bytes (%d)", c.Serve.PGMaxSessionBytes, c.Serve.PGMaxMessageBytes)
	}
	if c.Serve.FlightMaxConns < 1 || c.Serve.FlightIdleTimeout <= 0 {
		bad("serve.flight_max_conns/flight_idle_timeout", "must be positive")
	}
	if c.Serve.FlightMaxMessageBytes < 64<<10 || c.Serve.FlightMaxMessageBytes > 1<<30 {
		bad("serve.flight_max_message_bytes", "%d must be between 64 KiB and 1 GiB", c.Serve.FlightMaxMessageBytes)
	}
	if c.Serve.Speed != "local" && c.Serve.Speed != "remote" {
		bad("serve.speed", "%q must be local or remote", c.Serve.Speed)
	}
	if c.Serve.SpeedTimeout <= 0 || c.Serve.SpeedMaxAnswerBytes < 1<<20 {
		bad("serve.speed_timeout/speed_max_answer_bytes", "must be positive, and answers at least 1 MiB")
	}
	if c.Speed.AnnounceEvery <= 0 || c.Speed.MemberTTL < 2*c.Speed.AnnounceEvery {
		bad("speed.announce_every/member_ttl", "must be positive, and the TTL at least twice the interval (%s, %s)", c.Speed.AnnounceEvery, c.Speed.MemberTTL)
	}
	if c.Speed.SourceMaxItems < 1000 {
		bad("speed.source_max_items", "%d must be at least 1000", c.Speed.SourceMaxItems)
	}
	if (c.HTTP.TLSCertFile == "") != (c.HTTP.TLSKeyFile == "") {
		bad("http.tls_cert_file/tls_key_file", "set both or neither")
	}
	if (c.Serve.PGTLSCertFile == "") != (c.Serve.PGTLSKeyFile == "") {
		bad("serve.pg_tls_cert_file/pg_tls_key_file", "set both or neither")
	}
	if c.Serve.PGTLSRequired && c.Serve.PGTLSCertFile == "" {
		bad("serve.pg_tls_required", "needs serve.pg_tls_cert_file and pg_tls_key_file")
	}
	if n := len(c.Auth.SessionSecret); n > 0 && n < 32 {
		bad("auth.session_secret", "has %d characters; use 32 or more (for example: openssl rand -base64 32)", n)
	}
	if c.Auth.SessionTTL < time.Minute {
		bad("auth.session_ttl", "%s must be at least 1m", c.Auth.SessionTTL)
	}
	s := c.Sim
	if s.Batteries < 0 || s.Rooms < 0 || s.Batteries+s.Rooms == 0 {
		bad("simulate.batteries/rooms", "need a non-negative count and at least one device")
	}
	if s.Rate <= 0 || s.Rate > 1000 {
		bad("simulate.rate", "%g must be above 0 and at most 1000 readings/s per battery", s.Rate)
	}
	for _, p := range []struct {
		key string
		v   float64
	}{{"simulate.duplicate", s.Duplicate}, {"simulate.loss", s.Loss}, {"simulate.late", s.Late}, {"simulate.malformed", s.Malformed}} {
		if p.v < 0 || p.v > 0.5 {
			bad(p.key, "%g must be a probability between 0 and 0.5", p.v)
		}
	}
	if s.Reorder < 0 || s.LateDelay < 0 || s.Duration < 0 {
		bad("simulate.reorder/late_delay/duration", "must not be negative")
	}
	if _, err := c.SimStart(time.Now()); err != nil {
		errs = append(errs, err)
	}
	if s.LateDelay >= c.Events.Retention {
		bad("simulate.late_delay", "%s must be shorter than events.retention %s, or every late event is rejected", s.LateDelay, c.Events.Retention)
	}
	c.Notify.validate(bad)
	return errors.Join(errs...)
}

// checkTariff: a currency code the dashboard can format, and finite,
// non-negative prices.
func checkTariff(bad func(string, string, ...any), t Tariff) {
	if len(t.Currency) != 3 || strings.ToUpper(t.Currency) != t.Currency || strings.Trim(t.Currency, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
		bad("site.tariff.currency", "%q is not an ISO 4217 code of three capital letters (for example KRW, EUR, USD)", t.Currency)
	}
	if !(t.PricePerKWh >= 0) || math.IsInf(t.PricePerKWh, 0) {
		bad("site.tariff.price_per_kwh", "%g must be a finite number, 0 or more", t.PricePerKWh)
	}
	if !(t.CO2GPerKWh >= 0) || math.IsInf(t.CO2GPerKWh, 0) {
		bad("site.tariff.co2_g_per_kwh", "%g must be a finite number, 0 or more", t.CO2GPerKWh)
	}
}

func checkPort(bad func(string, string, ...any), key string, port int) {
	if port < 0 || port > 65535 {
		bad(key, "%d is not a TCP port (0 picks a free one)", port)
	}
}

// BrokerAddrs are the Kafka brokers to connect to: the configured ones, or
// the embedded broker's address that `gridlake up` listens on.
func (c *Config) BrokerAddrs() []string {
	if len(c.Kafka.Brokers) > 0 {
		return c.Kafka.Brokers
	}
	return []string{fmt.Sprintf("127.0.0.1:%d", c.Kafka.EmbeddedPort)}
}

// S3Endpoint is the object store to connect to: the configured one, or the
// embedded server's address that `gridlake up` listens on.
func (c *Config) S3Endpoint() string {
	if c.S3.Endpoint != "" {
		return c.S3.Endpoint
	}
	return fmt.Sprintf("127.0.0.1:%d", c.S3.EmbeddedPort)
}

// SimStart parses simulate.start; empty means now.
func (c *Config) SimStart(now time.Time) (time.Time, error) {
	if c.Sim.Start == "" {
		return now, nil
	}
	t, err := time.Parse(time.RFC3339, c.Sim.Start)
	if err != nil {
		return t, fmt.Errorf("simulate.start: %q is not RFC 3339 (for example 2026-11-21T00:00:00Z)", c.Sim.Start)
	}
	return t, nil
}
