package layerdebug

import (
	"fmt"
	"testing"
	"time"
)

// A synthetic model of 8 layers where quantizing layer i costs drop[i]
// points and saves fp[i]-q[i] µs: the search (greedy + local moves, as for
// more than 5 layers) must find the fastest set within budget, which is no
// prefix or suffix, without trying every set.
func TestGreedySearchFindsScatteredSet(t *testing.T) {
	drop := []float64{0.1, 3, 0.1, 0.2, 2, 0.1, 0.3, 0.6}
	fp := []float64{10, 10, 10, 11, 10, 10, 11, 40}
	q := []float64{5, 5, 5, 10, 5, 5, 10, 5}
	var names []string
	for i := range drop {
		names = append(names, fmt.Sprintf("L%d", i))
	}
	eval := func(keep map[string]bool) (Point, map[string]time.Duration) {
		score, lat := 100.0, 0.0
		times := map[string]time.Duration{}
		for i, n := range names {
			tm := q[i]
			if keep[n] {
				tm = fp[i]
			} else {
				score -= drop[i]
			}
			lat += tm
			times[n] = time.Duration(tm * 1e3)
		}
		return Point{Score: score, Latency: time.Duration(lat * 1e3)}, times
	}
	s := &Searcher{Eval: &Eval{Metric: Accuracy, RefScore: 100}, layers: names, fake: eval}
	budget := Budget{Metric: Accuracy, MaxDrop: 1}
	res, err := s.Search(budget)
	if err != nil {
		t.Fatal(err)
	}
	// Brute force.
	var best *Point
	for mask := 0; mask < 1<<len(names); mask++ {
		keep := map[string]bool{}
		for i, n := range names {
			if mask&(1<<i) != 0 {
				keep[n] = true
			}
		}
		p, _ := eval(keep)
		p.Keep = s.key(keep)
		if budget.Meets(p.Score, 100) && (best == nil || p.Latency < best.Latency) {
			best = &p
		}
	}
	if res.Best == nil || res.Best.Latency != best.Latency {
		t.Fatalf("search: %+v, brute force: %+v", res.Best, best)
	}
	// keep L1, L3, L4, L6: not a contiguous run.
	if fmt.Sprint(res.Best.Keep) != "[L1 L3 L4 L6]" {
		t.Fatalf("kept %v", res.Best.Keep)
	}
	if res.Evaluated >= 1<<len(names) || res.Evaluated < 2+2*len(names) {
		t.Fatalf("%d configurations evaluated", res.Evaluated)
	}
	if len(res.Layers) != 8 || res.Layers[7].FP32Time != 40*time.Microsecond || res.Layers[7].QTime != 5*time.Microsecond {
		t.Fatalf("sensitivity %+v", res.Layers[7])
	}
	// The Pareto front is monotone.
	for i := 1; i < len(res.Pareto); i++ {
		if res.Pareto[i].Latency < res.Pareto[i-1].Latency || res.Pareto[i].Score <= res.Pareto[i-1].Score {
			t.Fatalf("pareto %+v", res.Pareto)
		}
	}
}

// Dropping a layer the greedy pass added early must happen when the others
// already meet the budget.
func TestGreedyDropsUnneededLayer(t *testing.T) {
	// L0 looks best per µs alone (small drop, nearly free to keep) but
	// L1 and L2 must be kept anyway and then suffice.
	drop := []float64{0.5, 3, 3, 0.2, 0.2, 0.2}
	fp := []float64{5.3, 10, 10, 10, 10, 10}
	q := []float64{5, 5, 5, 5, 5, 5}
	var names []string
	for i := range drop {
		names = append(names, fmt.Sprintf("L%d", i))
	}
	eval := func(keep map[string]bool) (Point, map[string]time.Duration) {
		score, lat := 100.0, 0.0
		times := map[string]time.Duration{}
		for i, n := range names {
			tm := q[i]
			if keep[n] {
				tm = fp[i]
			} else {
				score -= drop[i]
			}
			lat += tm
			times[n] = time.Duration(tm * 1e3)
		}
		return Point{Score: score, Latency: time.Duration(lat * 1e3)}, times
	}
	s := &Searcher{Eval: &Eval{Metric: Accuracy, RefScore: 100}, layers: names, fake: eval}
	res, err := s.Search(Budget{Metric: Accuracy, MaxDrop: 1.5})
	if err != nil {
		t.Fatal(err)
	}
	if res.Best == nil || fmt.Sprint(res.Best.Keep) != "[L1 L2]" {
		t.Fatalf("best %+v", res.Best)
	}
	// The greedy pass went through {L0, L1, L2} (L0 first: most score per µs).
	tried := false
	for _, p := range res.Points {
		tried = tried || fmt.Sprint(p.Keep) == "[L0 L1 L2]"
	}
	if !tried {
		t.Fatalf("greedy order not exercised: %+v", res.Points)
	}
}
