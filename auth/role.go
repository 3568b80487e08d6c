// Package auth says who a caller is and what they may do (DESIGN §9):
// users and API tokens with roles, stored as hashes in a users file, checked
// in constant time; sessions for the dashboard; SCRAM-SHA-256 verifiers for
// the PostgreSQL port; and the rule that a process without configured users
// binds loopback only.
package auth

import (
	"context"
	"fmt"
)

// Role is what a principal may do. Each role may do everything the roles
// below it may.
type Role int

const (
	// None is no role: an unauthenticated caller.
	None Role = iota
	// Viewer reads the dashboard and every GET /v1 answer.
	Viewer
	// Analyst adds SQL: POST /v1/sql and the PostgreSQL port.
	Analyst
	// Engineer adds triggering, re-running and backfilling jobs.
	Engineer
	// Admin adds /metrics, /debug/pprof and user and token management.
	Admin
)

var roleNames = [...]string{None: "none", Viewer: "viewer", Analyst: "analyst", Engineer: "engineer", Admin: "admin"}

func (r Role) String() string {
	if r < None || r > Admin {
		return fmt.Sprintf("role(%d)", int(r))
	}
	return roleNames[r]
}

// ParseRole reads a role name.
func ParseRole(s string) (Role, error) {
	for r, n := range roleNames {
		if r != int(None) && n == s {
			return Role(r), nil
		}
	}
	return None, fmt.Errorf("%q is not a role: viewer, analyst, engineer or admin", s)
}

// Principal is an authenticated caller.
type Principal struct {
	Name string // user or token name
	Role Role
	// Kind is "user" (signed in with a password) or "token".
	Kind string
}

// String names the principal for logs and job run history: "token:grafana".
func (p Principal) String() string {
	if p.Name == "" {
		return "anonymous"
	}
	return p.Kind + ":" + p.Name
}

// May reports whether p holds at least role r.
func (p Principal) May(r Role) bool { return p.Role >= r }

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal of a request, if it was authenticated.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
