//go:build !linux

package fsjail

// ABI reports that only Linux has Landlock.
func ABI() (int, error) { return 0, ErrUnsupported }

// RestrictThread leaves the thread unconfined: only Linux has Landlock.
func RestrictThread([]Rule) error { return ErrUnsupported }
