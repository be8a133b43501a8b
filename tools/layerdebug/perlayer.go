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
	// QuantizedBy names the reference graph's QuantizeLinear node whose
	// parameters quantized Tensor before the comparison: the engine value
	// holds that node's codes, which the builder moved above ops that
	// commute with it (so they are taken from Tensor, an earlier tensor
	// than the node's own input). "" when Tensor is compared as it is.
	QuantizedBy string `json:",omitempty"`
	Acc         accuracy.Acc
}

// refKey is the reference values an engine value is compared with.
func (e *TensorError) refKey() string {
	if e.QuantizedBy != "" {
		return e.QuantizedBy + "(" + e.Tensor + ")"
	}
	return e.Tensor
}

// ShownTensor is the reference the engine value was compared with, as a
// table shows it: the tensor's name, or node(tensor) for a tensor quantized
// by a moved QuantizeLinear node.
func (e *TensorError) ShownTensor() string { return e.refKey() }

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
	Skipped []string // engine values with no counterpart (or a different size, or no comparable values) in the float graph
}

// tap copies each step's outputs, dequantized, right after the step ran.
type tap struct {
	ctx   *engine.Context
	plan  *engine.Plan
	codes map[int]Affine
	keep  map[int]bool
	got   map[int][]float64
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
		if isCode(v.DType) {
			a := t.codes[o]
			for i := int64(0); i < n; i++ {
				buf[i] = a.Real(v.Float64At(i))
			}
		} else {
			for i := int64(0); i < n; i++ {
				buf[i] = v.Float64At(i)
			}
		}
		t.got[o] = buf
	}
}

// Compare runs every batch through the float graph (every intermediate
// tensor) and the engine (every step output, read by a debug tap) and
// compares each engine value with the float tensor it stands for. Codes are
// compared as the real numbers they stand for: the engine's dequantized by
// their step's scale and zero point, a Q/DQ reference graph's by its
// QuantizeLinear node's; a QuantizeLinear the builder moved above
// commuting ops is compared with the tensor it now reads quantized by the
// same node's parameters (refquant.go).
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
	refq := newRefQuant(ref.Graph)
	res := &PerLayer{}
	errs := map[int]*TensorError{}
	keep := map[int]bool{}
	codes := CodeParams(p)
	producer := map[int]int{}
	for si, s := range p.Steps {
		for _, o := range s.Outputs {
			producer[o] = si
			v := p.Values[o]
			name := OriginalName(v.Name, func(n string) bool { return known[n] && inits[n] == nil })
			if name == "" || s.ShapeStep || !(v.DType.IsFloat() || isCode(v.DType)) {
				continue
			}
			if _, ok := codes[o]; isCode(v.DType) && !ok {
				res.Skipped = append(res.Skipped, fmt.Sprintf("%s (no scale found for its codes)", v.Name))
				continue
			}
			keep[o] = true
			e := &TensorError{Tensor: name, Value: v.Name, Layer: s.Name, Step: si, Precision: s.Precision, DType: v.DType}
			if isCode(v.DType) && isQuantize(&s) && refq.byOutput[name] == nil {
				e.QuantizedBy = OriginalName(s.Name, func(n string) bool { return refq.byName[n] != nil })
			}
			errs[o] = e
		}
	}
	ctx := eng.NewContext()
	tp := &tap{ctx: ctx, plan: p, codes: codes, keep: keep}
	ctx.SetProfiler(tp)
	want := map[string]bool{}
	quantizedBy := map[string][]string{} // tensor → the Q nodes that quantize it before a comparison
	for _, e := range errs {
		if e.QuantizedBy != "" {
			quantizedBy[e.Tensor] = append(quantizedBy[e.Tensor], e.QuantizedBy)
		} else {
			want[e.Tensor] = true
		}
	}
	refErr := map[string]error{}
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
			if want[name] {
				if t.DType.IsFloat() {
					refVals[name] = t.Float64s()
				} else if qn := refq.byOutput[name]; qn != nil {
					refVals[name], refErr[name] = refq.dequantize(qn, t)
				}
			}
			if t.DType.IsFloat() {
				for _, qn := range quantizedBy[name] {
					k := qn + "(" + name + ")"
					refVals[k], refErr[k] = refq.fakeQuantize(refq.byName[qn], t)
				}
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
			r, g := refVals[e.refKey()], tp.got[o]
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
			res.Skipped = append(res.Skipped, fmt.Sprintf("%s (size differs from %s)", e.Value, e.refKey()))
			continue
		}
		if e.Acc.N == 0 {
			why := "the float graph gave no float or dequantizable values for it"
			if err := refErr[e.refKey()]; err != nil {
				why = err.Error()
			}
			res.Skipped = append(res.Skipped, fmt.Sprintf("%s (not compared with %s: %s)", e.Value, e.refKey(), why))
			continue
		}
		res.Tensors = append(res.Tensors, e)
	}
	sort.Slice(res.Tensors, func(i, j int) bool { return res.Tensors[i].Step < res.Tensors[j].Step })
	sort.Strings(res.Skipped)
	res.Blame = blame(p, res.Tensors, producer)
	return res, nil
}

// isQuantize reports whether a step is a lone QuantizeLinear.
func isQuantize(s *engine.Step) bool {
	return len(s.OpTypes) == 1 && s.OpTypes[0] == "QuantizeLinear"
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
