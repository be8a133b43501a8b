package layout

import (
	"sort"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

func init() {
	ops.Register(&ops.Op{Type: "Reshape", MinOpset: 5, Run: reshape, Infer: reshapeInfer})
	ops.Register(&ops.Op{Type: "Flatten", MinOpset: 1, Run: flatten, Infer: flattenInfer})
	ops.Register(&ops.Op{Type: "Squeeze", MinOpset: 1, Run: squeeze, Infer: squeezeInfer})
	ops.Register(&ops.Op{Type: "Unsqueeze", MinOpset: 1, Run: unsqueeze, Infer: unsqueezeInfer})
}

// view returns a tensor sharing t's data with new dims: reshapes move no
// bytes, and kernels never write their inputs.
func view(t *ir.Tensor, dims []int64) *ir.Tensor {
	v := *t
	v.Name = ""
	v.Dims = dims
	return &v
}

// reshapeDims resolves a Reshape shape (0 copies the input dim unless
// allowzero, -1 takes what is left) against concrete input dims.
func reshapeDims(errf func(string, ...any) error, in, shape []int64, allowzero bool) ([]int64, error) {
	total := prod(in)
	out := make([]int64, len(shape))
	neg := -1
	p := int64(1)
	for i, s := range shape {
		switch {
		case s == -1:
			if neg >= 0 {
				return nil, errf("shape %v has more than one -1", shape)
			}
			neg = i
			continue
		case s < -1:
			return nil, errf("shape %v has invalid dimension %d", shape, s)
		case s == 0 && !allowzero:
			if i >= len(in) {
				return nil, errf("shape %v: 0 at position %d copies an input dim, but the input %v has rank %d", shape, i, in, len(in))
			}
			s = in[i]
		case s == 0 && allowzero && containsInt(shape, -1):
			return nil, errf("shape %v: with allowzero=1, 0 and -1 cannot both appear", shape)
		}
		out[i] = s
		if s != 0 && p > (1<<62)/s {
			return nil, errf("shape %v overflows", shape)
		}
		p *= s
	}
	if neg >= 0 {
		if p == 0 || total%p != 0 {
			return nil, errf("cannot reshape input of shape %v (%d elements) to %v", in, total, shape)
		}
		out[neg] = total / p
		p = total
	}
	if p != total {
		return nil, errf("cannot reshape input of shape %v (%d elements) to %v (%d elements)", in, total, shape, p)
	}
	return out, nil
}

func containsInt(s []int64, v int64) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func reshape(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := input(c, in, 0, "data")
	if err != nil {
		return nil, err
	}
	st, err := input(c, in, 1, "shape")
	if err != nil {
		return nil, err
	}
	shape, err := intsOf(c, st, "shape")
	if err != nil {
		return nil, err
	}
	allowzero := c.Opset >= 14 && c.Int("allowzero", 0) != 0
	dims, err := reshapeDims(c.Errorf, x.Dims, shape, allowzero)
	if err != nil {
		return nil, err
	}
	return []*ir.Tensor{view(x, dims)}, nil
}

// factor splits a symbolic element count into a number and sorted symbols;
// ok is false when a dim is unknown.
func factor(s ir.Shape) (n int64, syms []string, ok bool) {
	n = 1
	for _, d := range s {
		switch {
		case d.Known():
			n *= d.Value
		case d.Param != "":
			syms = append(syms, d.Param)
		default:
			return 0, nil, false
		}
	}
	sort.Strings(syms)
	return n, syms, true
}

// solveDim finds the dim x with prod(known)*x = prod(total), symbolically.
func solveDim(total, known ir.Shape) ir.Dim {
	tn, ts, ok1 := factor(total)
	kn, ks, ok2 := factor(known)
	if !ok1 || !ok2 || kn == 0 || tn%kn != 0 {
		return ir.Unknown()
	}
	rest := append([]string(nil), ts...)
	for _, s := range ks {
		found := false
		for i, r := range rest {
			if r == s {
				rest = append(rest[:i], rest[i+1:]...)
				found = true
				break
			}
		}
		if !found {
			return ir.Unknown()
		}
	}
	ratio := tn / kn
	switch {
	case len(rest) == 0:
		return ir.D(ratio)
	case len(rest) == 1 && ratio == 1:
		return ir.Sym(rest[0])
	}
	return ir.Unknown()
}

func reshapeInfer(c *ops.InferCtx) error {
	t, err := c.Input(0)
	if err != nil {
		return err
	}
	allowzero := c.Opset >= 14 && c.Int("allowzero", 0) != 0
	v, ok := c.InputValue(1)
	if !ok {
		c.Out[0] = &ir.Type{DType: t.DType}
		if st, ok := ranked(c, 1); ok && len(st.Shape) == 1 && st.Shape[0].Known() {
			c.Out[0] = ir.TensorType(t.DType, unknownShape(int(st.Shape[0].Value)))
		}
		return nil
	}
	out := make(ir.Shape, len(v))
	neg := -1
	for i, d := range v {
		x, known := ops.DimValue(d)
		switch {
		case !known:
			out[i] = d // a symbol stays a symbol
		case x == -1:
			if neg >= 0 {
				return c.Errorf("shape %v has more than one -1", v)
			}
			neg = i
		case x < -1:
			return c.Errorf("shape %v has invalid dimension %d", v, x)
		case x == 0 && !allowzero:
			switch {
			case !t.HasShape:
				out[i] = ir.Unknown()
			case i < len(t.Shape):
				out[i] = t.Shape[i]
			default:
				return c.Errorf("shape %v: 0 at position %d copies an input dim, but the input %v has rank %d", v, i, t.Shape, len(t.Shape))
			}
		default:
			out[i] = ir.D(x)
		}
	}
	if t.HasShape {
		if in, ok := t.Shape.Concrete(); ok {
			if shape, ok := ops.ValueInts(v); ok {
				if _, err := reshapeDims(c.Errorf, in, shape, allowzero); err != nil {
					return err
				}
			}
		}
	}
	if neg >= 0 {
		out[neg] = ir.Unknown()
		if t.HasShape {
			rest := append(append(ir.Shape{}, out[:neg]...), out[neg+1:]...)
			out[neg] = solveDim(t.Shape, rest)
		}
	}
	c.Out[0] = ir.TensorType(t.DType, out)
	if iv, ok := c.InputValue(0); ok && len(out) <= 1 {
		c.OutValue[0] = iv
	}
	return nil
}

func flattenAxis(e attrGetter, r int) (int, error) {
	axis := e.Int("axis", 1)
	if axis < -int64(r) || axis > int64(r) {
		return 0, e.Errorf("axis %d out of range for rank %d", axis, r)
	}
	if axis < 0 {
		axis += int64(r)
	}
	return int(axis), nil
}

func flatten(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := input(c, in, 0, "input")
	if err != nil {
		return nil, err
	}
	axis, err := flattenAxis(c, x.Rank())
	if err != nil {
		return nil, err
	}
	return []*ir.Tensor{view(x, []int64{prod(x.Dims[:axis]), prod(x.Dims[axis:])})}, nil
}

func flattenInfer(c *ops.InferCtx) error {
	t, err := c.Input(0)
	if err != nil {
		return err
	}
	if !t.HasShape {
		c.Out[0] = ir.TensorType(t.DType, unknownShape(2))
		return nil
	}
	axis, err := flattenAxis(c, len(t.Shape))
	if err != nil {
		return err
	}
	c.Out[0] = ir.TensorType(t.DType, ir.Shape{dimProd(t.Shape[:axis]), dimProd(t.Shape[axis:])})
	return nil
}

// axesArg reads Squeeze/Unsqueeze axes: an attribute before opset 13, the
// optional input 1 from 13. present is false when no axes were given.
func axesArg(c *ops.Ctx, in []*ir.Tensor) (axes []int64, present bool, err error) {
	if c.Opset < 13 {
		axes = c.Ints("axes", nil)
		return axes, axes != nil, nil
	}
	t := opt(in, 1)
	if t == nil {
		return nil, false, nil
	}
	axes, err = intsOf(c, t, "axes")
	return axes, true, err
}

// axesInfer is axesArg at inference time; known is false when the axes
// input exists but its value is not known.
func axesInfer(c *ops.InferCtx) (axes []int64, present, known bool) {
	if c.Opset < 13 {
		axes = c.Ints("axes", nil)
		return axes, axes != nil, true
	}
	if !hasInput(c.Node, 1) {
		return nil, false, true
	}
	axes, known = c.InputInts(1)
	return axes, true, known
}

func squeezeDims(errf func(string, ...any) error, dims []int64, axes []int64, present bool) ([]int64, error) {
	drop := make([]bool, len(dims))
	if present {
		ax, err := normAxes(errf, axes, len(dims))
		if err != nil {
			return nil, err
		}
		for _, a := range ax {
			if dims[a] != 1 {
				return nil, errf("cannot squeeze axis %d of shape %v: its size is %d, not 1", a, dims, dims[a])
			}
			drop[a] = true
		}
	} else {
		for i, d := range dims {
			drop[i] = d == 1
		}
	}
	out := []int64{}
	for i, d := range dims {
		if !drop[i] {
			out = append(out, d)
		}
	}
	return out, nil
}

func squeeze(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := input(c, in, 0, "data")
	if err != nil {
		return nil, err
	}
	axes, present, err := axesArg(c, in)
	if err != nil {
		return nil, err
	}
	dims, err := squeezeDims(c.Errorf, x.Dims, axes, present)
	if err != nil {
		return nil, err
	}
	return []*ir.Tensor{view(x, dims)}, nil
}

func squeezeInfer(c *ops.InferCtx) error {
	t, err := c.Input(0)
	if err != nil {
		return err
	}
	if v, ok := c.InputValue(0); ok {
		c.OutValue[0] = v
	}
	axes, present, known := axesInfer(c)
	c.Out[0] = &ir.Type{DType: t.DType}
	if !t.HasShape {
		return nil
	}
	r := len(t.Shape)
	if !known {
		if at, ok := ranked(c, 1); ok && len(at.Shape) == 1 && at.Shape[0].Known() && at.Shape[0].Value <= int64(r) {
			c.Out[0] = ir.TensorType(t.DType, unknownShape(r-int(at.Shape[0].Value)))
		}
		return nil
	}
	drop := make([]bool, r)
	if present {
		ax, err := normAxes(c.Errorf, axes, r)
		if err != nil {
			return err
		}
		for _, a := range ax {
			if d := t.Shape[a]; d.Known() && d.Value != 1 {
				return c.Errorf("cannot squeeze axis %d of shape %v: its size is %d, not 1", a, t.Shape, d.Value)
			}
			drop[a] = true
		}
	} else {
		for i, d := range t.Shape {
			if !d.Known() {
				return nil // a symbol may or may not be 1: the rank is unknown
			}
			drop[i] = d.Value == 1
		}
	}
	out := ir.Shape{}
	for i, d := range t.Shape {
		if !drop[i] {
			out = append(out, d)
		}
	}
	c.Out[0] = ir.TensorType(t.DType, out)
	return nil
}

// unsqueezeShape inserts 1s at axes (normalized against the output rank).
func unsqueezeShape[D any](errf func(string, ...any) error, dims []D, axes []int64, one D) ([]D, error) {
	r := len(dims) + len(axes)
	ax, err := normAxes(errf, axes, r)
	if err != nil {
		return nil, err
	}
	isNew := make([]bool, r)
	for _, a := range ax {
		isNew[a] = true
	}
	out := make([]D, r)
	k := 0
	for i := range out {
		if isNew[i] {
			out[i] = one
		} else {
			out[i] = dims[k]
			k++
		}
	}
	return out, nil
}

func unsqueeze(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := input(c, in, 0, "data")
	if err != nil {
		return nil, err
	}
	axes, present, err := axesArg(c, in)
	if err != nil {
		return nil, err
	}
	if !present {
		return nil, c.Errorf("axes are required")
	}
	dims, err := unsqueezeShape(c.Errorf, x.Dims, axes, 1)
	if err != nil {
		return nil, err
	}
	return []*ir.Tensor{view(x, dims)}, nil
}

func unsqueezeInfer(c *ops.InferCtx) error {
	t, err := c.Input(0)
	if err != nil {
		return err
	}
	if v, ok := c.InputValue(0); ok {
		c.OutValue[0] = v
	}
	axes, present, known := axesInfer(c)
	if present && known && !t.HasShape {
		c.Out[0] = &ir.Type{DType: t.DType}
		return nil
	}
	if !present {
		return c.Errorf("axes are required")
	}
	if !known {
		c.Out[0] = &ir.Type{DType: t.DType}
		if at, ok := ranked(c, 1); ok && t.HasShape && len(at.Shape) == 1 && at.Shape[0].Known() {
			c.Out[0] = ir.TensorType(t.DType, unknownShape(len(t.Shape)+int(at.Shape[0].Value)))
		}
		return nil
	}
	s, err := unsqueezeShape(c.Errorf, t.Shape, axes, ir.D(1))
	if err != nil {
		return err
	}
	c.Out[0] = ir.TensorType(t.DType, s)
	return nil
}
