package lake

import (
	"context"
	"errors"
	"fmt"
)

// Fence guards a commit made on behalf of a scheduled job. A job holds a
// lease with a fencing token (its run number, rising with every run of the
// job); a holder that stalled past its lease must not commit over the work
// of the replica that took over.
type Fence interface {
	// Job and Token identify the run: Token rises with every run of Job.
	Job() string
	Token() int64
	// Check fails when the lease is no longer this run's.
	Check(ctx context.Context) error
}

// ErrFenced means a commit was refused because a newer run of the same job
// holds the lease or has committed already.
var ErrFenced = errors.New("refused: a newer run of this job holds the lease")

type fenceKey struct{}

// WithFence returns a context whose commits are fenced by f. Every commit
// path of the batch layer goes through Commit, so a job fences all of them
// by running with this context.
func WithFence(ctx context.Context, f Fence) context.Context {
	return context.WithValue(ctx, fenceKey{}, f)
}

// fence applies the context's fence to m: it refuses when a newer run of
// the job committed an earlier version (m.Fences is inherited) or when the
// lease is gone, and records the run in m otherwise.
func fence(ctx context.Context, m *Manifest) error {
	f, _ := ctx.Value(fenceKey{}).(Fence)
	if f == nil {
		return nil
	}
	job, token := f.Job(), f.Token()
	if newest := m.Fences[job]; newest > token {
		return fmt.Errorf("commit manifest %d as %s run %d: run %d committed already: %w", m.Version, job, token, newest, ErrFenced)
	}
	if err := f.Check(ctx); err != nil {
		return fmt.Errorf("commit manifest %d as %s run %d: %w", m.Version, job, token, errors.Join(ErrFenced, err))
	}
	fences := make(map[string]int64, len(m.Fences)+1)
	for k, v := range m.Fences {
		fences[k] = v
	}
	fences[job] = token
	m.Fences = fences
	m.Run.Job, m.Run.Token = job, token
	return nil
}
