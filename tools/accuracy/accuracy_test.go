package accuracy

import (
	"math"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func TestSummarize(t *testing.T) {
	s := Summarize([]float64{3, 1, 4, 1, 5, math.NaN()})
	if s.N != 5 || s.NonFinite != 1 || s.Min != 1 || s.ArgMin != 1 || s.Max != 5 || s.ArgMax != 4 {
		t.Fatalf("%+v", s)
	}
	if !near(s.Mean, 2.8) || s.Median != 3 {
		t.Fatalf("mean %v median %v", s.Mean, s.Median)
	}
	// numpy.quantile([1,1,3,4,5], 0.9) = 4.6
	if q := s.Quantiles[1]; q.Q != 0.9 || !near(q.V, 4.6) {
		t.Fatalf("q90 %+v", q)
	}
}

func TestCompareStatistics(t *testing.T) {
	ref := []float64{1, 2, -4, 0, 10}
	got := []float64{1.1, 2, -4.4, 0, 9}
	d := Compare(ref, got, Tolerance{ATol: 0.5, RTol: 0.05})
	// abs = .1 0 .4 0 1; rel = .1 0 .1 0 .1
	if !near(d.Abs.Max, 1) || d.Abs.ArgMax != 4 || !near(d.Abs.Mean, 0.3) || !near(d.Abs.Median, 0.1) {
		t.Fatalf("abs %+v", d.Abs)
	}
	if !near(d.Rel.Max, 0.1) || !near(d.Rel.Mean, 0.06) {
		t.Fatalf("rel %+v", d.Rel)
	}
	// elementwise: fails where abs > .5 and rel > .05: only index 4.
	if d.Mismatches != 1 || d.Pass {
		t.Fatalf("mismatches %d pass %v", d.Mismatches, d.Pass)
	}
	// smallest atol at rtol .05: max abs over rel > .05 = 1; smallest rtol at atol .5: .1
	if !near(d.MinATol, 1) || !near(d.MinRTol, 0.1) {
		t.Fatalf("min tol %v %v", d.MinATol, d.MinRTol)
	}
	if !Compare(ref, got, Tolerance{ATol: d.MinATol, RTol: 0.05}).Pass || !Compare(ref, got, Tolerance{ATol: 0.5, RTol: d.MinRTol}).Pass {
		t.Fatal("the minimum tolerances do not pass")
	}
	// SQNR: signal 1+4+16+100 = 121, noise .01+.16+1 = 1.17
	if !near(d.SQNR, 10*math.Log10(121/1.17)) {
		t.Fatalf("sqnr %v", d.SQNR)
	}
	dot := 1.1 + 4 + 17.6 + 90
	if !near(d.Cosine, dot/math.Sqrt(121*(1.21+4+19.36+81))) {
		t.Fatalf("cosine %v", d.Cosine)
	}
	// mean check: mean abs .3 <= .5 passes.
	if !Compare(ref, got, Tolerance{ATol: 0.5, RTol: 0, Check: Mean}).Pass {
		t.Fatal("mean check should pass")
	}
	// max check: max abs 1 > .5 and max rel .1 > .05 fails; min atol = 1.
	m := Compare(ref, got, Tolerance{ATol: 0.5, RTol: 0.05, Check: Max})
	if m.Pass || !near(m.MinATol, 1) || !near(m.MinRTol, 0.1) {
		t.Fatalf("max check %+v", m)
	}
	// median abs .1 passes at atol .2.
	if !Compare(ref, got, Tolerance{ATol: 0.2, Check: Median}).Pass {
		t.Fatal("median check should pass")
	}
	// quantile 0.5 of abs is .1.
	if q := Compare(ref, got, Tolerance{ATol: 0.05, RTol: 0.01, Check: QuantileCheck, Quantile: 0.5}); q.Pass || !near(q.MinATol, 0.1) {
		t.Fatalf("quantile %+v", q)
	}
}

func TestCompareZerosAndNaN(t *testing.T) {
	d := Compare([]float64{0, 0, math.NaN()}, []float64{0, 1e-9, math.NaN()}, Tolerance{ATol: 1e-8, RTol: 1e-5})
	if !d.Pass || !math.IsInf(d.Rel.Max, 1) || d.NaNMismatch != 0 {
		t.Fatalf("%+v", d)
	}
	d = Compare([]float64{1, 2}, []float64{1, math.NaN()}, Tolerance{ATol: 1, RTol: 1})
	if d.Pass || d.NaNMismatch != 1 || d.Mismatches != 1 {
		t.Fatalf("NaN must fail: %+v", d)
	}
	if e := Compare([]float64{1, 2}, []float64{1, 2}, DefaultTolerance); !math.IsInf(e.SQNR, 1) || e.Cosine != 1 || !e.Pass {
		t.Fatalf("equal: %+v", e)
	}
}

func TestAcc(t *testing.T) {
	var a Acc
	a.Add([]float64{1, 2}, []float64{1, 2.5})
	a.Add([]float64{-4, 0}, []float64{-4, 0})
	d := Compare([]float64{1, 2, -4, 0}, []float64{1, 2.5, -4, 0}, DefaultTolerance)
	if !near(a.SQNR(), d.SQNR) || !near(a.Cosine(), d.Cosine) || a.MaxAbs != 0.5 || !near(a.MeanAbs(), 0.125) {
		t.Fatalf("acc %+v vs %+v", a, d)
	}
}

func TestClasses(t *testing.T) {
	ref := []float64{0.1, 0.7, 0.2 /**/, 0.5, 0.3, 0.2 /**/, 0, 0, 1}
	got := []float64{0.2, 0.6, 0.2 /**/, 0.3, 0.5, 0.2 /**/, 0, 0.1, 0.9}
	c := CompareClasses(ref, got, 3, 2, []int{1, 1, -1})
	if c.Samples != 3 || c.Top1Agree != 2 || c.Labeled != 2 || c.RefCorrect != 1 || c.GotCorrect != 2 {
		t.Fatalf("%+v", c)
	}
	// top-2 sets: {1,2}/{1,0 or 2}: got row0 = [0.2,0.6,0.2] top2 = {1,0} -> 1 of 2; row1 {0,1}/{1,0} 2/2; row2 {2,0}/{2,1} 1/2
	if !near(c.TopKOverlap, (0.5+1+0.5)/3) {
		t.Fatalf("overlap %v", c.TopKOverlap)
	}
	if ArgMax([]float64{1, 3, 3}) != 1 || TopK([]float64{1, 3, 2}, 2)[1] != 2 {
		t.Fatal("argmax/topk")
	}
}

func TestParseCheck(t *testing.T) {
	if _, err := ParseCheck("bogus"); err == nil {
		t.Fatal("want error")
	}
	if c, _ := ParseCheck("quantile"); c != QuantileCheck {
		t.Fatal(c)
	}
}
