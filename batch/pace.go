package batch

import (
	"context"
	"sync"
	"time"

	"github.com/gridlake/gridlake/internal/wait"
)

// pacer holds readers to an average rate: after n records in all it makes
// the caller wait until n/rate seconds have passed since the start. A nil
// pacer, or one with no rate, never waits.
type pacer struct {
	mu    sync.Mutex
	rate  float64
	start time.Time
	done  int64
}

func newPacer(perSecond float64, start time.Time) *pacer {
	if perSecond <= 0 {
		return nil
	}
	return &pacer{rate: perSecond, start: start}
}

func (p *pacer) wait(ctx context.Context, n int64) error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	p.done += n
	due := p.start.Add(time.Duration(float64(p.done) / p.rate * float64(time.Second)))
	p.mu.Unlock()
	return wait.Sleep(ctx, time.Until(due))
}
