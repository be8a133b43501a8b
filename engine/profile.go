package engine

import "time"

// Profiler receives the time of every executed step (trtexec's
// --dumpProfile). StepDone is called from Execute on the context's
// goroutine, after step (an index into Plan.Steps) finished; shape steps,
// computed in the shape pass, are not reported.
type Profiler interface {
	StepDone(step int, d time.Duration)
}

// SetProfiler installs p (nil removes it). Without a profiler Execute reads
// no clock and allocates nothing extra.
func (c *Context) SetProfiler(p Profiler) { c.profiler = p }
