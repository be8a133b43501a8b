package layout

import (
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

func init() {
	ops.Register(&ops.Op{Type: "Pad", MinOpset: 2, Run: pad, Infer: padInfer})
}

func padMode(e attrGetter, opset int64) (string, error) {
	m := e.String("mode", "constant")
	switch m {
	case "constant", "reflect", "edge":
		return m, nil
	case "wrap":
		if opset >= 19 {
			return m, nil
		}
	}
	return "", e.Errorf("mode %q is not supported at opset %d", m, opset)
}

// fullPads expands pads given for some axes to begin/end pads for all r axes.
func fullPads(errf func(string, ...any) error, pads, axes []int64, r int) (begin, end []int64, err error) {
	if axes == nil {
		for i := 0; i < r; i++ {
			axes = append(axes, int64(i))
		}
	}
	if len(pads) != 2*len(axes) {
		return nil, nil, errf("pads %v needs %d entries for %d axes", pads, 2*len(axes), len(axes))
	}
	ax, err := normAxes(errf, axes, r)
	if err != nil {
		return nil, nil, err
	}
	begin, end = make([]int64, r), make([]int64, r)
	for i, k := range ax {
		begin[k], end[k] = pads[i], pads[len(ax)+i]
	}
	return begin, end, nil
}

// padSource maps an output coordinate (shifted into input space) to the
// input coordinate it copies, or -1 for the constant.
func padSource(mode string, i, d int64) int64 {
	if i >= 0 && i < d {
		return i
	}
	switch mode {
	case "edge":
		return max(0, min(i, d-1))
	case "wrap":
		return ((i % d) + d) % d
	case "reflect":
		if d == 1 {
			return 0
		}
		p := 2 * (d - 1)
		i = ((i % p) + p) % p
		if i >= d {
			i = p - i
		}
		return i
	}
	return -1
}

func pad(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := input(c, in, 0, "data")
	if err != nil {
		return nil, err
	}
	mode, err := padMode(c, c.Opset)
	if err != nil {
		return nil, err
	}
	value := ir.NewTensor(x.DType, nil) // zero (empty string) by default
	var pads, axes []int64
	if c.Opset < 11 {
		pads = c.Ints("pads", nil)
		if pads == nil {
			return nil, c.Errorf("attribute pads is required")
		}
		if x.DType == ir.String {
			return nil, c.Errorf("string data needs opset 11 or later")
		}
		value.SetFloat64At(0, float64(c.Float("value", 0)))
	} else {
		pt, err := input(c, in, 1, "pads")
		if err != nil {
			return nil, err
		}
		if pads, err = intsOf(c, pt, "pads"); err != nil {
			return nil, err
		}
		if v := opt(in, 2); v != nil && mode == "constant" {
			if v.DType != x.DType || v.Len() != 1 {
				return nil, c.Errorf("constant_value must be a %s scalar, got %s%v", x.DType, v.DType, v.Dims)
			}
			value = v
		}
		if a := opt(in, 3); a != nil {
			if axes, err = intsOf(c, a, "axes"); err != nil {
				return nil, err
			}
		}
	}
	begin, end, err := fullPads(c.Errorf, pads, axes, x.Rank())
	if err != nil {
		return nil, err
	}
	out, err := padCore(c, x, begin, end, mode, value)
	if err != nil {
		return nil, err
	}
	return []*ir.Tensor{out}, nil
}

// padCore pads (or, with negative pads, crops) x by begin/end per axis.
func padCore(c *ops.Ctx, x *ir.Tensor, begin, end []int64, mode string, value *ir.Tensor) (*ir.Tensor, error) {
	r := x.Rank()
	pads := append(append([]int64{}, begin...), end...)
	dims := make([]int64, r)
	src := make([][]int64, r) // per axis: output coordinate -> input coordinate or -1
	for k, d := range x.Dims {
		if max(begin[k], end[k]) > maxElements || min(begin[k], end[k]) < -maxElements {
			return nil, c.Errorf("pads %v are out of range", pads)
		}
		dims[k] = d + begin[k] + end[k]
		if dims[k] < 0 {
			return nil, c.Errorf("pads %v remove more than axis %d (size %d) holds", pads, k, d)
		}
		if d == 0 && dims[k] > 0 && mode != "constant" {
			return nil, c.Errorf("cannot %s-pad axis %d of size 0", mode, k)
		}
	}
	out, err := newOut(c, x.DType, dims)
	if err != nil {
		return nil, err
	}
	for k, d := range x.Dims {
		src[k] = make([]int64, dims[k])
		for i := range src[k] {
			src[k][i] = padSource(mode, int64(i)-begin[k], d)
		}
	}
	zero := rawZero(value, 0) // the output starts zeroed: no need to write zeros
	xs := ops.Strides(x.Dims)
	n := out.Len()
	if r == 0 {
		copyElem(out, 0, x, 0)
		return out, nil
	}
	// The last axis is a few runs: consecutive input elements (copied with
	// copyRun) and border elements (copied or filled one by one).
	inner := dims[r-1]
	type run struct{ at, src, n int64 }
	var runs []run
	for j := int64(0); j < inner; j++ {
		s := src[r-1][j]
		if k := len(runs) - 1; k >= 0 && s >= 0 && runs[k].src >= 0 && runs[k].src+runs[k].n == s {
			runs[k].n++
			continue
		}
		runs = append(runs, run{j, s, 1})
	}
	coord := make([]int64, r)
	for o := int64(0); o < n; o += inner {
		base, inside := int64(0), true
		for k := 0; k < r-1; k++ {
			s := src[k][coord[k]]
			if s < 0 {
				inside = false
				break
			}
			base += s * xs[k]
		}
		for _, ru := range runs {
			switch {
			case inside && ru.src >= 0:
				copyRun(out, o+ru.at, x, base+ru.src*xs[r-1], ru.n)
			case !zero:
				for j := int64(0); j < ru.n; j++ {
					copyElem(out, o+ru.at+j, value, 0)
				}
			}
		}
		if r > 1 {
			nextCoord(coord[:r-1], dims[:r-1])
		}
	}
	return out, nil
}

func padInfer(c *ops.InferCtx) error {
	t, err := c.Input(0)
	if err != nil {
		return err
	}
	if _, err := padMode(c, c.Opset); err != nil {
		return err
	}
	c.Out[0] = &ir.Type{DType: t.DType}
	if !t.HasShape {
		return nil
	}
	r := len(t.Shape)
	var pads, axes []int64
	known := true
	if c.Opset < 11 {
		pads = c.Ints("pads", nil)
	} else {
		pads, known = c.InputInts(1)
		if hasInput(c.Node, 3) {
			var ok bool
			axes, ok = c.InputInts(3)
			known = known && ok
		}
	}
	if !known || pads == nil {
		c.Out[0] = ir.TensorType(t.DType, unknownShape(r))
		return nil
	}
	begin, end, err := fullPads(c.Errorf, pads, axes, r)
	if err != nil {
		return err
	}
	s := make(ir.Shape, r)
	for k, d := range t.Shape {
		switch {
		case begin[k] == 0 && end[k] == 0:
			s[k] = d
		case max(begin[k], end[k]) > maxElements || min(begin[k], end[k]) < -maxElements:
			return c.Errorf("pads %v are out of range", pads)
		case d.Known():
			if v := d.Value + begin[k] + end[k]; v >= 0 {
				s[k] = ir.D(v)
			} else {
				return c.Errorf("pads %v remove more than axis %d (size %d) holds", pads, k, d.Value)
			}
		default:
			s[k] = ir.Unknown()
		}
	}
	c.Out[0] = ir.TensorType(t.DType, s)
	return nil
}

func init() {
	ops.Register(&ops.Op{Type: "CenterCropPad", MinOpset: 18, Run: centerCropPad, Infer: centerCropPadInfer})
}

// cropPads turns a target size per axis into centered begin/end pads
// (negative where the input is cropped), as ONNX's reference computes them.
func cropPads(errf func(string, ...any) error, in []int64, shape, axes []int64) (begin, end []int64, err error) {
	r := len(in)
	if axes == nil {
		for i := 0; i < r; i++ {
			axes = append(axes, int64(i))
		}
	}
	if len(shape) != len(axes) {
		return nil, nil, errf("shape %v has %d entries for %d axes", shape, len(shape), len(axes))
	}
	ax, err := normAxes(errf, axes, r)
	if err != nil {
		return nil, nil, err
	}
	begin, end = make([]int64, r), make([]int64, r)
	for i, k := range ax {
		t, d := shape[i], in[k]
		if t < 0 || t > maxElements {
			return nil, nil, errf("shape %v has an invalid size %d", shape, t)
		}
		if d > t { // crop: start at (d-t)/2
			begin[k] = -((d - t) / 2)
		} else { // pad: (t-d)/2 before
			begin[k] = (t - d) / 2
		}
		end[k] = t - d - begin[k]
	}
	return begin, end, nil
}

func centerCropPad(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := input(c, in, 0, "input_data")
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
	begin, end, err := cropPads(c.Errorf, x.Dims, shape, c.Ints("axes", nil))
	if err != nil {
		return nil, err
	}
	out, err := padCore(c, x, begin, end, "constant", ir.NewTensor(x.DType, nil))
	if err != nil {
		return nil, err
	}
	return []*ir.Tensor{out}, nil
}

func centerCropPadInfer(c *ops.InferCtx) error {
	t, err := c.Input(0)
	if err != nil {
		return err
	}
	c.Out[0] = &ir.Type{DType: t.DType}
	if !t.HasShape {
		return nil
	}
	r := len(t.Shape)
	s := append(ir.Shape{}, t.Shape...)
	axes := c.Ints("axes", nil)
	ax := make([]int, r)
	for i := range ax {
		ax[i] = i
	}
	if axes != nil {
		if ax, err = normAxes(c.Errorf, axes, r); err != nil {
			return err
		}
	}
	v, ok := c.InputValue(1)
	for i, k := range ax {
		switch {
		case ok && i < len(v):
			s[k] = v[i]
		default:
			s[k] = ir.Unknown()
		}
	}
	if ok && len(v) != len(ax) {
		return c.Errorf("shape %v has %d entries for %d axes", v, len(v), len(ax))
	}
	c.Out[0] = ir.TensorType(t.DType, s)
	return nil
}
