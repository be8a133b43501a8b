package nn

import (
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// attrGetter is what kernels (*ops.Ctx) and inference functions
// (*ops.InferCtx) share, so that attribute parsing is written once.
type attrGetter interface {
	Int(name string, def int64) int64
	Float(name string, def float32) float32
	Ints(name string, def []int64) []int64
	String(name string, def string) string
	Has(name string) bool
	Errorf(format string, args ...any) error
	Err() error
}

// floats returns t's elements as float64 (nil for an absent tensor).
func floats(t *ir.Tensor) []float64 {
	if t == nil {
		return nil
	}
	return t.Float64s()
}

// fromFloats builds a tensor of dtype dt from float64 values, rounding once.
func fromFloats(dt ir.DType, dims []int64, v []float64) *ir.Tensor {
	t := ir.NewTensor(dt, dims)
	if dt == ir.Float32 {
		f := t.F32()
		for i, x := range v {
			f[i] = float32(x)
		}
		return t
	}
	for i, x := range v {
		t.SetFloat64At(int64(i), x)
	}
	return t
}

// needFloat checks that input i is present and of a floating-point type.
func needFloat(c *ops.Ctx, in []*ir.Tensor, i int, what string) (*ir.Tensor, error) {
	if i >= len(in) || in[i] == nil {
		return nil, c.Errorf("input %d (%s) is missing", i, what)
	}
	if !in[i].DType.IsFloat() {
		return nil, c.Errorf("input %d (%s) is %s, want a floating-point type", i, what, in[i].DType)
	}
	return in[i], nil
}

// opt returns in[i] or nil when absent.
func opt(in []*ir.Tensor, i int) *ir.Tensor {
	if i < len(in) {
		return in[i]
	}
	return nil
}

// optType returns c.In[i] or nil when absent.
func optType(c *ops.InferCtx, i int) *ir.Type {
	if i < len(c.In) {
		return c.In[i]
	}
	return nil
}

// wantOut reports whether the node asks for output k.
func wantOut(n *ir.Node, k int) bool { return k < len(n.Outputs) && n.Outputs[k] != "" }

// prod multiplies dims.
func prod(d []int64) int64 {
	p := int64(1)
	for _, v := range d {
		p *= v
	}
	return p
}

// dimsOf returns the numeric dims of a shape, -1 where not known.
func dimsOf(s ir.Shape) []int64 {
	out := make([]int64, len(s))
	for i, d := range s {
		if d.Known() {
			out[i] = d.Value
		} else {
			out[i] = -1
		}
	}
	return out
}

// knownOrUnknown turns -1 into an unknown dim.
func knownOrUnknown(v int64) ir.Dim {
	if v < 0 {
		return ir.Unknown()
	}
	return ir.D(v)
}

// ceilDiv is ceil(a/b) for b > 0 and any sign of a.
func ceilDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a > 0) == (b > 0) {
		q++
	}
	return q
}

// floorDiv is floor(a/b) for b > 0 and any sign of a.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// maxElements bounds the outputs a reference kernel allocates (as in the
// other op families), so that a bad file gets an error, not an OOM kill.
const maxElements = 1 << 31

// checkSize rejects outputs too large to allocate.
func checkSize(c *ops.Ctx, dims []int64) error {
	n, err := ir.NumElements(dims)
	if err != nil {
		return c.Errorf("output %v", err)
	}
	if n > maxElements {
		return c.Errorf("output dims %v: %d elements is too large", dims, n)
	}
	return nil
}

// checkWork rejects nodes whose multiply-adds would run for hours.
func checkWork(c *ops.Ctx, macs ...int64) error {
	w := 1.0
	for _, m := range macs {
		w *= float64(m)
	}
	if w > 1<<40 {
		return c.Errorf("%.3g multiply-adds is too much work for the reference kernel", w)
	}
	return nil
}
