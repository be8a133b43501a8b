package cudabackend

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"sync/atomic"

	"github.com/kilnml/kiln/ir"
)

// The fast epilogue (common.cuh qfast, A_FAST) of the wgmma NHWC kernels
// for 8-bit outputs. The exact epilogue computes what the CPU engine does,
// step by step: float(acc)·scale, + bias, + (code − zz)·zs, the activation,
// the quotient by y_scale correctly rounded, + zero point, saturation —
// about 17 instructions per output, which Nsight Compute showed to be most
// of the 1×1 convolutions' instruction stream. The fast one has the host
// fold 1/y_scale into the scales, biases and residual scale and the zero
// point into the biases (fastScaleBias), and ReLU/Clip into the code bounds
// (fastBounds), so that a code is
//
//	round(fma(acc, scale/ys, bias/ys + zp) + (code − zz)·(zs/ys)) clamped
//
// in four to six instructions. The float steps round differently from the
// exact ones, so a code may be one apart from the CPU engine's where the
// value lies within a few ulps of a rounding tie (TensorRT's INT8 epilogues
// make the same trade: scales multiplied, not divided). The GPU tests
// bound both: codes at most one apart and rare (backend/cuda gpu_test.go),
// and whole models within the INT8/FP8 NMSE bounds.
//
// Fast tactics are named after the exact ones with fastTacticSuffix and
// replace them where they lower (they are never slower).
// KILN_CUDA_EXACT=1 (or SetExactEpilogue(true)) offers the exact ones
// only, for engines whose INT8 codes are the CPU engine's bit for bit.
var exactEpilogue atomic.Bool

func init() { exactEpilogue.Store(os.Getenv("KILN_CUDA_EXACT") == "1") }

// SetExactEpilogue makes later builds offer only exact epilogues (true) or
// the fast ones where they lower (false, the default).
func SetExactEpilogue(on bool) { exactEpilogue.Store(on) }

const (
	fastSuffix       = "_fe" // on a mode: the fast epilogue (gemmParams.Fast)
	fastTacticSuffix = ".fe" // on a tactic name
	// fastMagic is 1.5·2²³: adding it rounds |t| < 2²² to an integer in
	// the low mantissa bits (qfast)
	fastMagic = 12582912
	aFast     = 0x100 // common.cuh A_FAST
)

// fastLowers says why a lowered NHWC layer cannot take the fast epilogue:
// it is for the wgmma kernels with 8-bit outputs, and the activation must
// fold into the code bounds (none, ReLU, Clip).
func fastLowers(p gemmParams) error {
	if !p.WG {
		return fmt.Errorf("the fast epilogue is the wgmma NHWC kernels'")
	}
	switch p.Out {
	case ir.Int8, ir.Uint8, ir.Float8E4M3FN:
	default:
		return fmt.Errorf("the fast epilogue writes 8-bit codes (%s)", p.Out)
	}
	if !(p.YScale > 0) || !p.HasScale {
		return fmt.Errorf("the fast epilogue needs a quantized output (y_scale %g)", p.YScale)
	}
	switch p.Act {
	case actCodes[""], actCodes["Relu"]:
	case actCodes["Clip"]:
		if !(p.ActA <= p.ActB) {
			return fmt.Errorf("the fast epilogue folds Clip(%g, %g) into its bounds: empty range", p.ActA, p.ActB)
		}
	default:
		return fmt.Errorf("the fast epilogue folds ReLU and Clip only (activation %d)", p.Act)
	}
	if p.HasZ && p.ZFmt < zfmtCodes {
		return fmt.Errorf("the fast epilogue reads residuals as codes (format %d)", p.ZFmt)
	}
	return nil
}

// fastScaleBias are the fast epilogue's per-channel scales and biases for
// n channels: scale/ys and bias/ys + zp (float32, each rounded once), the
// absent ones taken as 1 and 0.
func fastScaleBias(p gemmParams, scale, bias []float32, n int) (s, b []float32) {
	ys, zp := p.outQuant()
	s, b = make([]float32, n), make([]float32, n)
	for c := range n {
		sc, bi := float32(1), float32(0)
		if c < len(scale) {
			sc = scale[c]
		}
		if c < len(bias) {
			bi = bias[c]
		}
		s[c] = sc / ys
		b[c] = bi/ys + float32(zp)
	}
	return s, b
}

// fastBounds are the fast epilogue's activation argument and bounds. For
// integer codes, [lo, hi] is fastMagic + the lowest and highest code, with
// ReLU and Clip(a, b) as the codes of their bounds (a code is monotone in
// the value, so clamping the value to [a, b] clamps the code to [code(a),
// code(b)]); the activation is A_FAST. For E4M3, ReLU and Clip are clampn's
// bounds in code units (A_FAST | A_CLIP), otherwise A_FAST.
func fastBounds(p gemmParams) (act int, lo, hi float32) {
	ys, zp := p.outQuant()
	a, b := float32(math.Inf(-1)), float32(math.Inf(1))
	switch p.Act {
	case actCodes["Relu"]:
		a = 0
	case actCodes["Clip"]:
		a, b = p.ActA, p.ActB
	}
	clo, chi, ok := codeRange(p.Out)
	if !ok { // E4M3
		if p.Act == actCodes[""] {
			return aFast, 0, 0
		}
		return aFast | actCodes["Clip"], a / ys, b / ys
	}
	code := func(v float32) int { // QuantizeLinear's saturated code of v
		q := math.RoundToEven(float64(v/ys)) + float64(zp)
		return int(max(float64(clo), min(float64(chi), q)))
	}
	if !math.IsInf(float64(a), 0) {
		clo = code(a)
	}
	if !math.IsInf(float64(b), 0) {
		chi = code(b)
	}
	return aFast, float32(fastMagic + clo), float32(fastMagic + chi)
}

// f32Bytes is v as the device reads it (little-endian float32)
func f32Bytes(v []float32) []byte {
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}
