package ops

import (
	"errors"
	"fmt"

	"github.com/kilnml/kiln/ir"
)

// Inference is the result of shape and type inference over a graph.
type Inference struct {
	Types  map[string]*ir.Type   // every value whose type is known
	Consts map[string]*ir.Tensor // values known at build time (initializers, folded nodes)
	Values map[string]ir.Shape   // symbolic values of small integer tensors
	// Warnings are declared types that disagree with inference where
	// ONNX Runtime goes on with the inferred one (checkDeclared).
	Warnings []string
}

// InferOptions adjusts inference.
type InferOptions struct {
	// InputShapes overrides the declared shapes of graph inputs (a builder
	// infers at each profile's min/opt/max shapes this way).
	InputShapes map[string]ir.Shape
	// FoldLimit bounds the element count of inputs a node may have to be
	// evaluated at inference time (0: 1<<16).
	FoldLimit int64
}

// InferTypes returns the type of every value of the main graph.
func InferTypes(m *ir.Model) (map[string]*ir.Type, error) {
	inf, err := Infer(m, InferOptions{})
	if inf == nil {
		return nil, err
	}
	return inf.Types, err
}

// Infer propagates types, shapes (with symbolic dims), constants and
// symbolic shape values through the main graph in topological order. Nodes
// whose inputs are all known constants are evaluated with their kernel.
// Every problem is reported (joined); values downstream of a failing node
// simply stay unknown.
func Infer(m *ir.Model, opt InferOptions) (*Inference, error) {
	if opt.FoldLimit == 0 {
		opt.FoldLimit = 1 << 16
	}
	g := m.Graph
	order, err := g.TopoSort()
	if err != nil {
		return nil, err
	}
	r := &Inference{Types: map[string]*ir.Type{}, Consts: map[string]*ir.Tensor{}, Values: map[string]ir.Shape{}}
	for _, in := range g.Inputs {
		if in.Type != nil {
			r.Types[in.Name] = in.Type.Clone()
		}
		if s, ok := opt.InputShapes[in.Name]; ok {
			t := r.Types[in.Name]
			if t == nil {
				t = &ir.Type{}
			}
			t.Shape, t.HasShape = append(ir.Shape{}, s...), true
			r.Types[in.Name] = t
		}
	}
	for _, t := range g.Initializers {
		r.setConst(t.Name, t)
	}
	var errs []error
	for _, n := range order {
		if err := r.inferNode(m, n, opt); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, r.checkDeclared(g)...)
	return r, errors.Join(errs...)
}

func (r *Inference) setConst(name string, t *ir.Tensor) {
	r.Consts[name] = t
	r.Types[name] = t.Type()
	if v := ValueOf(t); v != nil {
		r.Values[name] = v
	}
}

func (r *Inference) inferNode(m *ir.Model, n *ir.Node, opt InferOptions) error {
	opset := m.Opset(n.Domain)
	op, err := Lookup(n.Domain, n.OpType, opset)
	if err != nil {
		return fmt.Errorf("%s: %w", n, err)
	}
	in := make([]*ir.Type, len(n.Inputs))
	cst := make([]*ir.Tensor, len(n.Inputs))
	val := make([]ir.Shape, len(n.Inputs))
	allConst, size := true, int64(0)
	for i, name := range n.Inputs {
		if name == "" {
			continue
		}
		in[i], cst[i], val[i] = r.Types[name], r.Consts[name], r.Values[name]
		if cst[i] == nil {
			allConst = false
		} else {
			size += cst[i].Len()
		}
	}
	c := NewInferCtx(n, opset, in, cst, val)
	err = op.Infer(c)
	if aerr := c.Err(); aerr != nil {
		err = aerr
	}
	// Fold only when the inputs are small and the outputs will be too: a
	// ConstantOfShape or Expand of a tiny constant can ask for gigabytes,
	// which belong to run time (where kernels cap sizes), not to the build.
	if allConst && size <= opt.FoldLimit && foldable(n) && (err != nil || outputsWithin(c.Out, opt.FoldLimit)) {
		outs, err := runKernel(op.Run, NewCtx(n, opset), cst)
		if err != nil {
			return err
		}
		for k, name := range n.Outputs {
			if name != "" && k < len(outs) && outs[k] != nil {
				r.setConst(name, outs[k])
			}
		}
		return nil
	}
	if err != nil {
		return err
	}
	for k, name := range n.Outputs {
		if name == "" {
			continue
		}
		if c.Out[k] != nil {
			r.Types[name] = c.Out[k]
		}
		if k < len(c.OutValue) && c.OutValue[k] != nil {
			r.Values[name] = c.OutValue[k]
		}
	}
	return nil
}

// outputsWithin reports whether no inferred output is known to hold more
// than limit elements (outputs of unknown shape are left to the kernel).
func outputsWithin(outs []*ir.Type, limit int64) bool {
	for _, t := range outs {
		if t == nil || !t.HasShape {
			continue
		}
		dims, ok := t.Shape.Concrete()
		if !ok {
			continue
		}
		n := int64(1)
		for _, d := range dims {
			if d < 0 || (d > 0 && n > limit/d) {
				return false
			}
			n *= d
		}
		if n > limit {
			return false
		}
	}
	return true
}

// foldable excludes ops whose output must not be precomputed.
func foldable(n *ir.Node) bool {
	switch n.OpType {
	case "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli":
		return false
	}
	return true
}

// checkDeclared compares inferred types with the types the file declares for
// graph outputs and annotated values: a different dtype or a different known
// dimension is reported.
func (r *Inference) checkDeclared(g *ir.Graph) []error {
	var errs []error
	check := func(vi *ir.ValueInfo, what string) {
		got := r.Types[vi.Name]
		want := vi.Type
		if got == nil || want == nil || want.Kind != ir.KindTensor || got.Kind != ir.KindTensor {
			return
		}
		if want.DType != ir.Undefined && got.DType != ir.Undefined && want.DType != got.DType {
			errs = append(errs, fmt.Errorf("%s %q: declared %s, inferred %s", what, vi.Name, want, got))
			return
		}
		if !want.HasShape || !got.HasShape {
			return
		}
		if len(want.Shape) != len(got.Shape) {
			if len(want.Shape) == 0 {
				// an empty declared shape where a tensor of rank > 0 comes out
				// (Polygraphy's residual_block) is most likely "unknown"
				// written as "scalar": ONNX Runtime warns and merges
				// leniently, and so does kiln
				r.Warnings = append(r.Warnings, fmt.Sprintf("%s %q: declared %s (a scalar), inferred %s; using the inferred shape, as ONNX Runtime does", what, vi.Name, want, got))
				return
			}
			errs = append(errs, fmt.Errorf("%s %q: declared %s, inferred %s", what, vi.Name, want, got))
			return
		}
		for i := range want.Shape {
			if want.Shape[i].Known() && got.Shape[i].Known() && want.Shape[i].Value != got.Shape[i].Value {
				errs = append(errs, fmt.Errorf("%s %q: declared %s, inferred %s", what, vi.Name, want, got))
				return
			}
		}
	}
	for _, o := range g.Outputs {
		check(o, "graph output")
	}
	for _, v := range g.ValueInfo {
		check(v, "value")
	}
	return errs
}
