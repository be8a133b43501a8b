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

// Batches yields input batches (calib.Stream and datasrc.Source fit).
type Batches interface {
	Next() (map[string]*ir.Tensor, error)
}

// TensorError is how far one engine value is from the float graph's tensor.
type TensorError struct {
	Tensor    string // name in the source graph
	Value     string // name in the plan
	Layer     string // the step that wrote it
	Step      int
	Precision string
	DType     ir.DType
	Acc       accuracy.Acc
}

// Blame is the error one layer adds: the relative noise energy
// (Σerr²/Σref², i.e. 1/SQNR) of its output minus the largest of its inputs'
// (traced through reformats to the tensors the float graph has).
type Blame struct {
	Layer     string
	Precision string
	Tensor    string
	Before    float64
	After     float64
	Added     float64
	SQNR      float64 // of the output, dB
}

// PerLayer is the result of Compare.
type PerLayer struct {
	Tensors []*TensorError // in step order
	Blame   []Blame        // quantized/reduced layers first by added error
	Batches int
	Skipped []string // engine values with no counterpart (or a different size) in the float graph
}

// tap copies each step's outputs, dequantized, right after the step ran.
type tap struct {
	ctx    *engine.Context
	plan   *engine.Plan
	scales map[int]float64
	keep   map[int]bool
	got    map[int][]float64
}

func (t *tap) StepDone(step int, _ time.Duration) {
	for _, o := range t.plan.Steps[step].Outputs {
		if !t.keep[o] {
			continue
		}
		v := t.ctx.ValueView(o)
		if v == nil {
			continue
		}
		n := v.Len()
		buf := make([]float64, n)
		s := 1.0
		if isCode(v.DType) {
			s = t.scales[o]
		}
		for i := int64(0); i < n; i++ {
			buf[i] = v.Float64At(i) * s
		}
		t.got[o] = buf
	}
}

// Compare runs every batch through the float graph (every intermediate
// tensor) and the engine (every step output, read by a debug tap) and
// compares each engine value with the float tensor it stands for.
func Compare(ref *ir.Model, eng *engine.Engine, data Batches, maxBatches int) (*PerLayer, error) {
	sess, err := ops.NewSession(ref)
	if err != nil {
		return nil, err
	}
	p := eng.Plan()
	known := map[string]bool{}
	for _, in := range ref.Graph.Inputs {
		known[in.Name] = true
	}
	for _, n := range ref.Graph.Nodes {
		for _, o := range n.Outputs {
			known[o] = true
		}
	}
	inits := ref.Graph.InitializerMap()
	res := &PerLayer{}
	errs := map[int]*TensorError{}
	keep := map[int]bool{}
	scales := Scales(p)
	producer := map[int]int{}
	for si, s := range p.Steps {
		for _, o := range s.Outputs {
			producer[o] = si
			v := p.Values[o]
			name := OriginalName(v.Name, func(n string) bool { return known[n] && inits[n] == nil })
			if name == "" || s.ShapeStep || !(v.DType.IsFloat() || isCode(v.DType)) {
				continue
			}
			if _, ok := scales[o]; isCode(v.DType) && !ok {
				res.Skipped = append(res.Skipped, fmt.Sprintf("%s (no scale found for its codes)", v.Name))
				continue
			}
			keep[o] = true
			errs[o] = &TensorError{Tensor: name, Value: v.Name, Layer: s.Name, Step: si, Precision: s.Precision, DType: v.DType}
		}
	}
	ctx := eng.NewContext()
	tp := &tap{ctx: ctx, plan: p, scales: scales, keep: keep}
	ctx.SetProfiler(tp)
	want := map[string]bool{}
	for _, e := range errs {
		want[e.Tensor] = true
	}
	sizeMismatch := map[int]bool{}
	for b := 0; maxBatches <= 0 || b < maxBatches; b++ {
		in, err := data.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		refVals := map[string][]float64{}
		_, err = sess.RunObserved(in, func(name string, t *ir.Tensor) {
			if want[name] && t.DType.IsFloat() {
				refVals[name] = t.Float64s()
			}
		})
		if err != nil {
			return nil, fmt.Errorf("float graph: %w", err)
		}
		tp.got = map[int][]float64{}
		if _, err := ctx.Run(in); err != nil {
			return nil, fmt.Errorf("engine: %w", err)
		}
		for o, e := range errs {
			r, g := refVals[e.Tensor], tp.got[o]
			if r == nil || g == nil {
				continue
			}
			if len(r) != len(g) {
				sizeMismatch[o] = true
				continue
			}
			e.Acc.Add(r, g)
		}
		res.Batches++
	}
	for o, e := range errs {
		if sizeMismatch[o] && e.Acc.N == 0 {
			res.Skipped = append(res.Skipped, fmt.Sprintf("%s (size differs from %s)", e.Value, e.Tensor))
			continue
		}
		res.Tensors = append(res.Tensors, e)
	}
	sort.Slice(res.Tensors, func(i, j int) bool { return res.Tensors[i].Step < res.Tensors[j].Step })
	sort.Strings(res.Skipped)
	res.Blame = blame(p, res.Tensors, producer)
	return res, nil
}

// blame computes the error each non-reformat step adds.
func blame(p *engine.Plan, tensors []*TensorError, producer map[int]int) []Blame {
	byValue := map[string]*TensorError{}
	for _, t := range tensors {
		byValue[t.Value] = t
	}
	valIdx := map[string]int{}
	for i, v := range p.Values {
		valIdx[v.Name] = i
	}
	// errOf traces a value back through reformat steps: the error of the
	// format-converted copy belongs to the layer that reads it.
	var errOf func(v int) float64
	errOf = func(v int) float64 {
		si, ok := producer[v]
		if !ok {
			return 0 // graph input or weight
		}
		s := &p.Steps[si]
		if isReformat(s) && len(s.Inputs) > 0 && s.Inputs[0] >= 0 {
			return errOf(s.Inputs[0])
		}
		if t := byValue[p.Values[v].Name]; t != nil {
			return t.Acc.RelNoise()
		}
		return 0
	}
	var out []Blame
	for si := range p.Steps {
		s := &p.Steps[si]
		if isReformat(s) || s.ShapeStep {
			continue
		}
		var t *TensorError
		for _, o := range s.Outputs {
			if t = byValue[p.Values[o].Name]; t != nil {
				break
			}
		}
		if t == nil {
			continue
		}
		before := 0.0
		for _, in := range s.Inputs {
			if in >= 0 && p.Values[in].Weight < 0 {
				before = math.Max(before, errOf(in))
			}
		}
		after := t.Acc.RelNoise()
		out = append(out, Blame{Layer: s.Name, Precision: s.Precision, Tensor: t.Tensor, Before: before, After: after, Added: after - before, SQNR: t.Acc.SQNR()})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Added > out[j].Added })
	return out
}
