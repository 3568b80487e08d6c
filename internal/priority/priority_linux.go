package priority

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// Lower sets the nice value of every thread of the process to n (0..19).
// Linux keeps a nice value per thread and new threads inherit their
// creator's, so setting every current thread covers the threads the Go
// runtime starts later too.
func Lower(n int) error {
	if n <= 0 {
		return nil
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return fmt.Errorf("lower CPU priority: %w", err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, n); err != nil {
			return fmt.Errorf("lower CPU priority of thread %d to nice %d: %w", tid, n, err)
		}
	}
	return nil
}
