package alertd

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/gridlake/gridlake/alerts"
	"github.com/gridlake/gridlake/internal/wait"
	"github.com/gridlake/gridlake/metrics"
)

// LeaderGroup is the consumer group of the serving processes on
// gridlake.alerts in which the member assigned partition 0 writes the
// pipeline transitions.
const LeaderGroup = "gridlake-alerts-pipeline"

// Leader tells the pipeline whether this process writes its transitions.
type Leader interface {
	// Leading returns a context that ends when this process stops
	// leading, and whether it leads now.
	Leading() (context.Context, bool)
}

// Leadership elects one writer of the pipeline transitions among the
// serving processes, through Kafka: they join LeaderGroup on
// gridlake.alerts, and the member that partition 0 is assigned to leads
// for that group generation. Kafka decides because the transitions go to
// Kafka: a process that cannot reach the group coordinator could not write
// them either, while a lease in the lake would leave nobody to report the
// object store unreachable. A leader that dies is replaced once the group
// drops it (SessionTimeout); one that leaves says so and is replaced at
// once. The group reads and commits nothing.
type Leadership struct {
	Brokers []string
	// SessionTimeout is how long a silent member keeps its partitions;
	// 10 s when zero.
	SessionTimeout time.Duration
	Log            *slog.Logger

	mu   sync.Mutex
	lead context.Context // the generation's, while this process leads
}

// NewLeadership returns the election of the serving processes on
// brokers, reporting gridlake_alert_pipeline_leader on reg (may be nil).
func NewLeadership(brokers []string, reg *metrics.Registry, log *slog.Logger) *Leadership {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Leadership{Brokers: brokers, Log: log}
	if reg != nil {
		reg.GaugeFunc("gridlake_alert_pipeline_leader", "1 while this serving process writes the pipeline alerts' transitions (one process at a time does)", func() []metrics.Sample {
			v := 0.0
			if _, ok := l.Leading(); ok {
				v = 1
			}
			return []metrics.Sample{{Value: v}}
		})
	}
	return l
}

// Leading implements Leader.
func (l *Leadership) Leading() (context.Context, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lead == nil || l.lead.Err() != nil {
		return nil, false
	}
	return l.lead, true
}

func (l *Leadership) set(ctx context.Context) {
	l.mu.Lock()
	l.lead = ctx
	l.mu.Unlock()
}

// Run takes part in the election until ctx ends; leaving the group on
// the way out hands the lead over at once.
func (l *Leadership) Run(ctx context.Context) error {
	session := l.SessionTimeout
	if session <= 0 {
		session = 10 * time.Second
	}
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{ID: LeaderGroup, Brokers: l.Brokers, Topics: []string{alerts.Topic},
		SessionTimeout: session, RebalanceTimeout: session, HeartbeatInterval: min(time.Second, session/3), JoinGroupBackoff: time.Second})
	if err != nil {
		return err
	}
	defer group.Close()
	for attempt := 0; ; {
		gen, err := group.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			l.Log.Warn("pipeline alerts: leader election", "group", LeaderGroup, "err", err)
			if wait.Sleep(ctx, backoff(attempt)) != nil {
				return nil
			}
			attempt++
			continue
		}
		attempt = 0
		leads := false
		for _, pa := range gen.Assignments[alerts.Topic] {
			leads = leads || pa.ID == 0
		}
		if !leads {
			continue
		}
		l.Log.Info("pipeline alerts: this process writes them", "group", LeaderGroup, "generation", gen.ID)
		gen.Start(func(gctx context.Context) {
			l.set(gctx)
			<-gctx.Done()
			l.set(nil)
			l.Log.Info("pipeline alerts: this process no longer writes them", "group", LeaderGroup, "generation", gen.ID)
		})
	}
}
