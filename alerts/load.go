package alerts

import (
	"fmt"
	"io"
	"os"
	"sync/atomic"
)

// ReadFile reads and checks a rules file, at most MaxRulesBytes.
func ReadFile(path string) ([]Rule, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("alerts.rules_file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxRulesBytes+1))
	if err != nil {
		return nil, fmt.Errorf("alerts.rules_file %s: %w", path, err)
	}
	rules, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("alerts.rules_file %s: %w", path, err)
	}
	return rules, nil
}

// Active holds the rules in use, swapped whole on a reload.
type Active struct{ p atomic.Pointer[[]Rule] }

// NewActive returns the rules in use, starting with rules.
func NewActive(rules []Rule) *Active {
	a := &Active{}
	a.Set(rules)
	return a
}

// Set replaces the rules.
func (a *Active) Set(rules []Rule) { a.p.Store(&rules) }

// Rules returns the rules in use; callers must not modify them.
func (a *Active) Rules() []Rule { return *a.p.Load() }
