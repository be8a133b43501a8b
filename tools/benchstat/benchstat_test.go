package benchstat

import (
	"math"
	"testing"
	"time"
)

// 1..10 shuffled: trtexec's rule on a hand-checked sample.
var ten = []float64{7, 3, 10, 1, 9, 2, 8, 5, 6, 4}

func TestPercentileTrtexecRule(t *testing.T) {
	for _, c := range []struct {
		p    float64
		want float64
	}{
		{90, 9},   // exclude int(0.1·10 in float32 = 1.0000002) = 1 → sorted[8]
		{95, 10},  // exclude int(0.5) = 0 → sorted[9]
		{99, 10},  // exclude 0
		{50, 5},   // exclude 5 → sorted[4]
		{0, 1},    // exclude 10 → max(-1, 0) = 0
		{100, 10}, // exclude 0
		{80, 9},   // 0.8f = 0.80000001: exclude int(1.9999999) = 1 → sorted[8]
	} {
		if got := Percentile(ten, c.p); got != c.want {
			t.Errorf("p%g of 1..10 = %g, want %g", c.p, got, c.want)
		}
	}
	// The input is not reordered.
	if ten[0] != 7 || ten[9] != 4 {
		t.Fatalf("Percentile sorted its input: %v", ten)
	}
}

// p99 of 100 samples: float32 arithmetic gives (1 − 0.99f)·100 = 0.9999990,
// so trtexec excludes nothing and reports the maximum.
func TestPercentileFloat32Arithmetic(t *testing.T) {
	var s []float64
	for i := 100; i >= 1; i-- {
		s = append(s, float64(i))
	}
	if got := Percentile(s, 99); got != 100 {
		t.Errorf("p99 of 1..100 = %g, want 100 (trtexec's float32 rule)", got)
	}
	if got := Percentile(s, 90); got != 90 {
		t.Errorf("p90 of 1..100 = %g, want 90", got)
	}
	if got := Percentile(s, 95); got != 95 {
		t.Errorf("p95 of 1..100 = %g, want 95", got)
	}
}

func TestPercentileSmallAndEmpty(t *testing.T) {
	if got := Percentile(nil, 90); got != 0 {
		t.Errorf("empty: %g", got)
	}
	if got := Percentile([]float64{4.5}, 99); got != 4.5 {
		t.Errorf("one sample: %g", got)
	}
	// Two samples, p90: exclude int(0.2) = 0 → the larger.
	if got := Percentile([]float64{2, 1}, 90); got != 2 {
		t.Errorf("two samples: %g", got)
	}
	// Three samples, p50: exclude int(1.5) = 1 → sorted[1].
	if got := Percentile([]float64{3, 1, 2}, 50); got != 2 {
		t.Errorf("three samples p50: %g", got)
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{3, 1}, 2},
		{[]float64{5, 1, 3}, 3},
		{ten, 5.5},
		{[]float64{1, 1, 2, 100}, 1.5},
	} {
		if got := Median(c.in); got != c.want {
			t.Errorf("median %v = %g, want %g", c.in, got, c.want)
		}
	}
}

func TestCoV(t *testing.T) {
	// 2, 4, 4, 4, 5, 5, 7, 9: mean 5, population std 2 → CoV 0.4.
	s := []float64{2, 4, 4, 4, 5, 5, 7, 9}
	if got := CoV(s); math.Abs(got-0.4) > 1e-15 {
		t.Errorf("CoV = %g, want 0.4", got)
	}
	if got := CoV([]float64{3, 3, 3}); got != 0 {
		t.Errorf("constant samples: CoV %g", got)
	}
	if got := CoV(nil); got != 0 {
		t.Errorf("no samples: CoV %g", got)
	}
}

func TestThroughput(t *testing.T) {
	// 8 samples per run, 250 runs in 2 s: 1000 qps.
	if got := Throughput(8, 250, 2*time.Second); got != 1000 {
		t.Errorf("qps = %g, want 1000", got)
	}
	if got := Throughput(1, 10, 0); got != 0 {
		t.Errorf("no time: %g", got)
	}
}

func TestSummarize(t *testing.T) {
	s := Summarize(ten, []float64{90, 95, 99})
	if s.N != 10 || s.Min != 1 || s.Max != 10 || s.Mean != 5.5 || s.Median != 5.5 {
		t.Fatalf("summary %+v", s)
	}
	want := []float64{9, 10, 10}
	for i, pv := range s.Percentiles {
		if pv.Value != want[i] {
			t.Errorf("p%g = %g, want %g", pv.P, pv.Value, want[i])
		}
	}
	// std of 1..10 is 2.872: CoV 0.52, unstable.
	if !s.Unstable || math.Abs(s.CoV-math.Sqrt(8.25)/5.5) > 1e-12 {
		t.Errorf("CoV %g unstable %v", s.CoV, s.Unstable)
	}
	steady := Summarize([]float64{1, 1.01, 0.99, 1}, nil)
	if steady.Unstable {
		t.Errorf("CoV %g flagged unstable", steady.CoV)
	}
}

func TestMs(t *testing.T) {
	got := Ms([]time.Duration{1500 * time.Microsecond, time.Second})
	if got[0] != 1.5 || got[1] != 1000 {
		t.Errorf("Ms = %v", got)
	}
}
