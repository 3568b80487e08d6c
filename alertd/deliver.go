package alertd

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/gridlake/gridlake/alerts"
	"github.com/gridlake/gridlake/internal/wait"
	"github.com/gridlake/gridlake/metrics"
)

// GroupPrefix starts the consumer group of each receiver.
const GroupPrefix = "gridlake-alerts-webhook-"

// DeliveryOptions are the webhook settings shared by the receivers
// (config notify.*).
type DeliveryOptions struct {
	Brokers     []string
	ExternalURL string // the dashboard's URL, for generatorURL
	// RetryBase and RetryMax bound the exponential backoff (with jitter)
	// between attempts at one transition.
	RetryBase, RetryMax time.Duration
	// DeadLetterAfter is how long one transition is retried before it is
	// dropped to the log; a transition older than this when read is not
	// sent at all (a receiver added long after).
	DeadLetterAfter time.Duration
	// QueueCapacity bounds the transitions fetched ahead of delivery.
	QueueCapacity int
	Silences      Silencer
	Metrics       *metrics.Registry
	Log           *slog.Logger
	Now           func() time.Time
	Client        *http.Client
}

// Silencer tells whether a transition is silenced.
type Silencer interface {
	Silenced(t alerts.Transition) (id string, ok bool)
}

// Delivery outcomes, the outcome label of
// gridlake_alert_webhook_deliveries_total.
const (
	OutcomeDelivered  = "delivered"
	OutcomeSilenced   = "silenced"
	OutcomeDuplicate  = "duplicate"
	OutcomeDeadLetter = "dead_letter"
	OutcomeRejected   = "rejected"
	OutcomeExpired    = "expired"
)

// Deliverer sends every transition to one receiver, at least once. Each
// receiver has its own consumer group on gridlake.alerts, shared by the
// serving replicas: each transition goes out from one replica, a dead
// receiver holds back only its own group, and the group's offset is
// committed only after the transition was delivered (or given up on), so
// a restart resumes at the first transition not yet delivered. The group's
// reader fetches at most QueueCapacity ahead: the queue is bounded.
type Deliverer struct {
	r Receiver
	o DeliveryOptions
	// sent remembers recent (ID, State) pairs delivered, so a copy written
	// again by a restarted evaluator is not sent twice.
	sent  map[string]bool
	sentQ []string

	failures *metrics.Counter
}

// NewDeliverer returns the deliverer of one receiver.
func NewDeliverer(r Receiver, o DeliveryOptions) *Deliverer {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Metrics == nil {
		o.Metrics = metrics.NewRegistry()
	}
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	if o.QueueCapacity <= 0 {
		o.QueueCapacity = 100
	}
	d := &Deliverer{r: r, o: o, sent: map[string]bool{}}
	d.failures = o.Metrics.Counter("gridlake_alert_webhook_failures_total", "failed webhook attempts (each is retried)", "receiver", r.Name)
	return d
}

func (d *Deliverer) count(outcome string) {
	d.o.Metrics.Counter("gridlake_alert_webhook_deliveries_total", "alert transitions handled per webhook receiver, by outcome", "receiver", d.r.Name, "outcome", outcome).Add(1)
}

// Run delivers until ctx ends.
func (d *Deliverer) Run(ctx context.Context) error {
	rd := kafka.NewReader(kafka.ReaderConfig{Brokers: d.o.Brokers, GroupID: GroupPrefix + d.r.Name, Topic: alerts.Topic,
		StartOffset: kafka.FirstOffset, MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 500 * time.Millisecond,
		QueueCapacity: d.o.QueueCapacity, SessionTimeout: 10 * time.Second, RebalanceTimeout: 10 * time.Second,
		HeartbeatInterval: time.Second, CommitInterval: 0})
	defer rd.Close()
	for {
		m, err := rd.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			d.o.Log.Warn("alert webhook: fetch", "receiver", d.r.Name, "err", err)
			if err := wait.Sleep(ctx, time.Second); err != nil {
				return nil
			}
			continue
		}
		if !d.handle(ctx, m) {
			return nil // stopped mid-delivery: not committed, sent again after a restart
		}
		// Commit even while stopping: the transition was handled.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		err = rd.CommitMessages(cctx, m)
		cancel()
		if err != nil {
			d.o.Log.Warn("alert webhook: commit (the transition may be sent again)", "receiver", d.r.Name, "offset", m.Offset, "err", err)
		}
	}
}

// handle delivers one message, retrying; false when ctx ended first.
func (d *Deliverer) handle(ctx context.Context, m kafka.Message) bool {
	var t alerts.Transition
	if err := json.Unmarshal(m.Value, &t); err != nil || t.Rule == "" {
		d.o.Log.Warn("alert webhook: not a transition, skipped", "partition", m.Partition, "offset", m.Offset)
		return true
	}
	key := t.ID() + "|" + string(t.State)
	switch {
	case d.sent[key]:
		d.count(OutcomeDuplicate)
		return true
	case !m.Time.IsZero() && d.o.Now().Sub(m.Time) > d.o.DeadLetterAfter:
		d.o.Log.Warn("alert webhook: transition older than notify.dead_letter_after, not sent", "receiver", d.r.Name, "alert", t.ID(), "state", t.State, "written", m.Time)
		d.count(OutcomeExpired)
		return true
	}
	if id, ok := d.o.Silences.Silenced(t); ok {
		d.o.Log.Info("alert webhook: silenced", "receiver", d.r.Name, "alert", t.ID(), "state", t.State, "silence", id)
		d.count(OutcomeSilenced)
		d.remember(key)
		return true
	}
	p := NewPayload(t, d.r.Name, d.o.ExternalURL)
	first := d.o.Now()
	for attempt := 0; ; attempt++ {
		err := post(ctx, d.o.Client, d.r, p)
		if err == nil {
			d.count(OutcomeDelivered)
			d.remember(key)
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		d.failures.Add(1)
		var perm permanent
		if errors.As(err, &perm) {
			d.o.Log.Error("alert webhook: the receiver refused the transition; dropped to this log", "receiver", d.r.Name, "alert", t.ID(), "state", t.State, "err", err)
			d.count(OutcomeRejected)
			return true
		}
		if d.o.Now().Sub(first) >= d.o.DeadLetterAfter {
			body, _ := json.Marshal(p)
			d.o.Log.Error("alert webhook: dead letter: retried longer than notify.dead_letter_after", "receiver", d.r.Name, "alert", t.ID(), "state", t.State, "attempts", attempt+1, "err", err, "payload", string(body))
			d.count(OutcomeDeadLetter)
			return true
		}
		wait := d.backoff(attempt)
		d.o.Log.Warn("alert webhook: retrying", "receiver", d.r.Name, "alert", t.ID(), "attempt", attempt+1, "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
	}
}

// backoff is the wait before attempt+1: exponential from RetryBase up to
// RetryMax, with jitter (half to all of it) so replicas and receivers
// coming back do not retry in step.
func (d *Deliverer) backoff(attempt int) time.Duration {
	w := d.o.RetryMax
	if attempt < 30 {
		w = min(d.o.RetryMax, d.o.RetryBase<<attempt)
	}
	return w/2 + rand.N(w/2+1)
}

func (d *Deliverer) remember(key string) {
	const keep = 10_000
	d.sent[key] = true
	d.sentQ = append(d.sentQ, key)
	if len(d.sentQ) > 2*keep {
		for _, k := range d.sentQ[:keep] {
			delete(d.sent, k)
		}
		d.sentQ = append(d.sentQ[:0], d.sentQ[keep:]...)
	}
}
