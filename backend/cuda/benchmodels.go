package cudabackend

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/kilnml/kiln/ir"
)

// BatchDynamic turns a fixed-batch model (the ONNX zoo's ResNet-50 takes
// [1,3,224,224]) into one whose first dimension is the symbol "N": graph
// inputs and outputs get a symbolic batch, inferred value infos are dropped,
// and Reshape targets that hard-code the batch of 1 become -1. The GPU
// benchmarks and model tests use it to run such models at batch 256.
func BatchDynamic(m *ir.Model) error {
	g := m.Graph
	for _, vs := range [][]*ir.ValueInfo{g.Inputs, g.Outputs} {
		for _, v := range vs {
			if g.Initializer(v.Name) != nil || v.Type == nil || !v.Type.HasShape || len(v.Type.Shape) == 0 {
				continue
			}
			s := append(ir.Shape(nil), v.Type.Shape...)
			s[0] = ir.Sym("N")
			t := *v.Type
			t.Shape = s
			v.Type = &t
		}
	}
	g.ValueInfo = nil
	for _, n := range g.Nodes {
		if n.OpType != "Reshape" || len(n.Inputs) < 2 {
			continue
		}
		sh := g.Initializer(n.Inputs[1])
		if sh == nil || sh.DType != ir.Int64 || sh.Len() == 0 {
			continue
		}
		if sh.Float64At(0) == 1 {
			v := sh.Int64s()
			v[0] = -1
			name := sh.Name
			*sh = *ir.FromInt64s(ir.Int64, sh.Dims, v)
			sh.Name = name
		} else if sh.Float64At(0) != -1 && sh.Float64At(0) != 0 {
			return fmt.Errorf("Reshape %s: target %v fixes the batch", n.Name, sh.Int64s())
		}
	}
	return nil
}

// RandomStream is a calibration stream of uniform [0, 1) batches for one
// input: enough for timing INT8/FP8 engines of models without a data set
// (the accuracy of such engines is not what they measure).
type RandomStream struct {
	Input   string
	Shape   []int64 // one batch
	Batches int
	seed    uint64
}

func (s *RandomStream) BatchSize() int { return int(s.Shape[0]) }

func (s *RandomStream) Next() (map[string]*ir.Tensor, error) {
	if int(s.seed) >= s.Batches {
		return nil, io.EOF
	}
	s.seed++
	r := rand.New(rand.NewPCG(s.seed, 7))
	t := ir.NewTensor(ir.Float32, s.Shape)
	for i, v := 0, t.F32(); i < len(v); i++ {
		v[i] = r.Float32()
	}
	return map[string]*ir.Tensor{s.Input: t}, nil
}

// Opset13 moves an opset 9–12 model of the ResNet kind to opset 13, so that
// per-channel Q/DQ (INT8/FP8 builds) can be written into it. It refuses
// models whose Softmax might change meaning (opset 13 reads axis as one
// axis, not as the flattening point): only a Softmax over the output of a
// Gemm (2D, where the two readings agree) is accepted.
func Opset13(m *ir.Model) error {
	prod := m.Graph.Producers()
	for _, n := range m.Graph.Nodes {
		if n.OpType != "Softmax" {
			continue
		}
		ax, _ := n.AttrInt("axis", 1)
		if p := prod[n.Inputs[0]]; p == nil || p.OpType != "Gemm" || (ax != 1 && ax != -1) {
			return fmt.Errorf("Softmax %s: input is not a Gemm's 2D output, opset 13 could change it", n.Name)
		}
	}
	for i, o := range m.Opsets {
		if (o.Domain == "" || o.Domain == "ai.onnx") && o.Version < 13 {
			m.Opsets[i].Version = 13
		}
	}
	return nil
}

// RandomWeights replaces the ConstantOfShape nodes that the ONNX "light"
// zoo models hold instead of weights by random float32 initializers (seeded),
// so that whole-model comparisons see varied activations rather than
// constant ones: tensors of rank ≥ 2 (convolution and fc weights) uniform in
// ±√(6/fan_in) (He), rank-1 biases and running means in ±0.1, other rank-1
// tensors (scales, variances) in [0.5, 1).
func RandomWeights(m *ir.Model, seed uint64) {
	g := m.Graph
	r := rand.New(rand.NewPCG(seed, 11))
	keep := g.Nodes[:0]
	for _, n := range g.Nodes {
		sh := (*ir.Tensor)(nil)
		if n.OpType == "ConstantOfShape" && len(n.Inputs) == 1 && len(n.Outputs) == 1 {
			sh = g.Initializer(n.Inputs[0])
		}
		if sh == nil || sh.DType != ir.Int64 {
			keep = append(keep, n)
			continue
		}
		dims := sh.Int64s()
		t := ir.NewTensor(ir.Float32, dims)
		lo, hi := float32(0.5), float32(1)
		name := n.Outputs[0]
		switch {
		case len(dims) >= 2:
			fan := int64(1)
			for _, d := range dims[1:] {
				fan *= d
			}
			b := float32(math.Sqrt(6 / float64(max(fan, 1))))
			lo, hi = -b, b
		case strings.Contains(name, "_b_") || strings.Contains(name, "_rm_"):
			lo, hi = -0.1, 0.1
		}
		for i, v := 0, t.F32(); i < len(v); i++ {
			v[i] = lo + (hi-lo)*r.Float32()
		}
		t.Name = name
		g.Initializers = append(g.Initializers, t)
	}
	g.Nodes = keep
}
