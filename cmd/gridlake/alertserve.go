package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/gridlake/gridlake/alertd"
	"github.com/gridlake/gridlake/alerts"
	"github.com/gridlake/gridlake/config"
	"github.com/gridlake/gridlake/internal/httpx"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/metrics"
	"github.com/gridlake/gridlake/objstore"
	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/serving"
	"github.com/gridlake/gridlake/speed"
)

// alerting is the serving process's side of the alerts: the feed of
// gridlake.alerts into the book behind /v1/alerts, the pipeline rules,
// the silences and the webhook deliverers.
type alerting struct {
	cfg        *config.Config
	rules      *alerts.Active
	layer      *speed.Layer // nil when serve fans out to speed processes
	feed       *alertd.Feed
	leader     *alertd.Leadership
	pipeline   *alertd.Pipeline
	silences   *alertd.Silences
	deliverers []*alertd.Deliverer
	log        *slog.Logger
}

// startAlerting builds the alerting of a serving process and mounts
// /v1/alerts on mux; join runs it.
func startAlerting(ctx context.Context, cfg *config.Config, brokers []string, store objstore.Bucket, layer *speed.Layer, sv *servingStack, jobs *processJobs,
	reg *metrics.Registry, w kafkaio.Writer, health *httpx.Health, mux *http.ServeMux, log *slog.Logger) (*alerting, error) {
	log = log.With("layer", "alerts")
	rules := alerts.Defaults()
	if cfg.Alerts.RulesFile != "" {
		var err error
		if rules, err = alerts.ReadFile(cfg.Alerts.RulesFile); err != nil {
			return nil, err
		}
	}
	al := &alerting{cfg: cfg, rules: alerts.NewActive(rules), layer: layer, log: log}
	book := alertd.NewBook(cfg.Notify.HistoryLimit, reg)
	al.feed = &alertd.Feed{Brokers: brokers, Book: book, Log: log}
	al.silences = alertd.NewSilences(store, cfg.Notify.MaxSilences, nil)
	if err := al.silences.Refresh(ctx); err != nil {
		log.Warn("silences not read yet; retrying every notify.silence_poll", "err", err)
	}
	// One serving process at a time writes the pipeline transitions, or
	// each replica would alert with its own start (alertd/leader.go).
	al.leader = alertd.NewLeadership(brokers, reg, log)
	al.pipeline = &alertd.Pipeline{Rules: al.rules.Rules, Probe: newAlertProbe(layer, brokers, sv.merger, jobs, reg), Book: book,
		Leader: al.leader, Sync: al.feed.Sync,
		Every: cfg.Notify.PipelineEvery, Log: log, Write: func(ctx context.Context, ts ...alerts.Transition) error {
			msgs := make([]kafka.Message, 0, len(ts))
			for _, t := range ts {
				m, err := alertd.Encode(t)
				if err != nil {
					return err
				}
				msgs = append(msgs, m)
			}
			return w.WriteMessages(ctx, msgs...)
		}}
	if cfg.Notify.ReceiversFile != "" {
		recv, err := alertd.ReadReceivers(cfg.Notify.ReceiversFile)
		if err != nil {
			return nil, err
		}
		o := alertd.DeliveryOptions{Brokers: brokers, ExternalURL: cfg.Notify.ExternalURL, RetryBase: cfg.Notify.RetryBase, RetryMax: cfg.Notify.RetryMax,
			DeadLetterAfter: cfg.Notify.DeadLetterAfter, QueueCapacity: cfg.Notify.QueueCapacity, Silences: al.silences, Metrics: reg, Log: log}
		for _, r := range recv {
			al.deliverers = append(al.deliverers, alertd.NewDeliverer(r, o))
		}
	}
	// /readyz says so while the whole fleet is silent: the operator's
	// first question is whether data still arrives.
	health.Add("ingest", func(context.Context) error {
		stale, last, after, ok := al.pipeline.Stale()
		if ok && stale {
			return fmt.Errorf("stale: no record reached the speed layer for %s (the last at %s; rule ingest_stale fires after %s)",
				time.Since(last).Round(time.Second), last.UTC().Format(time.RFC3339), after)
		}
		return nil
	})
	serving.NewAPI(sv.merger, nil).WithLimits(apiLimits(cfg)).WithAlerts(&serving.Alerts{Book: book, Silences: al.silences, Rules: al.rules.Rules,
		CaughtUp: al.feed.CaughtUp, Ingest: al.pipeline.Stale, MaxSilence: cfg.Notify.MaxSilence, Now: time.Now}).RegisterAlerts(mux)
	return al, nil
}

func apiLimits(cfg *config.Config) serving.Limits {
	h := cfg.HTTP
	return serving.Limits{MaxWindows: h.MaxWindows, MaxDays: h.MaxDays, MaxHotelDays: h.MaxHotelDays, MaxIDs: h.MaxIDs, MaxPage: h.MaxPage}
}

// join adds the alerting actors to the process's lifecycle.
func (al *alerting) join(lc *lifecycle) {
	lc.add("alert feed", al.feed.Run)
	lc.add("pipeline alerts leader election", al.leader.Run)
	lc.add("pipeline alert rules", func(ctx context.Context) error { return al.pipeline.Run(ctx, al.feed.Ready()) })
	lc.add("silences", func(ctx context.Context) error {
		al.silences.Poll(ctx, al.cfg.Notify.SilencePoll, func(err error) { al.log.Warn("read silences", "err", err) })
		return nil
	})
	for _, d := range al.deliverers {
		lc.add("alert webhook", d.Run)
	}
	if al.cfg.Alerts.RulesFile != "" {
		lc.add("alert rules (serving)", al.reloadRules)
	}
}

// reloadRules re-reads the rules file on SIGHUP and when it changes, for
// the pipeline rules and /v1/alerts/rules and, when the speed layer runs
// in this process (up, serve.speed=local), for its evaluators too: one
// watcher, so the two never hold different rules.
func (al *alerting) reloadRules(ctx context.Context) error {
	return watchRules(ctx, al.cfg.Alerts.RulesFile, al.log, func(rules []alerts.Rule) {
		al.rules.Set(rules)
		if al.layer != nil {
			al.layer.SetRules(rules)
		}
	})
}

// alertProbe is what the pipeline rules watch in this process.
type alertProbe struct {
	layer   *speed.Layer // nil when serve fans out to speed processes
	brokers []string
	merger  *serving.Merger
	jobs    *processJobs
	letters *metrics.Counter

	mu      sync.Mutex
	jobsAt  time.Time
	failing []alertd.FailedJob
}

func newAlertProbe(layer *speed.Layer, brokers []string, m *serving.Merger, jobs *processJobs, reg *metrics.Registry) *alertProbe {
	// The speed layer's count of the messages it sent to the dead-letter
	// queue (the same counter, looked up by name).
	return &alertProbe{layer: layer, brokers: brokers, merger: m, jobs: jobs, letters: reg.Counter("gridlake_speed_invalid_total", "rejected messages")}
}

// SpeedLag is the local speed layer's lag; a serve that fans out has none
// (each speed process reports its own on /metrics and /speed/v1/status).
func (p *alertProbe) SpeedLag() int64 {
	if p.layer == nil {
		return 0
	}
	return p.layer.MaxLag()
}
func (p *alertProbe) DeadLetters() uint64 { return p.letters.Value() }

// Records is the sum of the event partitions' high watermarks as the
// speed layer fetched them: it moves when a record reaches the layer, not
// when the layer replays. ok once every partition caught up.
func (p *alertProbe) Records() (int64, bool) {
	if p.layer == nil {
		// Fanning out: the event topics' high watermarks, from Kafka.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n, err := kafkaio.HighWatermarks(ctx, p.brokers, schemas.TopicBattery, schemas.TopicRoom)
		return n, err == nil
	}
	var n int64
	parts := 0
	for _, pi := range p.layer.Status().Partitions {
		if pi.Topic != schemas.TopicBattery && pi.Topic != schemas.TopicRoom {
			continue
		}
		if !pi.CaughtUp {
			return 0, false
		}
		parts++
		n += pi.Next + pi.Lag
	}
	return n, parts > 0
}

func (p *alertProbe) Store() (bool, time.Time, string) { return p.merger.StoreDown() }

// Jobs reads the job history at most every 30 s: it lives in the lake.
func (p *alertProbe) Jobs(ctx context.Context) ([]alertd.FailedJob, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.jobsAt) < 30*time.Second {
		return p.failing, nil
	}
	st, err := p.jobs.sch.Status(ctx)
	if err != nil {
		return nil, err
	}
	p.failing = p.failing[:0]
	for _, s := range st {
		if s.Failing && s.Last != nil {
			p.failing = append(p.failing, alertd.FailedJob{Name: s.Name, Ended: s.Last.Ended, Error: s.Last.Error})
		}
	}
	p.jobsAt = time.Now()
	return p.failing, nil
}
