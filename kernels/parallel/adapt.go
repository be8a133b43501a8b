package parallel

import (
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// A second thread pays only while the pool's threads own their cores. On a
// shared machine (other processes runnable: load above the core count) a
// batch-1 engine at 2 threads loses more to preempted helpers (the caller
// waits for an item a descheduled helper holds) and to spinning threads
// that the OS then preempts for a whole time slice than the split saves:
// mobilenetv2 INT8 on the 2-core Zen 4 at load 2.6–3, 8 alternating runs,
// median ms: 1 thread 3.23, 2 threads 5.24 (4.17 without spinning); on an
// idle machine 2 threads take 1.9. So Run checks whether its splits pay:
// from the caller's own items it estimates what the caller alone would have
// taken (its drain time per item × the items) and sums that against the
// parallel calls' wall time. Once a window's wall time exceeds payRatio of
// the estimate, the splits did not pay (the helpers hardly helped, or the
// caller waited for them), and Runs compute alone for a back-off window
// (minAlone, doubling while each probe after one fails, up to maxAlone);
// then threads are tried again. Which items a thread computes never
// changes what an item computes, so results stay bit-identical.
const (
	payWindow = 2 * time.Millisecond // parallel wall time per decision
	payRatio  = 1.0                  // wall / alone estimate above which splits don't pay
	minAlone  = 10 * time.Millisecond
	maxAlone  = 160 * time.Millisecond
	// probeWarmup: Runs that start this soon after a back-off window are
	// not counted. The helpers parked during the window, and the first
	// Runs after it pay their wake-ups; counting those made probes fail
	// on an idle machine and kept 2 threads on one (mobilenetv2 INT8 at
	// 3.1 ms instead of 1.8 in some runs).
	probeWarmup = time.Millisecond
)

// Adapt switches the check on: KILN_POOL_ADAPT=1, off by default. On the
// loaded Zen 4 it took mobilenetv2 INT8 at 2 threads from 5.35 to 3.35 ms,
// but in quieter minutes its medians were 3-20% above the plain pool's
// (2.56 vs 2.48 ms at load 0.5-1.4): it can sit on one thread through a
// fast stretch. Never in test binaries, where a thread count must mean that
// many threads (results are compared across thread counts, also under
// -race, and benchmarks measure the split itself).
var Adapt = !testing.Testing() && os.Getenv("KILN_POOL_ADAPT") == "1"

var (
	epoch = time.Now()
	// Sums over the current window of threaded Runs (nanoseconds): their
	// wall time and the estimate of the same Runs on the caller alone.
	wallSum, aloneSum atomic.Int64
	// aloneUntil ends the current back-off window (nanoseconds since
	// epoch); aloneFor is its length, lastFail when the last one opened.
	aloneUntil, aloneFor, lastFail atomic.Int64
)

// now is the monotonic time since epoch in nanoseconds.
func now() int64 { return int64(time.Since(epoch)) }

// alone reports whether Runs should compute on the caller alone now.
func alone() bool {
	return Adapt && aloneUntil.Load() > now()
}

// account adds one threaded Run to the window: it started at start, the
// caller drained its items (kc of n) by drained and the Run ended at end.
func account(start, drained, end int64, kc, n int) {
	if !Adapt || kc <= 0 {
		return // the helpers took every item: nothing to estimate from
	}
	if start < aloneUntil.Load()+int64(probeWarmup) {
		return // helpers parked during the window are waking up
	}
	est := (drained - start) * int64(n) / int64(kc)
	a := aloneSum.Add(est)
	w := wallSum.Add(end - start)
	if w < int64(payWindow) {
		return
	}
	if !wallSum.CompareAndSwap(w, 0) {
		return // another caller closed the window
	}
	aloneSum.Add(-a)
	if float64(w) > payRatio*float64(a) {
		fail(end)
	}
}

// fail opens a back-off window at t: minAlone, or twice the previous one if
// this is the first window of threaded Runs after it.
func fail(t int64) {
	d := aloneFor.Load()
	if prev := lastFail.Load(); d == 0 || t-prev > 2*d+int64(payWindow)*8 {
		d = int64(minAlone)
	} else {
		d = min(2*d, int64(maxAlone))
	}
	aloneFor.Store(d)
	lastFail.Store(t)
	aloneUntil.Store(t + d)
}
