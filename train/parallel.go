package train

import "sync"

// parallel splits [0, n) into c.Workers contiguous chunks (the same chunks
// for the same n and worker count) and runs body on each concurrently. Each
// chunk writes only its own part of the output, so the result does not depend
// on scheduling. worker (0..Workers-1) indexes per-worker scratch buffers.
func (c *Ctx) parallel(n int, body func(worker, lo, hi int)) {
	w := min(c.Workers, n)
	if w <= 1 {
		if n > 0 {
			body(0, 0, n)
		}
		return
	}
	var wg sync.WaitGroup
	for k := 0; k < w; k++ {
		lo, hi := k*n/w, (k+1)*n/w
		if lo == hi {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			body(k, lo, hi)
		}()
	}
	wg.Wait()
}
