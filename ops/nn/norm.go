package nn

import (
	"math"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

func init() {
	ops.Register(&ops.Op{Type: "InstanceNormalization", MinOpset: 1, Run: instanceNorm, Infer: ops.SameAsInput(0)})
	ops.Register(&ops.Op{Type: "LayerNormalization", MinOpset: 17, Run: layerNorm, Infer: inferLayerNorm})
	ops.Register(&ops.Op{Type: "GroupNormalization", MinOpset: 18, Run: groupNorm, Infer: ops.SameAsInput(0)})
	ops.Register(&ops.Op{Type: "RMSNormalization", MinOpset: 23, Run: rmsNorm, Infer: ops.SameAsInput(0)})
	ops.Register(&ops.Op{Type: "MeanVarianceNormalization", MinOpset: 9, Run: meanVarNorm, Infer: ops.SameAsInput(0)})
	ops.Register(&ops.Op{Type: "LRN", MinOpset: 1, Run: lrn, Infer: ops.SameAsInput(0)})
}

// meanVar returns the mean and the biased (population) variance of v,
// in two passes for accuracy.
func meanVar(v []float64) (mean, variance float64) {
	if len(v) == 0 {
		return math.NaN(), math.NaN()
	}
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	for _, x := range v {
		d := x - mean
		variance += d * d
	}
	return mean, variance / float64(len(v))
}

// bcastIndex maps every flat index of target to the flat index of src
// broadcast onto it (unidirectional: src may not grow target).
func bcastIndex(target, src []int64) ([]int64, bool) {
	if !unidirectional(src, target) {
		return nil, false
	}
	b := ops.NewBroadcast(target, src)
	idx := make([]int64, b.NumElem)
	for i := range idx {
		idx[i] = b.Index(0, int64(i))
	}
	return idx, true
}

// channelParam reads a per-channel [C] tensor (InstanceNormalization's
// scale and B).
func channelParam(c *ops.Ctx, t *ir.Tensor, name string, ch int64) ([]float64, error) {
	if t == nil {
		return nil, c.Errorf("input %s is missing", name)
	}
	if t.Len() != ch || t.Rank() != 1 {
		return nil, c.Errorf("%s has dims %v, want [%d]", name, t.Dims, ch)
	}
	return floats(t), nil
}

func instanceNorm(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := needFloat(c, in, 0, "X")
	if err != nil {
		return nil, err
	}
	if x.Rank() < 3 {
		return nil, c.Errorf("X has rank %d, want at least 3 (N, C, spatial...)", x.Rank())
	}
	eps := float64(c.Float("epsilon", 1e-5))
	if err := c.Err(); err != nil {
		return nil, err
	}
	C := x.Dims[1]
	scale, err := channelParam(c, opt(in, 1), "scale", C)
	if err != nil {
		return nil, err
	}
	bias, err := channelParam(c, opt(in, 2), "B", C)
	if err != nil {
		return nil, err
	}
	xs := floats(x)
	sz := prod(x.Dims[2:])
	for p := int64(0); p < x.Dims[0]*C; p++ {
		seg := xs[p*sz : (p+1)*sz]
		mean, v := meanVar(seg)
		k := scale[p%C] / math.Sqrt(v+eps)
		for i, e := range seg {
			seg[i] = (e-mean)*k + bias[p%C]
		}
	}
	return []*ir.Tensor{fromFloats(x.DType, x.Dims, xs)}, nil
}

// stashType reads stash_type (the precision of the statistics: float32 by default).
func stashType(a attrGetter) (ir.DType, error) {
	st := ir.DType(a.Int("stash_type", 1))
	if err := a.Err(); err != nil {
		return 0, err
	}
	if !st.Valid() || !st.IsFloat() {
		return 0, a.Errorf("stash_type %d is not a floating-point type", st)
	}
	return st, nil
}

func inferLayerNorm(c *ops.InferCtx) error {
	x, err := c.Input(0)
	if err != nil {
		return err
	}
	c.Out[0] = x.Clone()
	st, err := stashType(c)
	if err != nil {
		return err
	}
	for k := 1; k < 3 && k < len(c.Out); k++ {
		if !wantOut(c.Node, k) {
			continue
		}
		if !x.HasShape {
			c.Out[k] = &ir.Type{DType: st}
			continue
		}
		axis, err := ops.NormAxis(c.Int("axis", -1), len(x.Shape))
		if err != nil {
			return c.Errorf("%v", err)
		}
		s := append(ir.Shape{}, x.Shape...)
		for i := axis; i < len(s); i++ {
			s[i] = ir.D(1)
		}
		c.Out[k] = ir.TensorType(st, s)
	}
	return nil
}

// normParams resolves axis, epsilon and the broadcast indices of scale and
// (optional) bias over the normalized trailing shape X.Dims[axis:].
func normParams(c *ops.Ctx, x, scale, bias *ir.Tensor) (axis int, eps float64, si, bi []int64, err error) {
	axis, err = ops.NormAxis(c.Int("axis", -1), x.Rank())
	if err != nil {
		return 0, 0, nil, nil, c.Errorf("%v", err)
	}
	eps = float64(c.Float("epsilon", 1e-5))
	if err := c.Err(); err != nil {
		return 0, 0, nil, nil, err
	}
	inner := x.Dims[axis:]
	if scale == nil {
		return 0, 0, nil, nil, c.Errorf("input scale is missing")
	}
	var ok bool
	if si, ok = bcastIndex(inner, scale.Dims); !ok {
		return 0, 0, nil, nil, c.Errorf("scale dims %v do not broadcast to the normalized shape %v", scale.Dims, inner)
	}
	if bias != nil {
		if bi, ok = bcastIndex(inner, bias.Dims); !ok {
			return 0, 0, nil, nil, c.Errorf("bias dims %v do not broadcast to the normalized shape %v", bias.Dims, inner)
		}
	}
	return axis, eps, si, bi, nil
}

func layerNorm(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := needFloat(c, in, 0, "X")
	if err != nil {
		return nil, err
	}
	scale, bias := opt(in, 1), opt(in, 2)
	axis, eps, si, bi, err := normParams(c, x, scale, bias)
	if err != nil {
		return nil, err
	}
	st, err := stashType(c)
	if err != nil {
		return nil, err
	}
	xs, ss, bs := floats(x), floats(scale), floats(bias)
	outer, inner := prod(x.Dims[:axis]), prod(x.Dims[axis:])
	means, invs := make([]float64, outer), make([]float64, outer)
	for o := int64(0); o < outer; o++ {
		seg := xs[o*inner : (o+1)*inner]
		mean, v := meanVar(seg)
		inv := 1 / math.Sqrt(v+eps)
		means[o], invs[o] = mean, inv
		for i, e := range seg {
			y := (e - mean) * inv * ss[si[i]]
			if bs != nil {
				y += bs[bi[i]]
			}
			seg[i] = y
		}
	}
	statDims := append([]int64{}, x.Dims...)
	for i := axis; i < len(statDims); i++ {
		statDims[i] = 1
	}
	outs := []*ir.Tensor{fromFloats(x.DType, x.Dims, xs), nil, nil}
	if wantOut(c.Node, 1) {
		outs[1] = fromFloats(st, statDims, means)
	}
	if wantOut(c.Node, 2) {
		outs[2] = fromFloats(st, statDims, invs)
	}
	return outs[:max(1, min(3, len(c.Node.Outputs)))], nil
}

func rmsNorm(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := needFloat(c, in, 0, "X")
	if err != nil {
		return nil, err
	}
	scale := opt(in, 1)
	axis, eps, si, _, err := normParams(c, x, scale, nil)
	if err != nil {
		return nil, err
	}
	if _, err := stashType(c); err != nil {
		return nil, err
	}
	xs, ss := floats(x), floats(scale)
	outer, inner := prod(x.Dims[:axis]), prod(x.Dims[axis:])
	for o := int64(0); o < outer; o++ {
		seg := xs[o*inner : (o+1)*inner]
		var sq float64
		for _, e := range seg {
			sq += e * e
		}
		inv := 1 / math.Sqrt(sq/float64(inner)+eps)
		for i, e := range seg {
			seg[i] = e * inv * ss[si[i]]
		}
	}
	return []*ir.Tensor{fromFloats(x.DType, x.Dims, xs)}, nil
}

// groupNorm normalizes each group of C/num_groups channels; scale and bias
// are per channel from opset 21, per group in opsets 18-20.
func groupNorm(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := needFloat(c, in, 0, "X")
	if err != nil {
		return nil, err
	}
	if x.Rank() < 2 {
		return nil, c.Errorf("X has rank %d, want at least 2 (N, C, ...)", x.Rank())
	}
	G := c.Int("num_groups", 0)
	eps := float64(c.Float("epsilon", 1e-5))
	if err := c.Err(); err != nil {
		return nil, err
	}
	if _, err := stashType(c); err != nil {
		return nil, err
	}
	N, C := x.Dims[0], x.Dims[1]
	if G <= 0 || C%G != 0 {
		return nil, c.Errorf("num_groups %d must be positive and divide the %d channels", G, C)
	}
	per := C // scale/bias entries
	if c.Opset < 21 {
		per = G
	}
	scale, err := channelParam(c, opt(in, 1), "scale", per)
	if err != nil {
		return nil, err
	}
	bias, err := channelParam(c, opt(in, 2), "bias", per)
	if err != nil {
		return nil, err
	}
	xs := floats(x)
	sp := prod(x.Dims[2:])
	cg := C / G
	seg := cg * sp
	for p := int64(0); p < N*G; p++ {
		v := xs[p*seg : (p+1)*seg]
		mean, variance := meanVar(v)
		inv := 1 / math.Sqrt(variance+eps)
		g := p % G
		for i := range v {
			k := g // per-group parameters
			if per == C {
				k = g*cg + int64(i)/sp
			}
			v[i] = (v[i]-mean)*inv*scale[k] + bias[k]
		}
	}
	return []*ir.Tensor{fromFloats(x.DType, x.Dims, xs)}, nil
}

// meanVarNorm is (X - mean) / (sqrt(var) + 1e-9) over axes (default 0,2,3),
// as in the op's function body.
func meanVarNorm(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := needFloat(c, in, 0, "X")
	if err != nil {
		return nil, err
	}
	axes := c.Ints("axes", []int64{0, 2, 3})
	if err := c.Err(); err != nil {
		return nil, err
	}
	red := append([]int64{}, x.Dims...)
	for _, a := range axes {
		ax, err := ops.NormAxis(a, x.Rank())
		if err != nil {
			return nil, c.Errorf("axes %v: %v", axes, err)
		}
		red[ax] = 1
	}
	key, _ := bcastIndex(x.Dims, red)
	xs := floats(x)
	nk := prod(red)
	sum, sq, cnt := make([]float64, nk), make([]float64, nk), make([]float64, nk)
	for i, v := range xs {
		sum[key[i]] += v
		cnt[key[i]]++
	}
	for k := range sum {
		sum[k] /= cnt[k]
	}
	for i, v := range xs {
		d := v - sum[key[i]]
		sq[key[i]] += d * d
	}
	for i, v := range xs {
		k := key[i]
		xs[i] = (v - sum[k]) / (math.Sqrt(sq[k]/cnt[k]) + 1e-9)
	}
	return []*ir.Tensor{fromFloats(x.DType, x.Dims, xs)}, nil
}

// lrn: y = x / (bias + alpha/size · Σ x²)^beta, the sum over the channels
// c-⌊(size-1)/2⌋ .. c+⌈(size-1)/2⌉.
func lrn(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := needFloat(c, in, 0, "X")
	if err != nil {
		return nil, err
	}
	if x.Rank() < 2 {
		return nil, c.Errorf("X has rank %d, want at least 2 (N, C, ...)", x.Rank())
	}
	size := c.Int("size", 0)
	alpha := float64(c.Float("alpha", 1e-4))
	beta := float64(c.Float("beta", 0.75))
	bias := float64(c.Float("bias", 1))
	if err := c.Err(); err != nil {
		return nil, err
	}
	if size <= 0 {
		return nil, c.Errorf("size %d must be positive", size)
	}
	N, C, sp := x.Dims[0], x.Dims[1], prod(x.Dims[2:])
	xs := floats(x)
	y := make([]float64, len(xs))
	lo, hi := (size-1)/2, (size)/2 // ⌊(size-1)/2⌋ before, ⌈(size-1)/2⌉ after
	for n := int64(0); n < N; n++ {
		for ch := int64(0); ch < C; ch++ {
			for s := int64(0); s < sp; s++ {
				var sq float64
				for k := max(0, ch-lo); k <= min(C-1, ch+hi); k++ {
					v := xs[(n*C+k)*sp+s]
					sq += v * v
				}
				i := (n*C+ch)*sp + s
				y[i] = xs[i] / math.Pow(bias+alpha/float64(size)*sq, beta)
			}
		}
	}
	return []*ir.Tensor{fromFloats(x.DType, x.Dims, y)}, nil
}
