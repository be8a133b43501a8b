package parallel

import (
	"sync/atomic"
	"testing"
	"time"
)

// resetAdapt switches the pay check on with a fresh state for one test.
func resetAdapt(t *testing.T) {
	saved := Adapt
	Adapt = true
	clear := func() {
		wallSum.Store(0)
		aloneSum.Store(0)
		aloneUntil.Store(-1 << 40) // long past: no window, no warm-up
		aloneFor.Store(0)
		lastFail.Store(0)
	}
	clear()
	t.Cleanup(func() { Adapt = saved; clear() })
}

// A window of threaded Runs whose wall time is well under what the caller
// alone would have taken keeps the threads; one at or above payRatio of it
// makes Runs compute alone for minAlone, and a failing probe right after
// doubles the window, up to maxAlone; a success in between starts over.
func TestAdaptBacksOffWhenSplitsDoNotPay(t *testing.T) {
	resetAdapt(t)
	ms := int64(time.Millisecond)
	// the caller did half the items in 1 ms of a 1.1 ms Run: alone ~2 ms
	t0 := now()
	for i := int64(0); i < 4; i++ {
		s := t0 + i*11*ms/10
		account(s, s+ms, s+11*ms/10, 5, 10)
	}
	if alone() {
		t.Fatal("splits that halve the time were given up")
	}
	// the caller did 9 of 10 items and then waited: wall 1.5 ms vs ~1.1 alone
	fails := []int64{}
	for round := 0; round < 8; round++ {
		t1 := now()
		aloneUntil.Store(t1 - 2*int64(probeWarmup)) // the previous window is over
		wallSum.Store(0)
		aloneSum.Store(0)
		for i := int64(0); i < 2; i++ {
			s := t1 + i*15*ms/10
			account(s, s+ms, s+15*ms/10, 9, 10)
		}
		until := aloneUntil.Load()
		if until <= t1 {
			t.Fatalf("round %d: splits that did not pay were kept", round)
		}
		fails = append(fails, aloneFor.Load())
		lastFail.Store(t1 - 1) // as if this probe came right after the window
	}
	want := int64(minAlone)
	for i, d := range fails {
		if d != want {
			t.Fatalf("window %d: %v, want %v (all: %v)", i, time.Duration(d), time.Duration(want), fails)
		}
		want = min(2*want, int64(maxAlone))
	}
	if !alone() {
		t.Fatal("alone() is false inside a back-off window")
	}
	// a failure long after the last one starts over at minAlone
	lastFail.Store(now() - 10*int64(maxAlone))
	fail(now())
	if d := aloneFor.Load(); d != int64(minAlone) {
		t.Fatalf("after a long good stretch the window is %v, want %v", time.Duration(d), minAlone)
	}
	// Runs right after a window (helpers waking up) are not counted
	wallSum.Store(0)
	aloneSum.Store(0)
	t2 := now()
	aloneUntil.Store(t2)
	account(t2+int64(probeWarmup)/2, t2+ms, t2+10*ms, 9, 10)
	if wallSum.Load() != 0 || aloneSum.Load() != 0 {
		t.Fatal("a Run in the warm-up after a back-off window was counted")
	}
	// a Run whose helpers took every item tells nothing
	wallSum.Store(0)
	aloneSum.Store(0)
	account(0, 0, 10*ms, 0, 10)
	if wallSum.Load() != 0 || aloneSum.Load() != 0 {
		t.Fatal("a Run where the caller computed no item was counted")
	}
}

// Inside a back-off window Run computes every item exactly once on the
// caller (worker 0); after it, threads are used again.
func TestRunAloneInBackOff(t *testing.T) {
	resetAdapt(t)
	aloneUntil.Store(now() + int64(time.Hour))
	ct := &countTask{hits: make([]atomic.Int32, 100), workers: 1}
	Run(4, 100, ct)
	for i := range ct.hits {
		if h := ct.hits[i].Load(); h != 1 {
			t.Fatalf("item %d ran %d times", i, h)
		}
	}
	if ct.bad.Load() {
		t.Fatal("a helper ran an item inside the back-off window")
	}
	aloneUntil.Store(0)
	ct = &countTask{hits: make([]atomic.Int32, 100), workers: Workers(4, 100)}
	Run(4, 100, ct)
	for i := range ct.hits {
		if h := ct.hits[i].Load(); h != 1 {
			t.Fatalf("after the window: item %d ran %d times", i, h)
		}
	}
}

// Test binaries run every thread count they ask for.
func TestAdaptOffInTests(t *testing.T) {
	if Adapt {
		t.Fatal("the pay check is on in a test binary")
	}
}
