package f32

import (
	"math"

	"github.com/kilnml/kiln/ops/kiln"
)

// Float32 vector math for the transformer kernels (softmax, GELU): the
// reference ops compute in float64; these stay in float32 and are tested
// against float64 with the error bounds below (vecmath_test.go).

// Exp32 is e^x in float32: x = n·ln2 + t with |t| ≤ ln2/2 (ln2 split in
// two parts so that n·ln2 is exact), a degree-6 Taylor polynomial for e^t
// (truncation below 2.5e-8 relative), and p·2^n rounded once (exact in
// float64, then to float32: subnormal results are right, as AVX-512's
// VSCALEFPS). Every step is an explicit float32 operation, so the AVX-512
// twin (expShiftAVX512) matches it bit for bit. Relative error below
// Exp32RelErr for normal results; NaN stays NaN, -Inf gives 0, +Inf and
// x > 88.72284 give +Inf.
func Exp32(x float32) float32 {
	switch {
	case x != x:
		return x
	case x > 88.72284:
		return float32(math.Inf(1))
	case x < -103.97208: // below half the smallest subnormal
		return 0
	}
	n := float32(math.Floor(float64(float32(x*1.44269504088896341) + 0.5)))
	t := float32(x - float32(n*0.693145751953125))
	t = float32(t - float32(n*1.428606765330187045e-06))
	p := float32(1.0 / 720)
	p = float32(float32(p*t) + 1.0/120)
	p = float32(float32(p*t) + 1.0/24)
	p = float32(float32(p*t) + 1.0/6)
	p = float32(float32(p*t) + 0.5)
	p = float32(float32(p*t) + 1)
	p = float32(float32(p*t) + 1)
	return float32(float64(p) * math.Float64frombits(uint64(int64(n)+1023)<<52))
}

// Exp32RelErr bounds |Exp32(x) − e^x| / e^x for normal results.
const Exp32RelErr = 3e-7

// SoftmaxRow replaces row by softmax(row) in float32: subtract the maximum,
// Exp32, multiply by the reciprocal of the sum. The sum runs in 16 lanes
// (element i of the first len&^15 in lane i%16, the rest in lanes 0..14),
// reduced as a fixed tree, so the AVX-512 path and the Go loop agree bit
// for bit. A row whose maximum is -Inf (fully masked) or that holds NaN
// becomes NaN, as in the reference; +Inf entries give NaN as well.
func SoftmaxRow(row []float32) {
	mx := float32(math.Inf(-1))
	for _, v := range row {
		if v > mx || v != v {
			mx = v
			if v != v {
				break
			}
		}
	}
	SoftmaxRowMax(row, mx)
}

// SoftmaxRowMax is SoftmaxRow for a caller that already has the row's
// maximum (NaN if the row holds one), e.g. from the pass that wrote it.
func SoftmaxRowMax(row []float32, mx float32) {
	inv := ExpRowMax(row, mx)
	for i := range row {
		row[i] *= inv
	}
}

// ExpRowMax is SoftmaxRowMax without the last pass: it leaves e^(x−mx) in
// row and returns the factor 1/Σ that makes them probabilities, for a
// caller that multiplies while it copies them on (same values: p = e·inv).
func ExpRowMax(row []float32, mx float32) float32 {
	var lanes [16]float32
	n16 := len(row) &^ 15
	expShiftBlock16(row[:n16], mx, &lanes)
	for i := n16; i < len(row); i++ {
		row[i] = Exp32(row[i] - mx)
		lanes[i-n16] += row[i]
	}
	return 1 / reduce16(&lanes)
}

// expShiftBlock is the Go twin of expShiftAVX512: x[i] = Exp32(x[i] −
// shift), lanes[i%16] += x[i].
func expShiftBlock(x []float32, shift float32, lanes *[16]float32) {
	for i := range x {
		x[i] = Exp32(x[i] - shift)
		lanes[i%16] += x[i]
	}
}

// SoftmaxRowErr bounds the absolute error of SoftmaxRow's probabilities
// against the float64 softmax of the same float32 scores, for rows of up
// to 4096 entries: exp's relative error, the float32 sum's rounding
// (n·2^-24 relative in the worst case, far less in practice) and the final
// product.
func SoftmaxRowErr(n int) float64 { return 4e-7 + float64(n)*6e-8/4 }

// GeluRow applies kiln.Gelu32 to every element (the activation of fused
// MatMul/Gemm epilogues, Act32), 16 at a time with AVX-512 where present.
func GeluRow(row []float32) {
	n16 := len(row) &^ 15
	geluBlock16(row[:n16])
	geluBlock(row[n16:])
}

// geluBlock is the Go twin of geluAVX512.
func geluBlock(x []float32) {
	for i, v := range x {
		x[i] = kiln.Gelu32(v)
	}
}

// QuantizeRow writes the int8 (or, unsigned, uint8) codes of src as
// kilnq.Layer.QuantizeOut does: saturate(round_half_even(y / yScale) +
// yZero), NaN to the lowest code; bytes hold the codes' two's complement.
// 16 at a time with AVX-512 where present, bit-identical to the Go loop.
func QuantizeRow(dst []byte, src []float32, yScale float32, yZero int32, unsigned bool) {
	k := [4]float32{yScale, float32(yZero), -128, 127}
	if unsigned {
		k[2], k[3] = 0, 255
	}
	dst = dst[:len(src)]
	n16 := len(src) &^ 15
	quantizeBlock16(dst[:n16], src[:n16], &k)
	quantizeBlock(dst[n16:], src[n16:], &k)
}

// quantizeBlock is the Go twin of quantizeAVX512 (k: y_scale, zero point,
// lo, hi). The zero point is added in float32: exact below 2^24, and
// beyond that the value saturates either way, so the codes equal
// QuantizeOut's float64 sum.
func quantizeBlock(dst []byte, src []float32, k *[4]float32) {
	for i, y := range src {
		r := float32(math.RoundToEven(float64(y/k[0]))) + k[1]
		switch {
		case !(r >= k[2]):
			r = k[2]
		case r > k[3]:
			r = k[3]
		}
		dst[i] = byte(int32(r))
	}
}

// ScaleMaskMax sets x[i] = x[i]·scale (+ mask[i] when mask is not nil) and
// returns the maximum of the results, NaN if one of them is NaN: the
// scores pass of attention before SoftmaxRowMax. 16 at a time with
// AVX-512 where present (same values bit for bit).
func ScaleMaskMax(x, mask []float32, scale float32) float32 {
	n16 := len(x) &^ 15
	var mh []float32
	if mask != nil {
		mask = mask[:len(x)]
		mh = mask[:n16]
	}
	mx, nan := float32(math.Inf(-1)), false
	if n16 > 0 {
		mx, nan = scaleMaskMax16(x[:n16], mh, scale)
	}
	var mt []float32
	if mask != nil {
		mt = mask[n16:]
	}
	m2, nan2 := scaleMaskMaxBlock(x[n16:], mt, scale)
	if nan || nan2 {
		return float32(math.NaN())
	}
	return max(mx, m2)
}

// scaleMaskMaxBlock is the Go twin of scaleMaskMaxAVX512.
func scaleMaskMaxBlock(x, mask []float32, scale float32) (float32, bool) {
	mx, nan := float32(math.Inf(-1)), false
	for i, v := range x {
		v = float32(v * scale)
		if mask != nil {
			v += mask[i]
		}
		x[i] = v
		if v != v {
			nan = true
		} else if v > mx {
			mx = v
		}
	}
	return mx, nan
}

// ScaleAddRow computes y[i] = float32(acc[i]·float32(xs·w[i])) + b[i] +
// r[i], each operation rounded to float32 in that order: kilnq's epilogue
// before the activation, with x_scale xs and weight scales w (pass zeros
// for an absent bias or residual: kilnq adds 0 too). 16 at a time with
// AVX-512 where present, bit-identical to the Go loop.
func ScaleAddRow(y, acc, w, b, r []float32, xs float32) {
	n := len(y)
	acc, w, b, r = acc[:n], w[:n], b[:n], r[:n]
	n16 := n &^ 15
	scaleAdd16(y[:n16], acc[:n16], w[:n16], b[:n16], r[:n16], xs)
	scaleAdd(y[n16:], acc[n16:], w[n16:], b[n16:], r[n16:], xs)
}

// scaleAdd is the Go twin of scaleAddAVX512.
func scaleAdd(y, acc, w, b, r []float32, xs float32) {
	for i := range y {
		v := float32(acc[i] * float32(xs*w[i]))
		v = float32(v + b[i])
		y[i] = float32(v + r[i])
	}
}
