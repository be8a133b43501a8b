package cudabackend

import (
	"math"

	"github.com/kilnml/kiln/gpu/cuda"
	"github.com/kilnml/kiln/ir"
)

// foldActIntoClamp moves a ReLU or Clip of an NHWC layer with integer codes
// into the code bounds [vlo, vhi] of its epilogue (nhwc.cuh qcodew clamps v
// to them before dividing), so that the kernel runs no activation: it
// returns the activation code to pass (A_NONE when folded) and the bounds.
//
// The fold gives the same codes, NaN included:
//   - Clip(a, b) then the clamp is one clamp to [max(a, vlo), min(b, vhi)]
//     when those intervals meet (min(max(NaN, a), b) is a, and so is the
//     folded form's first step); otherwise it is left alone.
//   - ReLU then the clamp is the clamp to [max(0, vlo), vhi] for every v but
//     NaN, which ReLU keeps (→ the lowest code) and the fold would send to
//     the code of 0. It is folded only where v cannot be NaN: int32
//     accumulators (int8 inputs) converted to float are finite and below
//     2³¹, and with every scale, bias and the residual's z_scale finite and
//     within the bounds below, acc·scale + bias + residual is finite too.
//     ±0 from the fold's max instead of ReLU's +0 quotient to the same code.
func foldActIntoClamp(p gemmParams, scale, bias []float32, vlo, vhi float32) (act int, lo, hi float32) {
	act, lo, hi = p.Act, vlo, vhi
	switch p.Act {
	case actCodes["Clip"]:
		a, b := p.ActA, p.ActB
		if !(a <= b) {
			return
		}
		nlo, nhi := max(a, vlo), min(b, vhi)
		if nlo <= nhi {
			return actCodes[""], nlo, nhi
		}
	case actCodes["Relu"]:
		if p.In != cuda.R8I || (p.HasScale && scale == nil) || (p.HasBias && bias == nil) ||
			!boundedBy(scale, 0x1p90) || !boundedBy(bias, 0x1p120) {
			return
		}
		if p.HasZ && !(p.ZScale >= 0 && p.ZScale <= 0x1p100) {
			return
		}
		if p.HasZ && p.ZFmt < zfmtCodes { // float residuals may be NaN themselves
			return
		}
		return actCodes[""], max(vlo, 0), vhi
	}
	return
}

// boundedBy says every value is finite with magnitude at most b (NaN fails).
func boundedBy(v []float32, b float32) bool {
	for _, x := range v {
		if !(math.Abs(float64(x)) <= float64(b)) {
			return false
		}
	}
	return true
}

// epilogueBounds are what an NHWC epilogue with integer codes gets from
// the host: the code bounds (nhwc.cuh qcodew) and the activation left to
// run after foldActIntoClamp.
type epilogueBounds struct {
	act      int
	vlo, vhi float32
}

// codeBounds computes the layer's epilogueBounds once (they depend on its
// parameters and weights alone): codeClamp searches float32 neighbours and
// the ReLU fold reads every scale and bias, which a run need not repeat.
// Outputs that are not integer codes get zero bounds and the layer's
// activation.
func (k *gemmKernel) codeBounds() (epilogueBounds, error) {
	k.boundsOnce.Do(func() {
		k.bounds = epilogueBounds{act: k.p.Act}
		lo, hi, ok := codeRange(k.p.Out)
		if !ok {
			return
		}
		ys, zp := k.p.outQuant()
		vlo, vhi, err := codeClamp(ys, lo-zp, hi-zp)
		if err != nil {
			k.boundsErr = err
			return
		}
		sc, bi := k.hostScaleBias()
		k.bounds.act, k.bounds.vlo, k.bounds.vhi = foldActIntoClamp(k.p, sc, bi, vlo, vhi)
	})
	return k.bounds, k.boundsErr
}

// hostScaleBias are the layer's float32 per-channel scales and biases as
// the plan holds them (nil where absent).
func (k *gemmKernel) hostScaleBias() (scale, bias []float32) {
	i := 1
	if k.p.HasBias {
		if i < len(k.host) && k.host[i].DType == ir.Float32 {
			bias = k.host[i].F32()
		}
		i++
	}
	if k.p.HasScale && i < len(k.host) && k.host[i].DType == ir.Float32 {
		scale = k.host[i].F32()
	}
	return
}
