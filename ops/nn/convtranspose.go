package nn

import (
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

func init() {
	ops.Register(&ops.Op{Type: "ConvTranspose", MinOpset: 1, Run: convTranspose, Infer: inferConvTranspose})
}

// convTParams validates X [N, C, in...] and W [C, M/group, k...] (-1 where
// unknown) and resolves the geometry: g.in is the input's spatial size,
// g.out the output's, g.padB the begin pads.
func convTParams(a attrGetter, xd, wd []int64) (*geom, int64, error) {
	if len(xd) < 3 {
		return nil, 0, a.Errorf("X has rank %d, want at least 3 (N, C, spatial...)", len(xd))
	}
	if len(wd) != len(xd) {
		return nil, 0, a.Errorf("W has rank %d, want %d like X", len(wd), len(xd))
	}
	r := len(xd) - 2
	ones := make([]int64, r)
	for i := range ones {
		ones[i] = 1
	}
	group := a.Int("group", 1)
	ks := a.Ints("kernel_shape", nil)
	stride := a.Ints("strides", ones)
	dil := a.Ints("dilations", ones)
	pads := a.Ints("pads", make([]int64, 2*r))
	outPad := a.Ints("output_padding", make([]int64, r))
	outShape := a.Ints("output_shape", nil)
	autoPad := a.String("auto_pad", "NOTSET")
	if err := a.Err(); err != nil {
		return nil, 0, err
	}
	if group < 1 {
		return nil, 0, a.Errorf("group %d must be at least 1", group)
	}
	if c := xd[1]; c >= 0 && wd[0] >= 0 && c != wd[0] {
		return nil, 0, a.Errorf("X has %d channels but W has %d input channels", c, wd[0])
	}
	if c := wd[0]; c >= 0 && c%group != 0 {
		return nil, 0, a.Errorf("W has %d input channels, not divisible by group %d", c, group)
	}
	kernel := append([]int64(nil), wd[2:]...)
	if ks != nil {
		if len(ks) != r {
			return nil, 0, a.Errorf("kernel_shape %v: want %d values", ks, r)
		}
		for i, k := range ks {
			if kernel[i] >= 0 && kernel[i] != k {
				return nil, 0, a.Errorf("kernel_shape %v does not match W dims %v", ks, wd)
			}
			kernel[i] = k
		}
	}
	if len(outShape) == r+2 {
		outShape = outShape[2:]
	}
	for name, v := range map[string][]int64{"strides": stride, "dilations": dil, "output_padding": outPad} {
		if len(v) != r {
			return nil, 0, a.Errorf("%s %v: want %d values", name, v, r)
		}
	}
	if len(pads) != 2*r {
		return nil, 0, a.Errorf("pads %v: want %d values", pads, 2*r)
	}
	if outShape != nil && len(outShape) != r {
		return nil, 0, a.Errorf("output_shape %v: want %d values", outShape, r)
	}
	for _, o := range outShape {
		if o < 0 {
			return nil, 0, a.Errorf("output_shape %v must not be negative", outShape)
		}
	}
	switch autoPad {
	case "NOTSET", "", "SAME_UPPER", "SAME_LOWER", "VALID":
	default:
		return nil, 0, a.Errorf("auto_pad %q is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID", autoPad)
	}
	g := &geom{in: xd[2:], kernel: kernel, stride: stride, dil: dil,
		padB: make([]int64, r), padE: make([]int64, r), out: make([]int64, r)}
	for i := 0; i < r; i++ {
		k, s, d, n := kernel[i], stride[i], dil[i], xd[2+i]
		if s <= 0 || d <= 0 || k == 0 || k < -1 {
			return nil, 0, a.Errorf("spatial axis %d: kernel %d, stride %d, dilation %d must all be positive", i, k, s, d)
		}
		if outPad[i] < 0 {
			return nil, 0, a.Errorf("output_padding %v must not be negative", outPad)
		}
		if n < 0 || k < 0 {
			g.out[i] = -1
			if outShape != nil {
				g.out[i] = outShape[i]
			} else if autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER" {
				if n >= 0 {
					g.out[i] = n * s
				}
			}
			continue
		}
		full := s*(n-1) + outPad[i] + (k-1)*d + 1 // output size with no padding
		target := int64(-1)
		switch {
		case outShape != nil:
			target = outShape[i]
		case autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER":
			target = n * s
		}
		if target >= 0 {
			// A negative total (output larger than the input reaches) gives
			// negative pads: the extra border receives only the bias.
			total := full - target
			if autoPad == "SAME_UPPER" {
				g.padB[i] = floorDiv(total, 2)
			} else {
				g.padB[i] = total - floorDiv(total, 2)
			}
			g.padE[i] = total - g.padB[i]
			g.out[i] = target
			continue
		}
		if autoPad != "VALID" {
			g.padB[i], g.padE[i] = pads[i], pads[i+r]
		}
		if g.padB[i] < 0 || g.padE[i] < 0 {
			return nil, 0, a.Errorf("pads %v: negative pads are not supported", pads)
		}
		g.out[i] = full - g.padB[i] - g.padE[i]
		if g.out[i] < 0 {
			return nil, 0, a.Errorf("spatial axis %d: pads %v leave a negative output size", i, pads)
		}
	}
	return g, group, nil
}

func inferConvTranspose(c *ops.InferCtx) error {
	x, err := c.Input(0)
	if err != nil {
		return err
	}
	w, err := c.Input(1)
	if err != nil {
		return err
	}
	if !x.HasShape || !w.HasShape {
		c.Out[0] = &ir.Type{DType: x.DType}
		return nil
	}
	g, group, err := convTParams(c, dimsOf(x.Shape), dimsOf(w.Shape))
	if err != nil {
		return err
	}
	m := ir.Unknown()
	if w.Shape[1].Known() {
		m = ir.D(w.Shape[1].Value * group)
	}
	out := ir.Shape{x.Shape[0], m}
	for _, o := range g.out {
		out = append(out, knownOrUnknown(o))
	}
	c.Out[0] = ir.TensorType(x.DType, out)
	return nil
}

func convTranspose(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := needFloat(c, in, 0, "X")
	if err != nil {
		return nil, err
	}
	w, err := needFloat(c, in, 1, "W")
	if err != nil {
		return nil, err
	}
	if w.DType != x.DType {
		return nil, c.Errorf("X is %s but W is %s", x.DType, w.DType)
	}
	g, group, err := convTParams(c, x.Dims, w.Dims)
	if err != nil {
		return nil, err
	}
	N, C := x.Dims[0], x.Dims[1]
	Cg, Mg := C/group, w.Dims[1]
	M := Mg * group
	b := opt(in, 2)
	if b != nil && (b.Rank() != 1 || b.Dims[0] != M) {
		return nil, c.Errorf("B has dims %v, want [%d]", b.Dims, M)
	}
	outDims := append([]int64{N, M}, g.out...)
	if err := checkSize(c, outDims); err != nil {
		return nil, err
	}
	inSz, outSz, kSz := prod(g.in), prod(g.out), prod(g.kernel)
	if err := checkWork(c, N, M, Cg, inSz, kSz); err != nil {
		return nil, err
	}
	xs, ws, bs := floats(x), floats(w), floats(b)
	y := make([]float64, N*M*outSz)
	taps := buildTaps(g.in, g.out, g.kernel, g.stride, g.dil, g.padB)
	s := g.stride[g.rank()-1]
	parallelFor(N*M, func(p int64) {
		n, oc := p/M, p%M
		yp := y[p*outSz : (p+1)*outSz]
		if bs != nil {
			for i := range yp {
				yp[i] = bs[oc]
			}
		}
		gi, m := oc/Mg, oc%Mg
		for ic := int64(0); ic < Cg; ic++ {
			c := gi*Cg + ic
			xp := xs[(n*C+c)*inSz:][:inSz]
			wp := ws[(c*Mg+m)*kSz:][:kSz]
			scatterTaps(yp, xp, wp, taps, s)
		}
	})
	return []*ir.Tensor{fromFloats(x.DType, outDims, y)}, nil
}
