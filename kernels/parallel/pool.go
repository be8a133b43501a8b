// Package parallel is the persistent worker pool every CPU kernel shares.
// A kernel splits its work into items whose outputs are disjoint and whose
// arithmetic does not depend on which worker runs them, so results are
// bit-identical for any thread count; Run hands the items to up to
// `threads` workers (the caller is worker 0) without starting goroutines
// or allocating in steady state.
package parallel

import (
	"sync"
	"sync/atomic"
)

// Task is a unit of parallel work: Do computes item i on worker w
// (0 <= w < threads), which may index per-worker scratch memory.
type Task interface {
	Do(worker, item int)
}

// MaxWorkers bounds the pool (and so the worker ids a kernel sees).
const MaxWorkers = 256

type call struct {
	task Task
	n    int64
	next atomic.Int64
	wg   sync.WaitGroup
}

type assignment struct {
	c      *call
	worker int
}

var (
	mu      sync.Mutex
	started int // pool goroutines running
	work    = make(chan assignment, MaxWorkers)
	calls   = sync.Pool{New: func() any { return new(call) }}
)

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
	for a := range work {
		a.c.drain(a.worker)
		a.c.wg.Done()
	}
}

// drain takes items until none are left. Which worker computes an item
// varies from run to run; what it computes does not.
func (c *call) drain(w int) {
	for {
		i := c.next.Add(1) - 1
		if i >= c.n {
			return
		}
		c.task.Do(w, int(i))
	}
}

// Run computes items 0..n-1 of t on at most threads workers and returns
// when all are done.
func Run(threads, n int, t Task) {
	threads = Workers(threads, n)
	if threads <= 1 {
		for i := 0; i < n; i++ {
			t.Do(0, i)
		}
		return
	}
	ensure(threads - 1)
	c := calls.Get().(*call)
	c.task, c.n = t, int64(n)
	c.next.Store(0)
	c.wg.Add(threads - 1)
	for w := 1; w < threads; w++ {
		work <- assignment{c, w}
	}
	c.drain(0)
	c.wg.Wait()
	c.task = nil
	calls.Put(c)
}

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
