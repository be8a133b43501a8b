package layerdebug

import (
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"time"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
	"github.com/kilnml/kiln/tools/accuracy"
)

// Metric is what debug precision keeps within budget. Higher is better for
// every metric.
type Metric string

const (
	Accuracy Metric = "accuracy" // top-1 accuracy vs labels, in percent
	Cosine   Metric = "cosine"   // cosine similarity of outputs vs the float graph
	SQNR     Metric = "sqnr"     // SQNR of outputs vs the float graph, dB
)

// ParseMetric reads a metric name.
func ParseMetric(s string) (Metric, error) {
	switch m := Metric(s); m {
	case Accuracy, Cosine, SQNR:
		return m, nil
	}
	return "", fmt.Errorf("unknown metric %q (want accuracy, cosine or sqnr)", s)
}

// Labeled is a batch source that knows the labels of its last batch
// (datasrc.Source).
type Labeled interface {
	Labels() []int
}

// Eval holds a fixed evaluation set in memory and the float graph's outputs
// on it, so that every candidate engine sees the same data.
type Eval struct {
	Metric   Metric
	Output   string // the output compared (the first graph output)
	Batches  []map[string]*ir.Tensor
	Labels   []int       // per sample, -1 when unknown
	Ref      [][]float64 // float graph's output per batch
	Classes  int         // size of the output's last axis
	RefScore float64     // the float graph's own score (accuracy only; cosine 1, SQNR +Inf)
}

// NewEval reads up to maxBatches batches and runs the float graph on them.
func NewEval(m *ir.Model, data Batches, maxBatches int, metric Metric) (*Eval, error) {
	sess, err := ops.NewSession(m)
	if err != nil {
		return nil, err
	}
	e := &Eval{Metric: metric, Output: m.Graph.Outputs[0].Name}
	lab, hasLabels := data.(Labeled)
	for maxBatches <= 0 || len(e.Batches) < maxBatches {
		b, err := data.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		out, err := sess.Run(b)
		if err != nil {
			return nil, fmt.Errorf("float graph: %w", err)
		}
		t := out[e.Output]
		e.Classes = int(t.Dims[len(t.Dims)-1])
		rows := int(t.Len()) / max(e.Classes, 1)
		var l []int
		if hasLabels {
			l = lab.Labels()
		}
		for i := 0; i < rows; i++ {
			if i < len(l) {
				e.Labels = append(e.Labels, l[i])
			} else {
				e.Labels = append(e.Labels, -1)
			}
		}
		e.Batches = append(e.Batches, b)
		e.Ref = append(e.Ref, t.Float64s())
	}
	if len(e.Batches) == 0 {
		return nil, errors.New("the data source gave no batch")
	}
	if metric == Accuracy {
		n := 0
		for _, l := range e.Labels {
			if l >= 0 {
				n++
			}
		}
		if n == 0 {
			return nil, errors.New("--metric accuracy needs labels (use a labelled source such as mnist-raw:test, or --metric cosine|sqnr)")
		}
	}
	e.RefScore = e.scoreOf(e.Ref)
	return e, nil
}

// Score runs the plan on every batch and returns the metric.
func (e *Eval) Score(p *engine.Plan) (float64, error) {
	eng, err := engine.NewEngine(p)
	if err != nil {
		return 0, err
	}
	ctx := eng.NewContext()
	got := make([][]float64, len(e.Batches))
	for i, b := range e.Batches {
		out, err := ctx.Run(b)
		if err != nil {
			return 0, err
		}
		t := out[e.Output]
		if t == nil {
			return 0, fmt.Errorf("the engine has no output %q", e.Output)
		}
		got[i] = t.Float64s()
	}
	return e.scoreOf(got), nil
}

func (e *Eval) scoreOf(got [][]float64) float64 {
	var ref, all []float64
	for i := range got {
		ref = append(ref, e.Ref[i]...)
		all = append(all, got[i]...)
	}
	switch e.Metric {
	case Accuracy:
		c := accuracy.CompareClasses(ref, all, e.Classes, 1, e.Labels)
		return 100 * c.GotAccuracy()
	case Cosine:
		var a accuracy.Acc
		a.Add(ref, all)
		return a.Cosine()
	default:
		var a accuracy.Acc
		a.Add(ref, all)
		return math.Min(a.SQNR(), 200) // equal outputs: report 200 dB, not +Inf
	}
}

// Timing is an engine's measured latency.
type Timing struct {
	Median time.Duration            // per inference (one batch)
	Layers map[string]time.Duration // median per step name
}

// Measure times the plan on the first evaluation batch: warm-up, then the
// median of runs, with per-layer times from the engine's profiler.
func (e *Eval) Measure(p *engine.Plan, runs int) (*Timing, error) {
	eng, err := engine.NewEngine(p)
	if err != nil {
		return nil, err
	}
	return e.measureEngine(eng, runs, true)
}

func (e *Eval) measureEngine(eng *engine.Engine, runs int, layers bool) (*Timing, error) {
	p := eng.Plan()
	ctx := eng.NewContext()
	ctx.SetThreads(1)
	prof := &stepTimer{n: len(p.Steps)}
	for k, t := range e.Batches[0] {
		if err := ctx.SetInput(k, t); err != nil {
			return nil, err
		}
	}
	for i := 0; i < 3; i++ {
		if err := ctx.Execute(); err != nil {
			return nil, err
		}
	}
	total := make([]time.Duration, 0, runs)
	if layers {
		ctx.SetProfiler(prof)
	}
	for i := 0; i < runs; i++ {
		prof.start()
		t0 := time.Now()
		if err := ctx.Execute(); err != nil {
			return nil, err
		}
		total = append(total, time.Since(t0))
	}
	ctx.SetProfiler(nil)
	out := &Timing{Median: medianDur(total), Layers: map[string]time.Duration{}}
	for si, ts := range prof.times {
		if len(ts) > 0 {
			out.Layers[p.Steps[si].Name] += medianDur(ts)
		}
	}
	return out, nil
}

type stepTimer struct {
	n     int
	times [][]time.Duration
}

func (s *stepTimer) start() {
	if s.times == nil {
		s.times = make([][]time.Duration, s.n)
	}
}

func (s *stepTimer) StepDone(step int, d time.Duration) { s.times[step] = append(s.times[step], d) }

func medianDur(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func (m Metric) String() string { return string(m) }
