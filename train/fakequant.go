package train

import (
	"fmt"
	"math"
)

// FakeQuantSpec is the integer grid of a fake quantizer: codes
// [QMin, QMax], zero point 0 (symmetric, as TensorRT wants), and the axis
// the scales run along (-1: one scale for the tensor; 0: one per index of
// axis 0, the output channel of a weight).
type FakeQuantSpec struct {
	QMin, QMax int
	Axis       int
}

// Int8Activation is TensorRT's activation grid: int8 [-128,127], per tensor.
var Int8Activation = FakeQuantSpec{QMin: -128, QMax: 127, Axis: -1}

// WeightSpec is a symmetric narrow grid of the given bits on [-(2^(b-1)-1),
// 2^(b-1)-1] (int8: [-127,127]), per output channel (axis 0) or, with
// perTensor, one scale for the tensor.
func WeightSpec(bits int, perTensor bool) FakeQuantSpec {
	q := 1<<(bits-1) - 1
	s := FakeQuantSpec{QMin: -q, QMax: q, Axis: 0}
	if perTensor {
		s.Axis = -1
	}
	return s
}

// minScale keeps a learned scale positive whatever the optimizer does to it.
const minScale = 1e-12

// FakeQuantize returns dequantize(quantize(x)) on the grid spec with the
// given scales (one, or one per index of axis 0): q = clamp(round_half_even(
// x/s), QMin, QMax), y = q·s, with x/s in float32 and q·s rounded once, as
// ONNX QuantizeLinear/DequantizeLinear compute them, so that a model trained
// with it and exported as Q/DQ computes the same values.
//
// Backward is the straight-through estimator: dx = dy where x lay inside the
// grid, 0 where it was clipped. When scale requires a gradient (learned step
// size, LSQ: Esser et al. 2020) it also gets
//
//	ds += g · Σ dy · (q − x/s)   inside,   g · Σ dy · q   where clipped,
//
// with g = 1/√(N·QMax), N the number of elements per scale.
func (c *Ctx) FakeQuantize(x, scale *Tensor, spec FakeQuantSpec) *Tensor {
	groups, inner := 1, len(x.Data)
	if spec.Axis == 0 {
		if len(x.Shape) == 0 {
			panic("train.FakeQuantize: per-channel quantization of a scalar")
		}
		groups = x.Shape[0]
		if groups > 0 {
			inner = len(x.Data) / groups
		}
	} else if spec.Axis != -1 {
		panic(fmt.Sprintf("train.FakeQuantize: axis %d (want -1 or 0)", spec.Axis))
	}
	if len(scale.Data) != groups {
		panic(fmt.Sprintf("train.FakeQuantize: %d scales for %d groups of %v", len(scale.Data), groups, x.Shape))
	}
	if spec.QMin >= spec.QMax {
		panic(fmt.Sprintf("train.FakeQuantize: empty grid [%d, %d]", spec.QMin, spec.QMax))
	}
	// codes keeps q (as float32) and clipped the STE mask for backward.
	codes := c.alloc(len(x.Data))
	clipped := make([]bool, len(x.Data))
	out := c.newResult(x.Shape, func(out *Tensor) {
		c.fakeQuantBackward(x, scale, out, codes, clipped, spec, groups, inner)
	}, x, scale)
	lo, hi := float64(spec.QMin), float64(spec.QMax)
	c.parallel(len(x.Data), func(_, i0, i1 int) {
		for i := i0; i < i1; i++ {
			s := max(scale.Data[i/inner], minScale)
			v := float32(x.Data[i] / s)
			r := math.RoundToEven(float64(v))
			cl := false
			switch {
			case r < lo || v != v: // NaN goes to the lowest code, as ONNX Runtime does
				r, cl = lo, true
			case r > hi:
				r, cl = hi, true
			}
			codes[i], clipped[i] = float32(r), cl
			out.Data[i] = float32(r * float64(s))
		}
	})
	return out
}

func (c *Ctx) fakeQuantBackward(x, scale, out *Tensor, codes []float32, clipped []bool, spec FakeQuantSpec, groups, inner int) {
	dy := out.Grad
	if x.requiresGrad {
		dx := c.gradOf(x)
		c.parallel(len(dx), func(_, lo, hi int) {
			for i := lo; i < hi; i++ {
				if !clipped[i] {
					dx[i] += dy[i]
				}
			}
		})
	}
	if !scale.requiresGrad {
		return
	}
	ds := c.gradOf(scale)
	g := 1 / math.Sqrt(float64(inner)*float64(spec.QMax))
	term := func(i int) float64 {
		if clipped[i] {
			return float64(dy[i]) * float64(codes[i])
		}
		s := max(scale.Data[i/inner], minScale)
		return float64(dy[i]) * (float64(codes[i]) - float64(float32(x.Data[i]/s)))
	}
	if groups > 1 {
		c.parallel(groups, func(_, g0, g1 int) {
			for k := g0; k < g1; k++ {
				sum := 0.0
				for i := k * inner; i < (k+1)*inner; i++ {
					sum += term(i)
				}
				ds[k] += float32(g * sum)
			}
		})
		return
	}
	// One scale: per-worker partial sums over fixed chunks, added in order,
	// so that the result does not depend on scheduling.
	parts := make([]float64, c.Workers)
	c.parallel(len(dy), func(w, lo, hi int) {
		sum := 0.0
		for i := lo; i < hi; i++ {
			sum += term(i)
		}
		parts[w] = sum
	})
	total := 0.0
	for _, p := range parts {
		total += p
	}
	ds[0] += float32(g * total)
}

// AbsMaxPerChannel returns max |x| over each index of axis 0 (perTensor:
// one value over everything): the "max" range of weights.
func AbsMaxPerChannel(x []float32, channels int, perTensor bool) []float32 {
	if perTensor {
		m := float32(0)
		for _, v := range x {
			m = max(m, float32(math.Abs(float64(v))))
		}
		return []float32{m}
	}
	out := make([]float32, channels)
	inner := len(x) / channels
	for k := range out {
		for _, v := range x[k*inner : (k+1)*inner] {
			out[k] = max(out[k], float32(math.Abs(float64(v))))
		}
	}
	return out
}

// ScalesFromAmax maps ranges to scales amax/qmax (an empty range gets
// 1/qmax, as quant.Symmetric does).
func ScalesFromAmax(amax []float32, qmax int) []float32 {
	s := make([]float32, len(amax))
	for i, a := range amax {
		s[i] = a / float32(qmax)
		if !(s[i] >= 0x1p-126) {
			s[i] = 1 / float32(qmax)
		}
	}
	return s
}
