package nn

import (
	"math"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

func init() {
	for _, t := range []string{"GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"} {
		ops.Register(&ops.Op{Type: t, MinOpset: 1, Run: globalPool, Infer: inferGlobalPool})
	}
	ops.Register(&ops.Op{Type: "MaxUnpool", MinOpset: 9, Run: maxUnpool, Infer: inferMaxUnpool})
}

func inferGlobalPool(c *ops.InferCtx) error {
	x, err := c.Input(0)
	if err != nil {
		return err
	}
	if !x.HasShape {
		c.Out[0] = &ir.Type{DType: x.DType}
		return nil
	}
	if len(x.Shape) < 3 {
		return c.Errorf("X has rank %d, want at least 3 (N, C, spatial...)", len(x.Shape))
	}
	out := ir.Shape{x.Shape[0], x.Shape[1]}
	for range x.Shape[2:] {
		out = append(out, ir.D(1))
	}
	c.Out[0] = ir.TensorType(x.DType, out)
	return nil
}

// globalPool reduces every spatial plane to one value: mean, max or Lp norm.
func globalPool(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := needFloat(c, in, 0, "X")
	if err != nil {
		return nil, err
	}
	if x.Rank() < 3 {
		return nil, c.Errorf("X has rank %d, want at least 3 (N, C, spatial...)", x.Rank())
	}
	pw := float64(c.Int("p", 2))
	if err := c.Err(); err != nil {
		return nil, err
	}
	planes, sz := x.Dims[0]*x.Dims[1], prod(x.Dims[2:])
	xs := floats(x)
	y := make([]float64, planes)
	for p := range y {
		plane := xs[int64(p)*sz : int64(p+1)*sz]
		switch c.Node.OpType {
		case "GlobalAveragePool":
			var s float64
			for _, v := range plane {
				s += v
			}
			y[p] = s / float64(sz)
		case "GlobalMaxPool":
			m := math.Inf(-1)
			for _, v := range plane {
				if v > m || math.IsNaN(v) {
					m = v
				}
			}
			y[p] = m
		default:
			var s float64
			for _, v := range plane {
				s += math.Pow(math.Abs(v), pw)
			}
			y[p] = math.Pow(s, 1/pw)
		}
	}
	out := []int64{x.Dims[0], x.Dims[1]}
	for range x.Dims[2:] {
		out = append(out, 1)
	}
	return []*ir.Tensor{fromFloats(x.DType, out, y)}, nil
}

// unpoolDims is the default MaxUnpool output: (in-1)*stride - pads + kernel.
func unpoolDims(a attrGetter, xd []int64) ([]int64, error) {
	if len(xd) < 3 {
		return nil, a.Errorf("X has rank %d, want at least 3 (N, C, spatial...)", len(xd))
	}
	r := len(xd) - 2
	ones := make([]int64, r)
	for i := range ones {
		ones[i] = 1
	}
	kernel := a.Ints("kernel_shape", nil)
	strides := a.Ints("strides", ones)
	pads := a.Ints("pads", make([]int64, 2*r))
	if err := a.Err(); err != nil {
		return nil, err
	}
	if len(kernel) != r || len(strides) != r || len(pads) != 2*r {
		return nil, a.Errorf("kernel_shape %v, strides %v, pads %v do not match %d spatial axes", kernel, strides, pads, r)
	}
	out := []int64{xd[0], xd[1]}
	for i := 0; i < r; i++ {
		if xd[2+i] < 0 {
			out = append(out, -1)
			continue
		}
		o := (xd[2+i]-1)*strides[i] - pads[i] - pads[i+r] + kernel[i]
		if o < 0 {
			return nil, a.Errorf("spatial axis %d: output size %d is negative", i, o)
		}
		out = append(out, o)
	}
	return out, nil
}

func inferMaxUnpool(c *ops.InferCtx) error {
	x, err := c.Input(0)
	if err != nil {
		return err
	}
	if len(c.Node.Inputs) > 2 && c.Node.Inputs[2] != "" {
		if v, ok := c.ConstInts(2); ok {
			c.Out[0] = ir.TensorType(x.DType, ir.ShapeOf(v))
			return nil
		}
		if len(c.Value) > 2 && c.Value[2] != nil {
			c.Out[0] = ir.TensorType(x.DType, append(ir.Shape{}, c.Value[2]...))
			return nil
		}
		c.Out[0] = &ir.Type{DType: x.DType}
		return nil
	}
	if !x.HasShape {
		c.Out[0] = &ir.Type{DType: x.DType}
		return nil
	}
	d, err := unpoolDims(c, dimsOf(x.Shape))
	if err != nil {
		return err
	}
	out := ir.Shape{x.Shape[0], x.Shape[1]}
	for _, v := range d[2:] {
		out = append(out, knownOrUnknown(v))
	}
	c.Out[0] = ir.TensorType(x.DType, out)
	return nil
}

// maxUnpool scatters X into a zero tensor at the flat positions I (as
// MaxPool's Indices output gives them).
func maxUnpool(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := needFloat(c, in, 0, "X")
	if err != nil {
		return nil, err
	}
	idx := opt(in, 1)
	if idx == nil || idx.DType != ir.Int64 {
		return nil, c.Errorf("input I (indices) must be int64")
	}
	if idx.Len() != x.Len() {
		return nil, c.Errorf("I has dims %v but X has dims %v", idx.Dims, x.Dims)
	}
	out, err := unpoolDims(c, x.Dims)
	if err != nil {
		return nil, err
	}
	// Indices are flat positions in the default output (the input of the
	// MaxPool that made them); an explicit output_shape keeps each value at
	// the same coordinates in a possibly larger tensor.
	def := out
	if s := opt(in, 2); s != nil {
		out = s.Int64s()
		if len(out) != x.Rank() {
			return nil, c.Errorf("output_shape %v must have rank %d", out, x.Rank())
		}
	}
	if err := checkSize(c, out); err != nil {
		return nil, err
	}
	y := ir.NewTensor(x.DType, out)
	n, outStr := prod(def), ops.Strides(out)
	for i, j := range idx.I64() {
		if j < 0 || j >= n {
			return nil, c.Errorf("index %d out of range for the pooled input %v", j, def)
		}
		flat := int64(0)
		for ax := len(def) - 1; ax >= 0; ax-- {
			p := j % def[ax]
			j /= def[ax]
			if p >= out[ax] {
				return nil, c.Errorf("index %d falls outside output_shape %v", idx.I64()[i], out)
			}
			flat += p * outStr[ax]
		}
		y.SetFloat64At(flat, x.Float64At(int64(i)))
	}
	return []*ir.Tensor{y}, nil
}
