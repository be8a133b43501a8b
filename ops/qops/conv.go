package qops

import (
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

func init() {
	ops.Register(&ops.Op{Type: "ConvInteger", MinOpset: 10, Run: convInteger, Infer: convIntegerInfer})
	ops.Register(&ops.Op{Type: "QLinearConv", MinOpset: 10, Run: qlinearConv, Infer: qlinearConvInfer})
}

// convGeom is the geometry of an N-D convolution (ONNX Conv's attributes
// resolved against concrete input and weight shapes).
type convGeom struct {
	n, c, m, group int64   // batch, input channels, output channels, groups
	in, k, out     []int64 // spatial sizes of input, kernel and output
	strides, dils  []int64
	padBegin       []int64
}

type attrGetter interface {
	Int(name string, def int64) int64
	Ints(name string, def []int64) []int64
	String(name string, def string) string
	Errorf(format string, args ...any) error
}

// convAttrs reads and checks the attributes for nsp spatial dims, given the
// kernel's spatial sizes (from W when known).
func convAttrs(a attrGetter, nsp int, wk []int64) (kernel, strides, dils, pads []int64, autoPad string, group int64, err error) {
	ones := func() []int64 {
		v := make([]int64, nsp)
		for i := range v {
			v[i] = 1
		}
		return v
	}
	kernel = a.Ints("kernel_shape", wk)
	strides = a.Ints("strides", ones())
	dils = a.Ints("dilations", ones())
	pads = a.Ints("pads", make([]int64, 2*nsp))
	autoPad = a.String("auto_pad", "NOTSET")
	group = a.Int("group", 1)
	switch {
	case len(kernel) != nsp:
		err = a.Errorf("kernel_shape %v does not have %d spatial dims", kernel, nsp)
	case len(strides) != nsp || len(dils) != nsp || len(pads) != 2*nsp:
		err = a.Errorf("strides %v, dilations %v, pads %v do not fit %d spatial dims", strides, dils, pads, nsp)
	case group < 1:
		err = a.Errorf("group %d must be positive", group)
	}
	if err != nil {
		return
	}
	for i := 0; i < nsp; i++ {
		if strides[i] < 1 || dils[i] < 1 || kernel[i] < 1 || pads[i] < 0 || pads[i+nsp] < 0 {
			err = a.Errorf("strides %v, dilations %v, kernel_shape %v must be positive and pads %v non-negative",
				strides, dils, kernel, pads)
			return
		}
		if wk != nil && kernel[i] != wk[i] {
			err = a.Errorf("kernel_shape %v differs from the weight's spatial dims %v", kernel, wk)
			return
		}
	}
	switch autoPad {
	case "NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER":
	default:
		err = a.Errorf("auto_pad %q: want NOTSET, VALID, SAME_UPPER or SAME_LOWER", autoPad)
	}
	return
}

// convOutDim computes one spatial output size and the padding before it.
func convOutDim(in, k, s, d, pb, pe int64, autoPad string) (out, begin int64) {
	ek := (k-1)*d + 1 // the dilated kernel's extent
	switch autoPad {
	case "VALID":
		if in < ek {
			return 0, 0
		}
		return (in-ek)/s + 1, 0
	case "SAME_UPPER", "SAME_LOWER":
		out = (in + s - 1) / s
		total := max(0, (out-1)*s+ek-in)
		if autoPad == "SAME_UPPER" {
			return out, total / 2
		}
		return out, total - total/2
	}
	if in+pb+pe < ek {
		return 0, pb
	}
	return (in+pb+pe-ek)/s + 1, pb
}

// newConvGeom resolves the geometry for x [N, C, D1..] and w [M, C/group, k1..].
func newConvGeom(c *ops.Ctx, x, w []int64) (*convGeom, error) {
	if len(x) < 3 || len(w) != len(x) {
		return nil, c.Errorf("conv input %v and weight %v: want [N, C, spatial...] and a weight of the same rank", x, w)
	}
	nsp := len(x) - 2
	kernel, strides, dils, pads, autoPad, group, err := convAttrs(c, nsp, w[2:])
	if err != nil {
		return nil, err
	}
	g := &convGeom{n: x[0], c: x[1], m: w[0], group: group, in: x[2:], k: kernel, strides: strides, dils: dils}
	if g.c != w[1]*group || g.m%group != 0 {
		return nil, c.Errorf("input has %d channels and weight %v with group %d: want C = weight[1]*group and group dividing M",
			g.c, w, group)
	}
	for i := 0; i < nsp; i++ {
		o, b := convOutDim(g.in[i], kernel[i], strides[i], dils[i], pads[i], pads[i+nsp], autoPad)
		if o < 1 {
			return nil, c.Errorf("input %v is smaller than the dilated kernel %v with pads %v", x, kernel, pads)
		}
		g.out = append(g.out, o)
		g.padBegin = append(g.padBegin, b)
	}
	return g, nil
}

func (g *convGeom) outDims() []int64 { return append([]int64{g.n, g.m}, g.out...) }

// convInt32 is a plain N-D grouped convolution in int64 of x - xzp with
// w - wzp[m] (padding contributes zero, i.e. the zero point's value), plus
// bias[m]; it returns the sums wrapped to int32, as ONNX's int32 outputs are.
func convInt32(g *convGeom, x, w *ir.Tensor, xzp int64, wzp func(m int64) int64, bias func(m int64) int64) []int32 {
	nsp := len(g.in)
	outSp, kSp, inSp := int64(1), int64(1), int64(1)
	for i := 0; i < nsp; i++ {
		outSp *= g.out[i]
		kSp *= g.k[i]
		inSp *= g.in[i]
	}
	cg, mg := g.c/g.group, g.m/g.group
	res := make([]int32, g.n*g.m*outSp)
	oc, kc, ic := make([]int64, nsp), make([]int64, nsp), make([]int64, nsp)
	for n := int64(0); n < g.n; n++ {
		for m := int64(0); m < g.m; m++ {
			grp := m / mg
			zw := wzp(m)
			for o := int64(0); o < outSp; o++ {
				unflatten(o, g.out, oc)
				acc := bias(m)
				for k := int64(0); k < kSp; k++ {
					unflatten(k, g.k, kc)
					inside := true
					for i := 0; i < nsp; i++ {
						ic[i] = oc[i]*g.strides[i] - g.padBegin[i] + kc[i]*g.dils[i]
						if ic[i] < 0 || ic[i] >= g.in[i] {
							inside = false
							break
						}
					}
					if !inside {
						continue
					}
					xoff := flatten(ic, g.in)
					for cc := int64(0); cc < cg; cc++ {
						ch := grp*cg + cc
						xv := x.Int64At((n*g.c+ch)*inSp+xoff) - xzp
						wv := w.Int64At((m*cg+cc)*kSp+k) - zw
						acc += xv * wv
					}
				}
				res[(n*g.m+m)*outSp+o] = int32(acc)
			}
		}
	}
	return res
}

// unflatten writes the row-major coordinates of flat index i in dims into c.
func unflatten(i int64, dims, c []int64) {
	for d := len(dims) - 1; d >= 0; d-- {
		c[d] = i % dims[d]
		i /= dims[d]
	}
}

func flatten(c, dims []int64) int64 {
	var i int64
	for d := range dims {
		i = i*dims[d] + c[d]
	}
	return i
}

// perChannel reads a zero point or scale that is one value or one per
// output channel (length M).
func perChannel(c *ops.Ctx, t *ir.Tensor, what string, m int64) (func(int64) int64, func(int64) float64, error) {
	if t == nil {
		return func(int64) int64 { return 0 }, func(int64) float64 { return 0 }, nil
	}
	switch {
	case t.Len() == 1:
		return func(int64) int64 { return t.Int64At(0) }, func(int64) float64 { return t.Float64At(0) }, nil
	case t.Rank() == 1 && t.Dims[0] == m:
		return t.Int64At, t.Float64At, nil
	}
	return nil, nil, c.Errorf("%s has shape %v, want a scalar or [%d] (one per output channel)", what, t.Dims, m)
}

// scalarParam reads a per-tensor zero point or scale (a scalar or [1]).
func scalarParam(c *ops.Ctx, t *ir.Tensor, what string) error {
	if t != nil && t.Len() != 1 {
		return c.Errorf("%s has shape %v, want a scalar (per-tensor)", what, t.Dims)
	}
	return nil
}

func convOperands(c *ops.Ctx, in []*ir.Tensor, ix, ixz, iw, iwz int) (x, w *ir.Tensor, g *convGeom, xzp int64, wzp func(int64) int64, err error) {
	if x, err = input(c, in, ix, "x"); err != nil {
		return
	}
	if w, err = input(c, in, iw, "w"); err != nil {
		return
	}
	if !is8bit(x.DType) || !is8bit(w.DType) {
		err = c.Errorf("x and w are %v and %v, want int8 or uint8", x.DType, w.DType)
		return
	}
	if g, err = newConvGeom(c, x.Dims, w.Dims); err != nil {
		return
	}
	if _, err = newOut(c, ir.Int32, g.outDims()); err != nil {
		return
	}
	xz, err := optional(c, in, ixz, "x_zero_point")
	if err != nil {
		return
	}
	wz, err := optional(c, in, iwz, "w_zero_point")
	if err != nil {
		return
	}
	if xz != nil && xz.DType != x.DType || wz != nil && wz.DType != w.DType {
		err = c.Errorf("zero points must have their operand's type (x %v, w %v)", x.DType, w.DType)
		return
	}
	if err = scalarParam(c, xz, "x_zero_point"); err != nil {
		return
	}
	if xz != nil {
		xzp = xz.Int64At(0)
	}
	wzp, _, err = perChannel(c, wz, "w_zero_point", g.m)
	return
}

// ConvInteger: int32 convolution of x - x_zero_point (per tensor) with
// w - w_zero_point (per tensor or per output channel).
func convInteger(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, w, g, xzp, wzp, err := convOperands(c, in, 0, 2, 1, 3)
	if err != nil {
		return nil, err
	}
	y := ir.NewTensor(ir.Int32, g.outDims())
	copy(y.I32(), convInt32(g, x, w, xzp, wzp, func(int64) int64 { return 0 }))
	return []*ir.Tensor{y}, nil
}

// QLinearConv: y = saturate(round_half_even(acc * (x_scale*w_scale[m]/y_scale) + y_zero_point))
// with acc the int32 convolution plus the int32 bias B. The scale ratio is
// computed in the scales' type, the rest in float64 (ONNX's reference).
func qlinearConv(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, w, g, xzp, wzp, err := convOperands(c, in, 0, 2, 3, 5)
	if err != nil {
		return nil, err
	}
	var sc [3]*ir.Tensor
	for i, idx := range []int{1, 4, 6} {
		if sc[i], err = input(c, in, idx, [...]string{"x_scale", "w_scale", "y_scale"}[i]); err != nil {
			return nil, err
		}
		if d := sc[i].DType; d != ir.Float32 && d != ir.Float16 && d != ir.BFloat16 {
			return nil, c.Errorf("scale input %d is %v, want float32, float16 or bfloat16", idx, d)
		}
	}
	if err := scalarParam(c, sc[0], "x_scale"); err != nil {
		return nil, err
	}
	if err := scalarParam(c, sc[2], "y_scale"); err != nil {
		return nil, err
	}
	_, wscale, err := perChannel(c, sc[1], "w_scale", g.m)
	if err != nil {
		return nil, err
	}
	yzpT, err := optional(c, in, 7, "y_zero_point")
	if err != nil {
		return nil, err
	}
	if err := scalarParam(c, yzpT, "y_zero_point"); err != nil {
		return nil, err
	}
	outType, z := x.DType, int64(0)
	if yzpT != nil {
		if !is8bit(yzpT.DType) {
			return nil, c.Errorf("y_zero_point is %v, want int8 or uint8", yzpT.DType)
		}
		outType, z = yzpT.DType, yzpT.Int64At(0)
	}
	bias := func(int64) int64 { return 0 }
	bT, err := optional(c, in, 8, "B")
	if err != nil {
		return nil, err
	}
	if bT != nil {
		if bT.DType != ir.Int32 || bT.Rank() != 1 || bT.Dims[0] != g.m {
			return nil, c.Errorf("bias B is %v%v, want int32[%d]", bT.DType, bT.Dims, g.m)
		}
		bias = bT.Int64At
	}
	acc := convInt32(g, x, w, xzp, wzp, bias)
	y := ir.NewTensor(outType, g.outDims())
	ar := arithFor(sc[0].DType)
	xs, ysc := sc[0].Float64At(0), sc[2].Float64At(0)
	lo, hi := outType.IntRange()
	perM := int64(len(acc)) / max(1, g.n*g.m)
	for i, v := range acc {
		m := (int64(i) / perM) % g.m
		mult := ar.div(ar.mul(xs, wscale(m)), ysc)
		y.SetInt64At(int64(i), roundSat(float64(float64(v)*mult)+float64(z), lo, hi, z))
	}
	return []*ir.Tensor{y}, nil
}

// convInfer gives [N, M, spatial...], symbolic N kept, spatial sizes when known.
func convInfer(c *ops.InferCtx, ix, iw int, dt ir.DType) error {
	x, err := c.Input(ix)
	if err != nil {
		return err
	}
	w, err := c.Input(iw)
	if err != nil {
		return err
	}
	if !x.HasShape || !w.HasShape {
		c.Out[0] = &ir.Type{Kind: ir.KindTensor, DType: dt}
		return nil
	}
	if len(x.Shape) < 3 || len(w.Shape) != len(x.Shape) {
		return c.Errorf("conv input %v and weight %v: want [N, C, spatial...] and a weight of the same rank", x.Shape, w.Shape)
	}
	nsp := len(x.Shape) - 2
	var wk []int64
	if k, ok := w.Shape[2:].Concrete(); ok {
		wk = k
	} else if !c.Has("kernel_shape") {
		out := ir.Shape{x.Shape[0], w.Shape[0]}
		for i := 0; i < nsp; i++ {
			out = append(out, ir.Unknown())
		}
		c.Out[0] = ir.TensorType(dt, out)
		return nil
	}
	kernel, strides, dils, pads, autoPad, _, err := convAttrs(c, nsp, wk)
	if err != nil {
		return err
	}
	out := ir.Shape{x.Shape[0], w.Shape[0]}
	for i := 0; i < nsp; i++ {
		d := x.Shape[2+i]
		if !d.Known() {
			out = append(out, ir.Unknown())
			continue
		}
		o, _ := convOutDim(d.Value, kernel[i], strides[i], dils[i], pads[i], pads[i+nsp], autoPad)
		if o < 1 {
			return c.Errorf("input %v is smaller than the dilated kernel %v", x.Shape, kernel)
		}
		out = append(out, ir.D(o))
	}
	c.Out[0] = ir.TensorType(dt, out)
	return nil
}

func convIntegerInfer(c *ops.InferCtx) error { return convInfer(c, 0, 1, ir.Int32) }

func qlinearConvInfer(c *ops.InferCtx) error {
	x, err := c.Input(0)
	if err != nil {
		return err
	}
	dt := x.DType
	if t := inType(c, 7); t != nil {
		dt = t.DType
	}
	return convInfer(c, 0, 3, dt)
}
