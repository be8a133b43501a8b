package layout

import (
	"math"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

func init() {
	ops.Register(&ops.Op{Type: "Slice", MinOpset: 1, Run: slice, Infer: sliceInfer})
}

// sliceArgs are Slice's starts, ends, axes and steps (axes and steps nil
// when absent): attributes before opset 10, inputs 1..4 after.
type sliceArgs struct{ starts, ends, axes, steps []int64 }

// sliceRange clamps one axis's start/end as ONNX specifies and returns the
// first index read and the number of elements.
func sliceRange(start, end, step, dim int64) (first, n int64) {
	if dim == 0 {
		return 0, 0
	}
	if start < 0 {
		start += dim
	}
	if end < 0 {
		end += dim
	}
	if step > 0 {
		start = max(0, min(start, dim))
		end = max(0, min(end, dim))
		if end <= start {
			return start, 0
		}
		return start, (end-start-1)/step + 1
	}
	start = max(0, min(start, dim-1))
	end = max(-1, min(end, dim-1))
	if start <= end {
		return start, 0
	}
	if step == math.MinInt64 {
		return start, 1
	}
	return start, (start-end-1)/-step + 1
}

// perAxis expands sliceArgs to one (start, end, step) per axis of rank r;
// sliced[k] is false for axes the node does not slice.
func (a sliceArgs) perAxis(errf func(string, ...any) error, r int) (starts, ends, steps []int64, sliced []bool, err error) {
	if len(a.ends) != len(a.starts) {
		return nil, nil, nil, nil, errf("starts %v and ends %v differ in length", a.starts, a.ends)
	}
	axes := a.axes
	if axes == nil {
		if len(a.starts) > r {
			return nil, nil, nil, nil, errf("%d starts for an input of rank %d", len(a.starts), r)
		}
		for i := range a.starts {
			axes = append(axes, int64(i))
		}
	}
	if len(axes) != len(a.starts) {
		return nil, nil, nil, nil, errf("axes %v and starts %v differ in length", axes, a.starts)
	}
	if a.steps != nil && len(a.steps) != len(a.starts) {
		return nil, nil, nil, nil, errf("steps %v and starts %v differ in length", a.steps, a.starts)
	}
	ax, err := normAxes(errf, axes, r)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	starts, ends, steps = make([]int64, r), make([]int64, r), make([]int64, r)
	sliced = make([]bool, r)
	for k := range steps {
		starts[k], ends[k], steps[k] = 0, math.MaxInt64, 1
	}
	for i, k := range ax {
		starts[k], ends[k], sliced[k] = a.starts[i], a.ends[i], true
		if a.steps != nil {
			if a.steps[i] == 0 {
				return nil, nil, nil, nil, errf("steps %v has a 0", a.steps)
			}
			steps[k] = a.steps[i]
		}
	}
	return starts, ends, steps, sliced, nil
}

func sliceKernelArgs(c *ops.Ctx, in []*ir.Tensor) (sliceArgs, error) {
	if c.Opset < 10 {
		a := sliceArgs{starts: c.Ints("starts", nil), ends: c.Ints("ends", nil), axes: c.Ints("axes", nil)}
		if a.starts == nil || a.ends == nil {
			return a, c.Errorf("attributes starts and ends are required")
		}
		return a, nil
	}
	var a sliceArgs
	for i, p := range []*[]int64{&a.starts, &a.ends, &a.axes, &a.steps} {
		name := [...]string{"starts", "ends", "axes", "steps"}[i]
		t := opt(in, i+1)
		if t == nil {
			if i < 2 {
				return a, c.Errorf("required input %s is missing", name)
			}
			continue
		}
		v, err := intsOf(c, t, name)
		if err != nil {
			return a, err
		}
		*p = v
	}
	return a, nil
}

func slice(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := input(c, in, 0, "data")
	if err != nil {
		return nil, err
	}
	a, err := sliceKernelArgs(c, in)
	if err != nil {
		return nil, err
	}
	starts, ends, steps, _, err := a.perAxis(c.Errorf, x.Rank())
	if err != nil {
		return nil, err
	}
	st := ops.Strides(x.Dims)
	dims := make([]int64, x.Rank())
	strides := make([]int64, x.Rank())
	base := int64(0)
	for k, d := range x.Dims {
		first, n := sliceRange(starts[k], ends[k], steps[k], d)
		dims[k] = n
		strides[k] = steps[k] * st[k]
		base += first * st[k]
	}
	out, err := newOut(c, x.DType, dims)
	if err != nil {
		return nil, err
	}
	stridedCopy(out, x, dims, strides, base)
	return []*ir.Tensor{out}, nil
}

// sliceInferArgs returns the args when all are known at build time.
func sliceInferArgs(c *ops.InferCtx) (a sliceArgs, known bool) {
	if c.Opset < 10 {
		return sliceArgs{starts: c.Ints("starts", nil), ends: c.Ints("ends", nil), axes: c.Ints("axes", nil)}, true
	}
	known = true
	for i, p := range []*[]int64{&a.starts, &a.ends, &a.axes, &a.steps} {
		if !hasInput(c.Node, i+1) {
			continue
		}
		v, ok := c.InputInts(i + 1)
		if !ok {
			known = false
			continue
		}
		if v == nil {
			v = []int64{}
		}
		*p = v
	}
	return a, known
}

func sliceInfer(c *ops.InferCtx) error {
	t, err := c.Input(0)
	if err != nil {
		return err
	}
	c.Out[0] = &ir.Type{DType: t.DType}
	if !t.HasShape {
		return nil
	}
	r := len(t.Shape)
	a, known := sliceInferArgs(c)
	if !known {
		// Axes known: other axes keep their dims; else only the rank is known.
		out := unknownShape(r)
		if a.axes != nil || !hasInput(c.Node, 3) {
			var axes []int64 = a.axes
			if axes == nil {
				if ss, ok := ranked(c, 1); ok && len(ss.Shape) == 1 && ss.Shape[0].Known() {
					for i := int64(0); i < ss.Shape[0].Value; i++ {
						axes = append(axes, i)
					}
				} else {
					c.Out[0] = ir.TensorType(t.DType, out)
					return nil
				}
			}
			copy(out, t.Shape)
			if ax, err := normAxes(c.Errorf, axes, r); err == nil {
				for _, k := range ax {
					out[k] = ir.Unknown()
				}
			}
		}
		c.Out[0] = ir.TensorType(t.DType, out)
		return nil
	}
	starts, ends, steps, sliced, err := a.perAxis(c.Errorf, r)
	if err != nil {
		return err
	}
	out := make(ir.Shape, r)
	for k, d := range t.Shape {
		switch {
		case !sliced[k]:
			out[k] = d
		case d.Known():
			_, n := sliceRange(starts[k], ends[k], steps[k], d.Value)
			out[k] = ir.D(n)
		case steps[k] == 1 && starts[k] == 0 && ends[k] >= math.MaxInt32:
			out[k] = d // [0:] of a symbolic dim is the dim
		default:
			out[k] = ir.Unknown()
		}
	}
	c.Out[0] = ir.TensorType(t.DType, out)
	if v, ok := c.InputValue(0); ok && r == 1 {
		first, n := sliceRange(starts[0], ends[0], steps[0], int64(len(v)))
		ov := make(ir.Shape, n)
		for i := range ov {
			ov[i] = v[first+int64(i)*steps[0]]
		}
		c.OutValue[0] = ov
	}
	return nil
}
