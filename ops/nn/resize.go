package nn

import (
	"math"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// Resize (opsets 10 to 19+) and its predecessor Upsample (7, 9). The
// kernel resamples one axis at a time: along an axis every output position
// is a weighted sum of a few input positions (its taps), computed from the
// coordinate transformation and the interpolation mode exactly as the ONNX
// reference does, edge-clamped.

func init() {
	ops.Register(&ops.Op{Type: "Resize", MinOpset: 10, Run: resize, Infer: inferResize})
	ops.Register(&ops.Op{Type: "Upsample", MinOpset: 7, Run: resize, Infer: inferResize})
}

type resizeAttrs struct {
	mode, ctm, nearest, policy string
	cubicA, extrap             float64
	exclude, antialias         bool
	axes                       []int // nil: all axes
}

func readResizeAttrs(a attrGetter, opType string, opset int64, rank int) (*resizeAttrs, error) {
	r := &resizeAttrs{mode: a.String("mode", "nearest")}
	legacy := opType == "Upsample" || opset < 11
	if legacy {
		// Upsample and Resize-10 predate the attributes: asymmetric
		// coordinates; nearest takes floor(x / scale) when upsampling and,
		// as ONNX Runtime does for these versions, the ceiling when
		// downsampling (Upsample allows no downsampling).
		r.ctm, r.nearest, r.policy = "asymmetric", "legacy", "stretch"
		if r.mode == "bilinear" || r.mode == "trilinear" {
			r.mode = "linear"
		}
	} else {
		r.ctm = a.String("coordinate_transformation_mode", "half_pixel")
		r.nearest = a.String("nearest_mode", "round_prefer_floor")
		r.cubicA = float64(a.Float("cubic_coeff_a", -0.75))
		r.extrap = float64(a.Float("extrapolation_value", 0))
		r.exclude = a.Int("exclude_outside", 0) != 0
		if opset >= 18 {
			r.antialias = a.Int("antialias", 0) != 0
			r.policy = a.String("keep_aspect_ratio_policy", "stretch")
			if axes := a.Ints("axes", nil); axes != nil {
				seen := map[int]bool{}
				for _, ax := range axes {
					n, err := ops.NormAxis(ax, rank)
					if err != nil {
						return nil, a.Errorf("axes %v: %v", axes, err)
					}
					if seen[n] {
						return nil, a.Errorf("axes %v repeat axis %d", axes, n)
					}
					seen[n] = true
					r.axes = append(r.axes, n)
				}
			}
		} else {
			r.policy = "stretch"
		}
	}
	if err := a.Err(); err != nil {
		return nil, err
	}
	switch r.mode {
	case "nearest", "linear", "cubic":
	default:
		return nil, a.Errorf("mode %q is not nearest, linear or cubic", r.mode)
	}
	if legacy && r.mode == "cubic" {
		return nil, a.Errorf("mode cubic needs Resize from opset 11")
	}
	switch r.ctm {
	case "half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_crop_and_resize":
	case "tf_half_pixel_for_nn":
		// opsets 11-12 only: (x + 0.5) / scale, used with nearest
	default:
		return nil, a.Errorf("coordinate_transformation_mode %q is not supported", r.ctm)
	}
	switch r.nearest {
	case "round_prefer_floor", "round_prefer_ceil", "floor", "ceil":
	case "legacy":
		if !legacy {
			return nil, a.Errorf("nearest_mode %q is not supported", r.nearest)
		}
	default:
		return nil, a.Errorf("nearest_mode %q is not supported", r.nearest)
	}
	switch r.policy {
	case "stretch", "not_larger", "not_smaller":
	default:
		return nil, a.Errorf("keep_aspect_ratio_policy %q is not supported", r.policy)
	}
	if r.antialias && r.mode == "nearest" {
		r.antialias = false // antialias has no effect on nearest
	}
	return r, nil
}

// resizeInputs names the roles of a node's inputs by op and opset.
type resizeInputs struct{ roi, scales, sizes int }

func resizeInputIdx(opType string, opset int64) resizeInputs {
	switch {
	case opType == "Upsample" && opset < 9:
		return resizeInputs{-1, -1, -1} // scales is an attribute
	case opType == "Upsample" || opset < 11:
		return resizeInputs{-1, 1, -1}
	}
	return resizeInputs{1, 2, 3}
}

// resizePlan resolves, for X dims xd, the output dims, the per-axis scale
// used by the coordinate transformation and the per-axis roi.
type resizePlan struct {
	out        []int64
	scale      []float64
	roiS, roiE []float64
}

// planResize works with the scales or sizes values (one of them nil) and
// the roi (nil when absent). xd entries are -1 when unknown (inference).
func planResize(a attrGetter, ra *resizeAttrs, xd []int64, scales []float64, sizes []int64, roi []float64) (*resizePlan, error) {
	r := len(xd)
	axes := ra.axes
	if axes == nil {
		for i := 0; i < r; i++ {
			axes = append(axes, i)
		}
	}
	p := &resizePlan{out: append([]int64{}, xd...), scale: make([]float64, r),
		roiS: make([]float64, r), roiE: make([]float64, r)}
	for i := range p.scale {
		p.scale[i], p.roiE[i] = 1, 1
	}
	if roi != nil && ra.ctm == "tf_crop_and_resize" {
		if len(roi) != 2*len(axes) {
			return nil, a.Errorf("roi has %d values, want %d (start and end per resized axis)", len(roi), 2*len(axes))
		}
		for i, ax := range axes {
			p.roiS[ax], p.roiE[ax] = roi[i], roi[len(axes)+i]
		}
	}
	switch {
	case scales != nil && sizes != nil:
		return nil, a.Errorf("only one of scales and sizes may be given")
	case scales != nil:
		if len(scales) != len(axes) {
			return nil, a.Errorf("scales has %d values, want %d", len(scales), len(axes))
		}
		for i, ax := range axes {
			s := scales[i]
			if !(s > 0) || math.IsInf(s, 0) {
				return nil, a.Errorf("scales %v must be positive and finite", scales)
			}
			p.scale[ax] = s
			if xd[ax] < 0 {
				p.out[ax] = -1
				continue
			}
			o := s * float64(xd[ax]) // the reference floors in*scale, roi or not
			if o > 1<<40 {
				return nil, a.Errorf("scale %g makes axis %d too large", s, ax)
			}
			p.out[ax] = int64(o)
		}
	case sizes != nil:
		if len(sizes) != len(axes) {
			return nil, a.Errorf("sizes has %d values, want %d", len(sizes), len(axes))
		}
		for i, ax := range axes {
			p.out[ax] = sizes[i] // -1: known only symbolically (inference)
			if xd[ax] > 0 && sizes[i] >= 0 {
				p.scale[ax] = float64(sizes[i]) / float64(xd[ax])
			}
		}
		if ra.policy != "stretch" {
			best := 0.0
			for k, ax := range axes {
				if xd[ax] < 0 || sizes[k] < 0 {
					for _, ax := range axes {
						p.out[ax] = -1
					}
					return p, nil
				}
				s := p.scale[ax]
				if k == 0 || (ra.policy == "not_larger" && s < best) || (ra.policy == "not_smaller" && s > best) {
					best = s
				}
			}
			for _, ax := range axes {
				p.scale[ax] = best
				p.out[ax] = int64(best*float64(xd[ax]) + 0.5)
			}
		}
	default:
		return nil, a.Errorf("one of scales and sizes must be given")
	}
	return p, nil
}

// resizeValues reads scales/sizes/roi from the kernel's inputs or the
// Upsample-7 attribute. Empty tensors count as absent.
func resizeValues(c *ops.Ctx, in []*ir.Tensor) (scales []float64, sizes []int64, roi []float64, err error) {
	idx := resizeInputIdx(c.Node.OpType, c.Opset)
	if idx.scales < 0 {
		fs := c.Node.Attr("scales")
		if fs == nil {
			return nil, nil, nil, c.Errorf("attribute scales is missing")
		}
		for _, f := range fs.Floats {
			scales = append(scales, float64(f))
		}
		return scales, nil, nil, nil
	}
	if t := opt(in, idx.scales); t != nil && t.Len() > 0 {
		if !t.DType.IsFloat() {
			return nil, nil, nil, c.Errorf("scales is %s, want float", t.DType)
		}
		scales = floats(t)
	}
	if idx.sizes >= 0 {
		if t := opt(in, idx.sizes); t != nil && t.Len() > 0 {
			if t.DType != ir.Int64 {
				return nil, nil, nil, c.Errorf("sizes is %s, want int64", t.DType)
			}
			sizes = t.Int64s()
			for _, v := range sizes {
				if v < 0 {
					return nil, nil, nil, c.Errorf("sizes %v must not be negative", sizes)
				}
			}
		}
	}
	if idx.roi >= 0 {
		if t := opt(in, idx.roi); t != nil && t.Len() > 0 {
			roi = floats(t)
		}
	}
	return scales, sizes, roi, nil
}

func inferResize(c *ops.InferCtx) error {
	x, err := c.Input(0)
	if err != nil {
		return err
	}
	if !x.HasShape {
		c.Out[0] = &ir.Type{DType: x.DType}
		return nil
	}
	ra, err := readResizeAttrs(c, c.Node.OpType, c.Opset, len(x.Shape))
	if err != nil {
		return err
	}
	idx := resizeInputIdx(c.Node.OpType, c.Opset)
	known := func(i int) (*ir.Tensor, bool) {
		if i < 0 || i >= len(c.Const) || c.Const[i] == nil {
			return nil, false
		}
		return c.Const[i], true
	}
	present := func(i int) bool {
		return i >= 0 && i < len(c.Node.Inputs) && c.Node.Inputs[i] != ""
	}
	var scales []float64
	var sizes []int64
	unknown := false
	if idx.scales < 0 {
		if fs := c.Node.Attr("scales"); fs != nil {
			for _, f := range fs.Floats {
				scales = append(scales, float64(f))
			}
		}
	} else if present(idx.scales) {
		if t, ok := known(idx.scales); ok {
			if t.Len() > 0 {
				scales = floats(t)
			}
		} else if c.In[idx.scales] == nil || !c.In[idx.scales].HasShape ||
			len(c.In[idx.scales].Shape) != 1 || !c.In[idx.scales].Shape[0].Known() || c.In[idx.scales].Shape[0].Value != 0 {
			unknown = true
		}
	}
	var symSizes ir.Shape
	if present(idx.sizes) {
		if t, ok := known(idx.sizes); ok {
			if t.Len() > 0 {
				sizes = t.Int64s()
			}
		} else if idx.sizes < len(c.Value) && c.Value[idx.sizes] != nil {
			symSizes = c.Value[idx.sizes]
			sizes = dimsOf(symSizes)
		} else {
			unknown = true
		}
	}
	if unknown && scales == nil && sizes == nil {
		s := make(ir.Shape, len(x.Shape))
		for i := range s {
			s[i] = ir.Unknown()
		}
		c.Out[0] = ir.TensorType(x.DType, s)
		return nil
	}
	xd := dimsOf(x.Shape)
	p, err := planResize(c, ra, xd, scales, sizes, nil)
	if err != nil {
		return err
	}
	out := make(ir.Shape, len(xd))
	for i, o := range p.out {
		k := sizeAxis(ra, i)
		switch {
		case k < 0:
			out[i] = x.Shape[i] // not resized
		case symSizes != nil && ra.policy == "stretch":
			out[i] = symSizes[k]
		case o >= 0:
			out[i] = ir.D(o)
		case sizes == nil && p.scale[i] == 1:
			out[i] = x.Shape[i] // scale 1 keeps the symbol
		default:
			out[i] = ir.Unknown()
		}
	}
	c.Out[0] = ir.TensorType(x.DType, out)
	return nil
}

// sizeAxis returns the position in scales/sizes of axis i, or -1.
func sizeAxis(ra *resizeAttrs, i int) int {
	if ra.axes == nil {
		return i
	}
	for k, ax := range ra.axes {
		if ax == i {
			return k
		}
	}
	return -1
}

func resize(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	if len(in) < 1 || in[0] == nil {
		return nil, c.Errorf("input X is missing")
	}
	x := in[0]
	if !x.DType.IsFloat() && !x.DType.IsInteger() {
		return nil, c.Errorf("X is %s, want a numeric type", x.DType)
	}
	ra, err := readResizeAttrs(c, c.Node.OpType, c.Opset, x.Rank())
	if err != nil {
		return nil, err
	}
	scales, sizes, roi, err := resizeValues(c, in)
	if err != nil {
		return nil, err
	}
	p, err := planResize(c, ra, x.Dims, scales, sizes, roi)
	if err != nil {
		return nil, err
	}
	if err := checkSize(c, p.out); err != nil {
		return nil, err
	}
	cur, dims := floats(x), append([]int64{}, x.Dims...)
	for ax := range dims {
		taps, err := resizeTaps(c, ra, dims[ax], p.out[ax], p.scale[ax], p.roiS[ax], p.roiE[ax])
		if err != nil {
			return nil, err
		}
		if taps == nil {
			continue // identity along this axis
		}
		cur, dims = resample(cur, dims, ax, p.out[ax], taps, ra.extrap)
	}
	return []*ir.Tensor{fromFloats(x.DType, dims, cur)}, nil
}

// rtaps are the taps of one output position along one axis.
type rtaps struct {
	idx    []int64
	w      []float64
	extrap bool // tf_crop_and_resize: the position is outside the input
}

// resizeTaps computes the taps of every output position along one axis,
// or nil when the axis maps onto itself.
func resizeTaps(c *ops.Ctx, ra *resizeAttrs, in, out int64, scale, roiS, roiE float64) ([]rtaps, error) {
	if in == out && scale == 1 && ra.ctm != "tf_crop_and_resize" {
		return nil, nil
	}
	if in == 0 && out > 0 {
		return nil, c.Errorf("cannot resize an empty axis to %d", out)
	}
	outW := scale * float64(in)
	taps := make([]rtaps, out)
	for xo := int64(0); xo < out; xo++ {
		x := float64(xo)
		var xi float64
		switch ra.ctm {
		case "align_corners":
			if outW == 1 {
				xi = 0
			} else {
				xi = x * float64(in-1) / (outW - 1)
			}
		case "asymmetric":
			xi = x / scale
		case "tf_half_pixel_for_nn":
			xi = (x + 0.5) / scale
		case "tf_crop_and_resize":
			if outW == 1 {
				xi = (roiE - roiS) * float64(in-1) / 2
			} else {
				xi = x * (roiE - roiS) * float64(in-1) / (outW - 1)
			}
			xi += roiS * float64(in-1)
			if xi < 0 || xi > float64(in-1) {
				taps[xo].extrap = true
				continue
			}
		case "pytorch_half_pixel":
			if outW == 1 {
				xi = -0.5
			} else {
				xi = (x+0.5)/scale - 0.5
			}
		case "half_pixel":
			xi = (x+0.5)/scale - 0.5
		case "half_pixel_symmetric":
			adj := float64(out) / outW
			center := float64(in) / 2
			xi = center*(1-adj) + (x+0.5)/scale - 0.5
		}
		// base is the input position at or left of xi, ratio in (0, 1]
		base := math.Floor(xi)
		ratio := xi - base
		if ratio == 0 {
			base--
			ratio = 1
		}
		b := int64(base)
		var t rtaps
		add := func(i int64, w float64) {
			t.idx = append(t.idx, i)
			t.w = append(t.w, w)
		}
		switch ra.mode {
		case "nearest":
			up := false // take base+1 rather than base
			switch {
			case ratio == 1:
				up = true
			case ra.nearest == "round_prefer_floor":
				up = ratio > 0.5
			case ra.nearest == "round_prefer_ceil":
				up = ratio >= 0.5
			case ra.nearest == "ceil":
				up = true
			case ra.nearest == "legacy":
				up = scale < 1
			}
			if up {
				add(b+1, 1)
			} else {
				add(b, 1)
			}
		case "linear":
			if ra.antialias && scale < 1 {
				start := int64(math.Floor(-1/scale)) + 1
				for i := start; i < 2-start; i++ {
					add(b+i, math.Max(0, math.Min(1, 1-math.Abs((float64(i)-ratio)*scale))))
				}
				normalizeTaps(&t)
			} else {
				add(b, 1-ratio)
				add(b+1, ratio)
			}
		case "cubic":
			A := ra.cubicA
			if ra.antialias && scale < 1 {
				start := int64(math.Floor(-2/scale)) + 1
				for i := start; i < 2-start; i++ {
					add(b+i, cubicKernel(scale*(float64(i)-ratio), A))
				}
				normalizeTaps(&t)
			} else {
				for i := int64(-1); i <= 2; i++ {
					add(b+i, cubicKernel(float64(i)-ratio, A))
				}
			}
		}
		if ra.exclude {
			for k, i := range t.idx {
				if i < 0 || i >= in {
					t.w[k] = 0
				}
			}
			normalizeTaps(&t)
		}
		// clamp to the edge and drop zero weights
		k := 0
		for j, i := range t.idx {
			if t.w[j] == 0 {
				continue
			}
			t.idx[k], t.w[k] = min(max(i, 0), in-1), t.w[j]
			k++
		}
		t.idx, t.w = t.idx[:k], t.w[:k]
		taps[xo] = t
	}
	return taps, nil
}

// cubicKernel is Keys' cubic convolution kernel with coefficient A.
func cubicKernel(x, A float64) float64 {
	x = math.Abs(x)
	switch {
	case x <= 1:
		return ((A+2)*x-(A+3))*x*x + 1
	case x < 2:
		return ((A*x-5*A)*x+8*A)*x - 4*A
	}
	return 0
}

func normalizeTaps(t *rtaps) {
	var s float64
	for _, w := range t.w {
		s += w
	}
	if s == 0 {
		return
	}
	for k := range t.w {
		t.w[k] /= s
	}
}

// resample applies taps along axis ax of v (dims), giving out positions.
func resample(v []float64, dims []int64, ax int, out int64, taps []rtaps, extrap float64) ([]float64, []int64) {
	outer, inner := prod(dims[:ax]), prod(dims[ax+1:])
	in := dims[ax]
	nd := append([]int64{}, dims...)
	nd[ax] = out
	y := make([]float64, outer*out*inner)
	for o := int64(0); o < outer; o++ {
		src := v[o*in*inner : (o+1)*in*inner]
		dst := y[o*out*inner : (o+1)*out*inner]
		for xo := int64(0); xo < out; xo++ {
			row := dst[xo*inner : (xo+1)*inner]
			t := &taps[xo]
			if t.extrap {
				for j := range row {
					row[j] = extrap
				}
				continue
			}
			for k, i := range t.idx {
				w := t.w[k]
				s := src[i*inner : (i+1)*inner]
				for j, e := range s {
					row[j] += w * e
				}
			}
		}
	}
	return y, nd
}
