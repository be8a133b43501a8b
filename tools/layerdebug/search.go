package layerdebug

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/kilnml/kiln/builder"
	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
)

// Budget says which scores are good enough: for accuracy, at most MaxDrop
// points below the float graph; for cosine and SQNR, at least Min.
type Budget struct {
	Metric  Metric
	MaxDrop float64
	Min     float64
}

// Meets reports whether score is within budget given the float score.
func (b Budget) Meets(score, ref float64) bool {
	if b.Metric == Accuracy {
		return score >= ref-b.MaxDrop-1e-9
	}
	return score >= b.Min
}

func (b Budget) String() string {
	if b.Metric == Accuracy {
		return fmt.Sprintf("accuracy within %g points of fp32", b.MaxDrop)
	}
	return fmt.Sprintf("%s >= %g", b.Metric, b.Min)
}

// Sensitivity of one quantizable layer.
type Sensitivity struct {
	Layer string
	// OnlyKept: score with this layer alone in FP32 (every other quantized);
	// OnlyQuantized: with this layer alone quantized.
	OnlyKept, OnlyQuantized float64
	// FP32Time and QTime: the layer's time in the all-FP32 and all-quantized
	// engines (profiler medians; fused layers count once).
	FP32Time, QTime time.Duration
}

// Point is one evaluated configuration.
type Point struct {
	Keep    []string // layers in FP32, graph order
	Score   float64
	Latency time.Duration
	Meets   bool
}

// SearchResult is what Search found.
type SearchResult struct {
	Layers     []Sensitivity
	FP32, AllQ Point
	Points     []Point // every evaluated configuration
	Pareto     []Point // not dominated in (latency, score), by latency
	Best       *Point  // the fastest meeting the budget (fewest kept on ties)
	Budget     Budget
	RefScore   float64
	Evaluated  int
}

// Searcher evaluates configurations of one model.
type Searcher struct {
	Model   *ir.Model
	Setting Setting
	Eval    *Eval
	Base    builder.Config
	Runs    int // timing runs per configuration (default 200)
	Log     func(format string, args ...any)

	layers []string
	cache  map[string]*Point

	// fake replaces building, scoring and timing in tests of the search
	// itself: it returns a configuration's score and latency and the time
	// of each layer in it.
	fake func(keep map[string]bool) (Point, map[string]time.Duration)
}

func (s *Searcher) logf(format string, args ...any) {
	if s.Log != nil {
		s.Log(format, args...)
	}
}

func (s *Searcher) key(keep map[string]bool) []string {
	var k []string
	for _, l := range s.layers {
		if keep[l] {
			k = append(k, l)
		}
	}
	return k
}

// evaluate builds, scores and times a configuration (memoized).
func (s *Searcher) evaluate(keep map[string]bool, budget Budget) (*Point, *engine.Plan, error) {
	k := s.key(keep)
	id := strings.Join(k, "\x00")
	if p, ok := s.cache[id]; ok {
		return p, nil, nil
	}
	if s.fake != nil {
		p, _ := s.fake(keep)
		p.Keep, p.Meets = k, budget.Meets(p.Score, s.Eval.RefScore)
		s.cache[id] = &p
		return &p, nil, nil
	}
	plan, _, err := Build(s.Model, s.Setting, keep, s.Base)
	if err != nil {
		return nil, nil, err
	}
	score, err := s.Eval.Score(plan)
	if err != nil {
		return nil, nil, err
	}
	tm, err := s.Eval.Measure(plan, s.Runs)
	if err != nil {
		return nil, nil, err
	}
	p := &Point{Keep: k, Score: score, Latency: tm.Median, Meets: budget.Meets(score, s.Eval.RefScore)}
	s.cache[id] = p
	s.logf("  fp32 %-40s %s %.4g, latency %v", orNone(k), s.Eval.Metric, score, tm.Median)
	return p, plan, nil
}

func orNone(k []string) string {
	if len(k) == 0 {
		return "(none)"
	}
	return strings.Join(k, ",")
}

// Search measures each layer's sensitivity, then looks for the set of
// layers to keep in FP32 that meets the budget at the lowest latency:
// exhaustively for up to 5 layers, else greedily by sensitivity per unit
// of time saved, then by local moves (drop a kept layer, swap a kept layer
// for a cheaper one) while they help. Any set can come out, not only runs
// of consecutive layers.
func (s *Searcher) Search(budget Budget) (*SearchResult, error) {
	if s.Runs <= 0 {
		s.Runs = 200
	}
	s.cache = map[string]*Point{}
	if s.fake == nil {
		s.layers = QuantizableLayers(s.Model, s.Setting.Ranges)
	}
	if len(s.layers) == 0 {
		return nil, fmt.Errorf("no layer can be quantized (no Conv/Gemm/MatMul with a constant weight and a calibrated input)")
	}
	res := &SearchResult{Budget: budget, RefScore: s.Eval.RefScore}
	all := map[string]bool{}
	for _, l := range s.layers {
		all[l] = true
	}
	fp, fpPlan, err := s.evaluate(all, budget)
	if err != nil {
		return nil, err
	}
	q, qPlan, err := s.evaluate(nil, budget)
	if err != nil {
		return nil, err
	}
	res.FP32, res.AllQ = *fp, *q
	fpTime, qTime, err := s.layerTimes(fpPlan, qPlan, all)
	if err != nil {
		return nil, err
	}
	for _, l := range s.layers {
		pk, _, err := s.evaluate(map[string]bool{l: true}, budget)
		if err != nil {
			return nil, err
		}
		rest := map[string]bool{}
		for _, o := range s.layers {
			rest[o] = o != l
		}
		pq, _, err := s.evaluate(rest, budget)
		if err != nil {
			return nil, err
		}
		res.Layers = append(res.Layers, Sensitivity{Layer: l, OnlyKept: pk.Score, OnlyQuantized: pq.Score,
			FP32Time: fpTime[l], QTime: qTime[l]})
	}
	if len(s.layers) <= 5 {
		if err := s.exhaustive(budget); err != nil {
			return nil, err
		}
	} else if err := s.greedy(res, budget); err != nil {
		return nil, err
	}
	if s.fake == nil {
		if err := s.remeasure(); err != nil {
			return nil, err
		}
	}
	for _, p := range s.cache {
		res.Points = append(res.Points, *p)
	}
	res.FP32, res.AllQ = *s.cache[strings.Join(s.key(all), "\x00")], *s.cache[""]
	sort.Slice(res.Points, func(i, j int) bool {
		a, b := res.Points[i], res.Points[j]
		if a.Latency != b.Latency {
			return a.Latency < b.Latency
		}
		return len(a.Keep) < len(b.Keep)
	})
	res.Evaluated = len(res.Points)
	res.Pareto = pareto(res.Points)
	for i := range res.Points {
		p := &res.Points[i]
		if !p.Meets {
			continue
		}
		if res.Best == nil || better(p, res.Best) {
			res.Best = p
		}
	}
	return res, nil
}

// better: faster, or (within 3% latency, the timing noise of small engines)
// fewer layers kept, then higher score.
func better(a, b *Point) bool {
	la, lb := float64(a.Latency), float64(b.Latency)
	if math.Abs(la-lb) > 0.03*math.Max(la, lb) {
		return la < lb
	}
	if len(a.Keep) != len(b.Keep) {
		return len(a.Keep) < len(b.Keep)
	}
	return a.Score > b.Score
}

func (s *Searcher) exhaustive(budget Budget) error {
	n := len(s.layers)
	for mask := 0; mask < 1<<n; mask++ {
		keep := map[string]bool{}
		for i, l := range s.layers {
			if mask&(1<<i) != 0 {
				keep[l] = true
			}
		}
		if _, _, err := s.evaluate(keep, budget); err != nil {
			return err
		}
	}
	return nil
}

func (s *Searcher) greedy(res *SearchResult, budget Budget) error {
	// Most accuracy recovered per unit of time given up first.
	cand := append([]Sensitivity(nil), res.Layers...)
	gain := func(x Sensitivity) float64 {
		g := x.OnlyKept - res.AllQ.Score
		cost := float64(x.FP32Time-x.QTime) + 1 // ns; keeping a layer that is no slower costs ~nothing
		if cost < 1 {
			cost = 1
		}
		return g / cost
	}
	sort.SliceStable(cand, func(i, j int) bool { return gain(cand[i]) > gain(cand[j]) })
	keep := map[string]bool{}
	var cur *Point
	for _, c := range cand {
		keep[c.Layer] = true
		p, _, err := s.evaluate(keep, budget)
		if err != nil {
			return err
		}
		cur = p
		if p.Meets {
			break
		}
	}
	if cur == nil || !cur.Meets {
		return nil // even all-FP32 misses: the table says so
	}
	// Local improvement: drop or swap layers while the result still meets
	// the budget and gets faster (or keeps fewer layers).
	for improved := true; improved; {
		improved = false
		for _, l := range cur.Keep {
			trial := setOf(cur.Keep)
			delete(trial, l)
			p, _, err := s.evaluate(trial, budget)
			if err != nil {
				return err
			}
			if p.Meets && better(p, cur) {
				cur, improved = p, true
				break
			}
			for _, u := range s.layers {
				if trial[u] || u == l {
					continue
				}
				trial[u] = true
				p, _, err := s.evaluate(trial, budget)
				if err != nil {
					return err
				}
				delete(trial, u)
				if p.Meets && better(p, cur) {
					cur, improved = p, true
					break
				}
			}
			if improved {
				break
			}
		}
	}
	return nil
}

func setOf(xs []string) map[string]bool {
	m := map[string]bool{}
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// pareto keeps points no other point beats in both latency and score.
func pareto(pts []Point) []Point {
	var out []Point
	best := math.Inf(-1)
	for _, p := range pts { // sorted by latency
		if p.Score > best {
			out = append(out, p)
			best = p.Score
		}
	}
	return out
}

// layerTime is the time of the step that contains layer (as a member).
func layerTime(p *engine.Plan, t *Timing, layer string) time.Duration {
	for _, s := range p.Steps {
		for _, m := range s.Members {
			if m == layer {
				return t.Layers[s.Name]
			}
		}
	}
	return 0
}

// remeasure times every evaluated configuration again, round-robin over
// several rounds, and keeps each one's fastest round median: configurations
// measured minutes apart on a busy machine become comparable.
func (s *Searcher) remeasure() error {
	const rounds = 5
	type entry struct {
		p   *Point
		eng *engine.Engine
	}
	var es []entry
	for _, p := range s.cache {
		plan, _, err := Build(s.Model, s.Setting, setOf(p.Keep), s.Base)
		if err != nil {
			return err
		}
		eng, err := engine.NewEngine(plan)
		if err != nil {
			return err
		}
		es = append(es, entry{p, eng})
		p.Latency = 0
	}
	runs := max(1, s.Runs/rounds)
	for r := 0; r < rounds; r++ {
		for _, e := range es {
			t, err := s.Eval.measureEngine(e.eng, runs, false)
			if err != nil {
				return err
			}
			if e.p.Latency == 0 || t.Median < e.p.Latency {
				e.p.Latency = t.Median
			}
		}
	}
	return nil
}

// layerTimes returns each quantizable layer's time in the all-FP32 and the
// all-quantized engines (profiler medians).
func (s *Searcher) layerTimes(fpPlan, qPlan *engine.Plan, all map[string]bool) (fp, q map[string]time.Duration, err error) {
	if s.fake != nil {
		_, fp = s.fake(all)
		_, q = s.fake(map[string]bool{})
		return fp, q, nil
	}
	fpT, err := s.Eval.Measure(fpPlan, s.Runs)
	if err != nil {
		return nil, nil, err
	}
	qT, err := s.Eval.Measure(qPlan, s.Runs)
	if err != nil {
		return nil, nil, err
	}
	fp, q = map[string]time.Duration{}, map[string]time.Duration{}
	for _, l := range s.layers {
		fp[l], q[l] = layerTime(fpPlan, fpT, l), layerTime(qPlan, qT, l)
	}
	return fp, q, nil
}
