// Package fsjail confines the file access of the calling OS thread with
// Linux Landlock: after RestrictThread the thread, and every thread it
// creates afterwards, can open only the files beneath the given paths.
// Other threads of the process are unaffected, so a Go program confines a
// goroutine that called runtime.LockOSThread and never unlocks it (the
// thread then exits with its goroutine instead of going back to the pool).
package fsjail

import "errors"

// ErrUnsupported means the kernel has no Landlock (or it is disabled): the
// thread was left unconfined.
var ErrUnsupported = errors.New("landlock is not available on this kernel")

// Rule grants access beneath one path (a directory and everything in it,
// or one file).
type Rule struct {
	Path  string
	Write bool // also create, write, truncate and remove; otherwise read only
	// Optional rules are skipped when the path does not exist.
	Optional bool
}
