package arith

import (
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// Symbolic values: exporters compute shapes with arithmetic on Shape
// outputs (PyTorch's Expand is Shape → ConstantOfShape → Mul(-1) → Equal →
// Where), so inference carries the values of small integer tensors through
// these ops, keeping symbols such as "batch" where the answer does not
// depend on their size. Known numbers are computed exactly; what cannot be
// decided becomes an unknown element.

// isSym reports a named dimension (not a number, not unknown). Symbols come
// from tensor dims, so they stand for sizes >= 0.
func isSym(d ir.Dim) bool {
	_, known := ops.DimValue(d)
	return d.Param != "" && !known
}

// symbolic gives op(a, b) for elements of which at least one is not a known
// number, where the result does not depend on the symbol's size.
func symbolic(op string, a, b ir.Dim) ir.Dim {
	av, aok := ops.DimValue(a)
	bv, bok := ops.DimValue(b)
	same := isSym(a) && a == b
	switch op {
	case "Add":
		switch {
		case bok && bv == 0:
			return a
		case aok && av == 0:
			return b
		}
	case "Sub":
		switch {
		case bok && bv == 0:
			return a
		case same:
			return ir.D(0)
		}
	case "Mul":
		switch {
		case bok && bv == 1:
			return a
		case aok && av == 1:
			return b
		case (aok && av == 0) || (bok && bv == 0):
			return ir.D(0)
		}
	case "Div":
		switch {
		case bok && bv == 1:
			return a
		case same:
			return ir.D(1)
		}
	case "Max", "Min":
		switch {
		case same:
			return a
		case isSym(a) && bok && bv <= 0:
			if op == "Max" {
				return a
			}
			return b
		case isSym(b) && aok && av <= 0:
			return symbolic(op, b, a)
		}
	case "Equal":
		switch {
		case same:
			return ir.D(1)
		case (isSym(a) && bok && bv < 0) || (isSym(b) && aok && av < 0):
			return ir.D(0) // a size is never negative (-1 is Reshape's "infer")
		}
	}
	return ir.Unknown()
}

// valueOut reports whether output 0 is a value inference tracks: an integer
// or bool tensor of rank 0 or 1.
func valueOut(c *ops.InferCtx) bool {
	t := c.Out[0]
	return t != nil && (t.DType.IsInteger() || t.DType == ir.Bool) && t.HasShape && len(t.Shape) <= 1
}

// wrapTo reduces an int64 result to what dtype dt stores.
func wrapTo(dt ir.DType, v int64) int64 {
	if dt == ir.Int64 || dt == ir.Uint64 {
		return v
	}
	return ir.FromInt64s(dt, nil, []int64{v}).Int64At(0)
}

// combine applies f elementwise to two values with broadcasting (lengths
// equal, or one of them 1). f sees known numbers only; symbols go through
// symbolic. ok is false when the lengths do not broadcast.
func combine(op string, va, vb ir.Shape, dt ir.DType, f func(a, b int64) (int64, bool)) (ir.Shape, bool) {
	n := max(len(va), len(vb))
	if (len(va) != n && len(va) != 1) || (len(vb) != n && len(vb) != 1) {
		return nil, false
	}
	out := make(ir.Shape, n)
	for i := range out {
		a, b := va[min(i, len(va)-1)], vb[min(i, len(vb)-1)]
		x, xok := ops.DimValue(a)
		y, yok := ops.DimValue(b)
		if !xok || !yok {
			out[i] = symbolic(op, a, b)
			continue
		}
		if r, ok := f(x, y); ok {
			out[i] = ops.ValueDim(wrapTo(dt, r))
		} else {
			out[i] = ir.Unknown()
		}
	}
	return out, true
}

// exactInt turns a binFns into an int64 function; false for a zero divisor
// or a missing integer form.
func exactInt(f binFns, divides bool) func(a, b int64) (int64, bool) {
	return func(a, b int64) (int64, bool) {
		if f.i == nil || (divides && b == 0) {
			return 0, false
		}
		return f.i(a, b), true
	}
}

// inferValues sets OutValue[0] for a broadcasting op over inputs idx when
// every input's value is known (symbolically or not).
func inferValues(c *ops.InferCtx, op string, f func(a, b int64) (int64, bool), idx ...int) {
	if !valueOut(c) {
		return
	}
	var acc ir.Shape
	for k, i := range idx {
		v, ok := c.InputValue(i)
		if !ok {
			return
		}
		if k == 0 {
			acc = v
			continue
		}
		if acc, ok = combine(op, acc, v, c.Out[0].DType, f); !ok {
			return
		}
	}
	if n := numelShape(c.Out[0].Shape); n >= 0 && int64(len(acc)) != n {
		return
	}
	c.OutValue[0] = acc
}

// numelShape is the element count of a shape of known dims, or -1.
func numelShape(s ir.Shape) int64 {
	d, ok := s.Concrete()
	if !ok {
		return -1
	}
	return numel(d)
}

// whereValue picks elements of the values of X and Y by a known condition.
func whereValue(c *ops.InferCtx) {
	if !valueOut(c) {
		return
	}
	cv, ok0 := c.InputValue(0)
	xv, ok1 := c.InputValue(1)
	yv, ok2 := c.InputValue(2)
	if !ok0 || !ok1 || !ok2 {
		return
	}
	pick := func(cd, x, y ir.Dim) ir.Dim {
		v, ok := ops.DimValue(cd)
		switch {
		case !ok:
			return ir.Unknown()
		case v != 0:
			return x
		}
		return y
	}
	n := max(len(cv), len(xv), len(yv))
	out := make(ir.Shape, n)
	for i := range out {
		for _, v := range []ir.Shape{cv, xv, yv} {
			if len(v) != n && len(v) != 1 {
				return
			}
		}
		out[i] = pick(cv[min(i, len(cv)-1)], xv[min(i, len(xv)-1)], yv[min(i, len(yv)-1)])
	}
	if m := numelShape(c.Out[0].Shape); m >= 0 && int64(n) != m {
		return
	}
	c.OutValue[0] = out
}

// foldValues evaluates a kernel at inference time on inputs whose values
// are all known numbers without being build-time constants (a Shape output
// of a tensor with known dims, say), and sets OutValue[0] from the result.
// ReduceProd(Slice(Shape(x))) giving Flatten's size is the usual case.
func foldValues(c *ops.InferCtx, run ops.Kernel) {
	if !valueOut(c) {
		return
	}
	in := make([]*ir.Tensor, len(c.In))
	for i, t := range c.In {
		switch {
		case i < len(c.Const) && c.Const[i] != nil:
			in[i] = c.Const[i]
		case t == nil:
			if i < len(c.Node.Inputs) && c.Node.Inputs[i] != "" {
				return // present but unknown
			}
		default:
			v, ok := c.InputInts(i)
			if !ok || !(t.DType.IsInteger() || t.DType == ir.Bool) || !t.HasShape || len(t.Shape) > 1 {
				return
			}
			d := []int64{}
			if len(t.Shape) == 1 {
				d = []int64{int64(len(v))}
			} else if len(v) != 1 {
				return
			}
			in[i] = ir.FromInt64s(t.DType, d, v)
		}
	}
	outs, err := run(ops.NewCtx(c.Node, c.Opset), in)
	if err != nil || len(outs) == 0 || outs[0] == nil {
		return
	}
	c.OutValue[0] = ops.ValueOf(outs[0])
}
