//go:build !linux

package priority

// Lower is a no-op where threads have no nice values of their own.
func Lower(n int) error { return nil }
