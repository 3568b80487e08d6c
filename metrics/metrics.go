// Package metrics exposes counters and gauges in the Prometheus text format
// at /metrics. It is deliberately small: labelled counters and gauges read
// from functions at scrape time, which is all gridlake needs.
package metrics

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Registry holds metric families.
type Registry struct {
	mu       sync.Mutex
	families map[string]*family
}

type family struct {
	name, help, kind string
	counters         map[string]*Counter // label text -> counter
	gauges           func() []Sample
}

// Sample is one gauge value with its labels ("k=v" pairs).
type Sample struct {
	Labels []string
	Value  float64
}

// Counter is a monotonically increasing count.
type Counter struct{ v atomic.Uint64 }

// Add increases the counter; hot paths add once per batch.
func (c *Counter) Add(n uint64) { c.v.Add(n) }

// Value returns the count.
func (c *Counter) Value() uint64 { return c.v.Load() }

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{families: map[string]*family{}} }

// Counter returns the counter of name with labels ("k", "v", ...),
// creating it on first use.
func (r *Registry) Counter(name, help string, labels ...string) *Counter {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.families[name]
	if f == nil {
		f = &family{name: name, help: help, kind: "counter", counters: map[string]*Counter{}}
		r.families[name] = f
	}
	key := labelText(labels)
	c := f.counters[key]
	if c == nil {
		c = &Counter{}
		f.counters[key] = c
	}
	return c
}

// GaugeFunc registers a gauge family whose samples fn returns at scrape time.
func (r *Registry) GaugeFunc(name, help string, fn func() []Sample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.families[name] = &family{name: name, help: help, kind: "gauge", gauges: fn}
}

func labelText(labels []string) string {
	if len(labels) == 0 {
		return ""
	}
	parts := make([]string, 0, len(labels)/2)
	for i := 0; i+1 < len(labels); i += 2 {
		parts = append(parts, fmt.Sprintf("%s=%q", labels[i], labels[i+1]))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// Write renders every family in the Prometheus text format.
func (r *Registry) Write(w io.Writer) {
	r.mu.Lock()
	names := make([]string, 0, len(r.families))
	for n := range r.families {
		names = append(names, n)
	}
	sort.Strings(names)
	fams := make([]*family, len(names))
	for i, n := range names {
		fams[i] = r.families[n]
	}
	r.mu.Unlock()
	for _, f := range fams {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", f.name, f.help, f.name, f.kind)
		if f.gauges != nil {
			for _, s := range f.gauges() {
				fmt.Fprintf(w, "%s%s %g\n", f.name, labelText(s.Labels), s.Value)
			}
			continue
		}
		r.mu.Lock()
		keys := make([]string, 0, len(f.counters))
		for k := range f.counters {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "%s%s %d\n", f.name, k, f.counters[k].Value())
		}
		r.mu.Unlock()
	}
}

// Handler serves /metrics.
func (r *Registry) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		r.Write(w)
	})
}
