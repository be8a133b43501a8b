// Package parallel is the persistent worker pool every CPU kernel shares.
// A kernel splits its work into items whose outputs are disjoint and whose
// arithmetic does not depend on which worker runs them, so results are
// bit-identical for any thread count; Run hands the items to up to
// `threads` workers (the caller is worker 0) without starting goroutines
// or allocating in steady state.
//
// Items are handed out in spans: worker w first takes the w-th of
// `threads` contiguous runs of items, front to back, and only then steals
// from the back of the others' runs. Kernels number their items so that
// neighbouring items touch neighbouring data (columns of a conv output,
// tiles, rows), so at batch 1 each core keeps computing the same part of
// every layer's output, and the next layer finds most of its input in its
// own core's cache instead of the other's (with one shared counter, which
// core got an item was a coin toss per item and layer). Stealing keeps the
// load balanced when a worker starts late or is descheduled.
package parallel

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Task is a unit of parallel work: Do computes item i on worker w
// (0 <= w < threads), which may index per-worker scratch memory.
type Task interface {
	Do(worker, item int)
}

// MaxWorkers bounds the pool (and so the worker ids a kernel sees).
const MaxWorkers = 256

// call is one Run. Helpers join it only while it is open: once the caller
// has drained the items itself it closes the call and waits only for the
// helpers that joined, so a helper the scheduler has not run yet (a busy
// machine) costs the caller nothing; its assignment, of an older
// generation by then, is dropped when it arrives.
type call struct {
	task  Task
	spans [MaxWorkers]span // worker w's run of items; used: the first `threads`
	th    int

	mu       sync.Mutex
	gen      uint64 // Run number of this call object (recycled through calls)
	closed   bool
	joined   int
	finished atomic.Int32  // written under mu; the closed caller polls it
	done     chan struct{} // the last helper to finish after closing signals
}

// span is a run of items [lo, hi) packed in one word (lo in the low 32
// bits), alone on its cache line: its owner takes from the front, thieves
// from the back, each with one compare-and-swap.
type span struct {
	v atomic.Uint64
	_ [56]byte
}

func (s *span) set(lo, hi int) { s.v.Store(uint64(lo) | uint64(hi)<<32) }

// take removes the first (front) or last item of the span.
func (s *span) take(front bool) (int, bool) {
	for {
		v := s.v.Load()
		lo, hi := int(uint32(v)), int(v>>32)
		if lo >= hi {
			return 0, false
		}
		i, nv := hi-1, v-1<<32
		if front {
			i, nv = lo, v+1
		}
		if s.v.CompareAndSwap(v, nv) {
			return i, true
		}
	}
}

type assignment struct {
	c      *call
	gen    uint64
	worker int
}

var (
	mu      sync.Mutex
	started int // pool goroutines running
	work    = make(chan assignment, MaxWorkers)
	calls   = sync.Pool{New: func() any { return &call{done: make(chan struct{}, 1)} }}
)

// Spin is how long an idle helper polls for its next assignment before
// parking, and how long a caller polls for its helpers before parking:
// waking a parked goroutine costs a futex and a scheduler round, as much
// as a whole batch-1 layer, and an engine runs its layers back to back
// with stretches of single-threaded layers (reshapes, transposes) between
// the parallel ones. 100 µs covers those stretches (20 µs did not: bert4
// INT8 at 2 threads 3.2 → 2.9 ms, 50 µs 3.1 ms); after an engine's last
// layer a helper burns at most this long before it parks, so an idle
// process uses no CPU. 0 disables spinning.
var Spin = 100 * time.Microsecond

// ensure starts pool goroutines until at least n run.
func ensure(n int) {
	mu.Lock()
	for started < n {
		started++
		go worker()
	}
	mu.Unlock()
}

func worker() {
	for {
		a, ok := next()
		if !ok {
			return
		}
		c := a.c
		c.mu.Lock()
		if c.gen != a.gen || c.closed {
			c.mu.Unlock()
			continue
		}
		c.joined++
		c.mu.Unlock()
		c.drain(a.worker)
		c.mu.Lock()
		f := int(c.finished.Add(1))
		if c.closed && f == c.joined {
			c.done <- struct{}{} // buffered, never blocks; sent before the caller can see f
		}
		c.mu.Unlock()
	}
}

// next polls for an assignment for up to Spin, then blocks.
func next() (assignment, bool) {
	if Spin > 0 {
		start := time.Now()
		for i := 1; i%64 != 0 || time.Since(start) < Spin; i++ {
			select {
			case a, ok := <-work:
				return a, ok
			default:
			}
			if i%64 == 0 {
				runtime.Gosched()
			}
		}
	}
	a, ok := <-work
	return a, ok
}

// drain takes items until none are left: its own span's from the front,
// then the other spans' from the back, and returns how many it computed.
// Which worker computes an item varies from run to run; what it computes
// does not.
func (c *call) drain(w int) int {
	for k := 0; ; k++ {
		i, ok := c.spans[w].take(true)
		for d := 1; !ok && d < c.th; d++ {
			i, ok = c.spans[(w+d)%c.th].take(false)
		}
		if !ok {
			return k
		}
		c.task.Do(w, i)
	}
}

// await returns once the joined helpers have finished, polling for up to
// Spin first: a helper finishes its last item within microseconds of the
// caller, and parking the caller on the channel would cost a futex wake-up
// and a scheduler round on top, per layer.
func (c *call) await(joined int) {
	if Spin > 0 {
		start := time.Now()
		for i := 1; int(c.finished.Load()) < joined; i++ {
			if i%64 == 0 && time.Since(start) >= Spin {
				break
			}
		}
	}
	<-c.done // already buffered if the poll saw every helper finish
}

// Run computes items 0..n-1 of t on at most threads workers and returns
// when all are done.
func Run(threads, n int, t Task) {
	threads = Workers(threads, n)
	if threads > 1 && alone() {
		threads = 1 // the splits did not pay lately (adapt.go)
	}
	if threads <= 1 || n > maxItems {
		for i := 0; i < n; i++ {
			t.Do(0, i)
		}
		return
	}
	ensure(threads - 1)
	c := calls.Get().(*call)
	c.task, c.th = t, threads
	for w := 0; w < threads; w++ {
		c.spans[w].set(w*n/threads, (w+1)*n/threads)
	}
	c.mu.Lock() // stale assignments may be reading gen
	c.gen++
	gen := c.gen
	c.closed, c.joined = false, 0
	c.finished.Store(0)
	c.mu.Unlock()
	start := now()
	for w := 1; w < threads; w++ {
		work <- assignment{c, gen, w}
	}
	kc := c.drain(0)
	drained := now()
	c.mu.Lock()
	c.closed = true
	joined := c.joined
	wait := int(c.finished.Load()) < joined
	c.mu.Unlock()
	if wait {
		c.await(joined)
	}
	account(start, drained, now(), kc, n)
	c.task = nil
	calls.Put(c)
}

// maxItems bounds n for the pool (a span packs item numbers in 32 bits);
// Run computes larger counts on the calling goroutine.
const maxItems = 1<<31 - 1

// Workers is the number of workers Run uses for n items: ids passed to
// Do are below it, so per-worker scratch can be sized with it.
func Workers(threads, n int) int {
	threads = min(threads, n, MaxWorkers)
	return max(threads, 1)
}

// Split divides n units into about `parts` contiguous chunks of at least
// grain units; it returns the chunk size (a multiple of grain).
func Split(n, parts, grain int) int {
	if grain < 1 {
		grain = 1
	}
	if parts < 1 {
		parts = 1
	}
	size := (n + parts - 1) / parts
	size = (size + grain - 1) / grain * grain
	return max(size, grain)
}
