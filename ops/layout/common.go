package layout

import (
	"fmt"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// maxElements caps every output a kernel allocates: a hostile shape value
// (ConstantOfShape([1e12]), a huge Tile or Expand) must fail with an error,
// not exhaust memory.
const maxElements = 1 << 31

// attrGetter is what kernels (*ops.Ctx) and inference (*ops.InferCtx) share,
// so attribute parsing is written once.
type attrGetter interface {
	Int(name string, def int64) int64
	Float(name string, def float32) float32
	Ints(name string, def []int64) []int64
	String(name string, def string) string
	Tensor(name string) *ir.Tensor
	Has(name string) bool
	Errorf(format string, args ...any) error
}

// newOut allocates an output tensor after checking its dims.
func newOut(c *ops.Ctx, dt ir.DType, dims []int64) (*ir.Tensor, error) {
	n, err := ir.NumElements(dims)
	if err != nil {
		return nil, c.Errorf("output shape: %v", err)
	}
	if n > maxElements {
		return nil, c.Errorf("output shape %v has %d elements, more than the limit of %d", dims, n, int64(maxElements))
	}
	if !dt.Valid() {
		return nil, c.Errorf("unknown element type %d", int32(dt))
	}
	return ir.NewTensor(dt, dims), nil
}

// checkCount rejects a computed element count over the cap (for outputs
// whose size is known before their dims, like Range and NonZero).
func checkCount(c *ops.Ctx, n int64) error {
	if n < 0 || n > maxElements {
		return c.Errorf("output would have %d elements, more than the limit of %d", n, int64(maxElements))
	}
	return nil
}

// input returns in[i], or an error when the required input is absent.
func input(c *ops.Ctx, in []*ir.Tensor, i int, what string) (*ir.Tensor, error) {
	if i >= len(in) || in[i] == nil {
		return nil, c.Errorf("required input %d (%s) is missing", i, what)
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

// intsOf reads an integer tensor (int32/int64 or any integer type) as int64s.
func intsOf(c *ops.Ctx, t *ir.Tensor, what string) ([]int64, error) {
	if !t.DType.IsInteger() {
		return nil, c.Errorf("%s is %s, want an integer tensor", what, t.DType)
	}
	if t.Rank() > 1 {
		return nil, c.Errorf("%s has shape %v, want a 1-D tensor", what, t.Dims)
	}
	return t.Int64s(), nil
}

// scalarInt reads a one-element integer tensor.
func scalarInt(c *ops.Ctx, t *ir.Tensor, what string) (int64, error) {
	if !t.DType.IsInteger() {
		return 0, c.Errorf("%s is %s, want an integer", what, t.DType)
	}
	if t.Len() != 1 {
		return 0, c.Errorf("%s has shape %v, want a single element", what, t.Dims)
	}
	return t.Int64At(0), nil
}

// getBits and setBits move the raw bits of a packed sub-byte element
// (int4/uint4/int2/uint2/float4e2m1), low bits first.
func getBits(t *ir.Tensor, i int64) uint8 {
	bits := int64(t.DType.Bits())
	per := 8 / bits
	return (t.Data[i/per] >> uint((i%per)*bits)) & uint8(1<<bits-1)
}

func setBits(t *ir.Tensor, i int64, v uint8) {
	bits := int64(t.DType.Bits())
	per := 8 / bits
	sh := uint((i % per) * bits)
	m := uint8(1<<bits-1) << sh
	t.Data[i/per] = t.Data[i/per]&^m | (v<<sh)&m
}

// copyRun copies n consecutive elements src[si:si+n] to dst[di:di+n]; dst
// and src share one element type (any, including string and sub-byte).
func copyRun(dst *ir.Tensor, di int64, src *ir.Tensor, si, n int64) {
	switch {
	case n <= 0:
	case src.DType == ir.String:
		copy(dst.Strings[di:di+n], src.Strings[si:si+n])
	case src.DType.IsSubByte():
		for k := int64(0); k < n; k++ {
			setBits(dst, di+k, getBits(src, si+k))
		}
	default:
		w := int64(src.DType.Bits() / 8)
		copy(dst.Data[di*w:(di+n)*w], src.Data[si*w:(si+n)*w])
	}
}

// copyElem copies one element.
func copyElem(dst *ir.Tensor, di int64, src *ir.Tensor, si int64) { copyRun(dst, di, src, si, 1) }

// isZero reports whether element i is zero (false for bool, empty for strings).
func isZero(t *ir.Tensor, i int64) bool {
	switch {
	case t.DType == ir.String:
		return len(t.Strings[i]) == 0
	case t.DType.IsFloat():
		return t.Float64At(i) == 0
	case t.DType == ir.Complex64 || t.DType == ir.Complex128:
		w := int64(t.DType.Bits() / 8)
		return allZero(t.Data[i*w:(i+1)*w], t.DType)
	}
	return t.Int64At(i) == 0
}

// allZero treats complex parts as floats so that -0 counts as zero.
func allZero(b []byte, dt ir.DType) bool {
	pt := ir.Float32
	if dt == ir.Complex128 {
		pt = ir.Float64
	}
	part := &ir.Tensor{DType: pt, Dims: []int64{2}, Data: b}
	return part.Float64At(0) == 0 && part.Float64At(1) == 0
}

// prod multiplies dims (callers have checked them with ir.NumElements).
func prod(d []int64) int64 {
	p := int64(1)
	for _, v := range d {
		p *= v
	}
	return p
}

// wantOut reports whether the node asks for output k.
func wantOut(n *ir.Node, k int) bool { return k < len(n.Outputs) && n.Outputs[k] != "" }

// unknownShape returns a rank-r shape of unknown dims.
func unknownShape(r int) ir.Shape {
	s := make(ir.Shape, r)
	for i := range s {
		s[i] = ir.Unknown()
	}
	return s
}

// inType returns c.In[i] (nil when absent or unknown).
func inType(c *ops.InferCtx, i int) *ir.Type {
	if i < len(c.In) {
		return c.In[i]
	}
	return nil
}

// hasInput reports whether the node's input i is present.
func hasInput(n *ir.Node, i int) bool { return i < len(n.Inputs) && n.Inputs[i] != "" }

// ranked returns the type of input i when its rank is known.
func ranked(c *ops.InferCtx, i int) (*ir.Type, bool) {
	t := inType(c, i)
	return t, t != nil && t.HasShape
}

// normAxes normalizes axes against rank r, rejecting duplicates.
func normAxes(e func(string, ...any) error, axes []int64, r int) ([]int, error) {
	seen := map[int]bool{}
	out := make([]int, len(axes))
	for i, a := range axes {
		ax, err := ops.NormAxis(a, r)
		if err != nil {
			return nil, e("axes %v: %v", axes, err)
		}
		if seen[ax] {
			return nil, e("axes %v: axis %d repeats", axes, a)
		}
		seen[ax] = true
		out[i] = ax
	}
	return out, nil
}

// dimMul multiplies symbolic dims: known*known, x*1, 1*x; else unknown.
func dimMul(a, b ir.Dim) ir.Dim {
	switch {
	case a.Known() && b.Known():
		return ir.D(a.Value * b.Value)
	case a.Known() && a.Value == 1:
		return b
	case b.Known() && b.Value == 1:
		return a
	case (a.Known() && a.Value == 0) || (b.Known() && b.Value == 0):
		return ir.D(0)
	}
	return ir.Unknown()
}

// dimProd multiplies a list of symbolic dims.
func dimProd(s ir.Shape) ir.Dim {
	p := ir.D(1)
	for _, d := range s {
		p = dimMul(p, d)
	}
	return p
}

// errorf makes an error naming the node, for helpers shared by kernels and inference.
func errorf(n *ir.Node, format string, args ...any) error {
	return fmt.Errorf("%s: %s", n, fmt.Sprintf(format, args...))
}

// rawZero reports whether element i's storage is all zero bits (an empty
// string), i.e. what a freshly allocated tensor already holds.
func rawZero(t *ir.Tensor, i int64) bool {
	switch {
	case t.DType == ir.String:
		return len(t.Strings[i]) == 0
	case t.DType.IsSubByte():
		return getBits(t, i) == 0
	}
	w := int64(t.DType.Bits() / 8)
	for _, b := range t.Data[i*w : (i+1)*w] {
		if b != 0 {
			return false
		}
	}
	return true
}

// numeric reports types SetFloat64At can write (floats, integers, bool).
func numeric(dt ir.DType) bool { return dt.IsFloat() || dt.IsInteger() || dt == ir.Bool }
