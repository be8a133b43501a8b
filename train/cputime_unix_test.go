//go:build unix

package train

import (
	"syscall"
	"time"
)

// processCPU is the user+system CPU time of the process so far: the
// benchmarks report it per step because wall time on a shared machine
// counts other people's work.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
