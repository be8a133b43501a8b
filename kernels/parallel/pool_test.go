package parallel

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

type countTask struct {
	hits    []atomic.Int32
	workers int
	bad     atomic.Bool
}

func (c *countTask) Do(w, i int) {
	if w < 0 || w >= c.workers {
		c.bad.Store(true)
	}
	c.hits[i].Add(1)
}

func TestRunCoversEveryItemOnce(t *testing.T) {
	for _, threads := range []int{0, 1, 2, 3, 8} {
		for _, n := range []int{0, 1, 2, 7, 100} {
			ct := &countTask{hits: make([]atomic.Int32, n), workers: Workers(threads, n)}
			Run(threads, n, ct)
			for i := range ct.hits {
				if h := ct.hits[i].Load(); h != 1 {
					t.Fatalf("threads %d n %d: item %d ran %d times", threads, n, i, h)
				}
			}
			if ct.bad.Load() {
				t.Fatalf("threads %d n %d: worker id out of range", threads, n)
			}
		}
	}
}

// Concurrent callers share the pool without deadlock.
func TestRunConcurrentCallers(t *testing.T) {
	done := make(chan bool)
	for g := 0; g < 8; g++ {
		go func() {
			for r := 0; r < 50; r++ {
				ct := &countTask{hits: make([]atomic.Int32, 33), workers: 4}
				Run(4, 33, ct)
				for i := range ct.hits {
					if ct.hits[i].Load() != 1 {
						done <- false
						return
					}
				}
			}
			done <- true
		}()
	}
	for g := 0; g < 8; g++ {
		if !<-done {
			t.Fatal("an item was lost or repeated")
		}
	}
}

type nopTask struct{}

func (nopTask) Do(int, int) {}

func TestRunDoesNotAllocate(t *testing.T) {
	var task Task = &nopTask{}
	Run(2, 16, task)
	if a := testing.AllocsPerRun(100, func() { Run(2, 16, task) }); a != 0 {
		t.Errorf("Run allocates %v times per call", a)
	}
}

func TestSplit(t *testing.T) {
	if s := Split(100, 4, 8); s != 32 {
		t.Errorf("Split(100,4,8) = %d", s)
	}
	if s := Split(3, 4, 8); s != 8 {
		t.Errorf("Split(3,4,8) = %d", s)
	}
}

// spinTask burns about `work` iterations per item.
type spinTask struct{ work int }

var sink atomic.Int64

func (s spinTask) Do(_, i int) {
	x := int64(i)
	for j := 0; j < s.work; j++ {
		x = x*31 + int64(j)
	}
	sink.Add(x)
}

// BenchmarkRunSmall: the fixed cost of handing a small layer's items to a
// second worker (batch-1 layers of tens of microseconds), back to back as
// an engine runs its layers.
func BenchmarkRunSmall(b *testing.B) {
	saved := Spin
	defer func() { Spin = saved }()
	for _, spin := range []time.Duration{0, saved} {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("spin=%v/threads=%d", spin, threads), func(b *testing.B) {
				Spin = spin
				t := spinTask{work: 2000}
				for i := 0; i < b.N; i++ {
					Run(threads, 8, t)
				}
			})
		}
	}
}

// A span's items go out exactly once while its owner takes from the front
// and thieves from the back concurrently; the owner's items come out in
// order.
func TestSpanTakesEachItemOnce(t *testing.T) {
	const n = 20000
	var s span
	s.set(3, n)
	hits := make([]atomic.Int32, n)
	done := make(chan bool)
	for g := 0; g < 4; g++ {
		go func(front bool) {
			last := -1
			for {
				i, ok := s.take(front)
				if !ok {
					done <- true
					return
				}
				if front && i <= last {
					t.Errorf("front take %d after %d", i, last)
				}
				last = i
				hits[i].Add(1)
			}
		}(g == 0)
	}
	for g := 0; g < 4; g++ {
		<-done
	}
	for i := range hits {
		want := int32(1)
		if i < 3 {
			want = 0
		}
		if h := hits[i].Load(); h != want {
			t.Fatalf("item %d taken %d times", i, h)
		}
	}
}
