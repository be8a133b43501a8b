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
// (truncation below 2.5e-8 relative), and 2^n built in the exponent bits
// (two steps, so that results down to the subnormals are right). Relative
// error below Exp32RelErr for normal results; NaN stays NaN, -Inf gives 0,
// +Inf and x > 88.72 give +Inf.
func Exp32(x float32) float32 {
	switch {
	case x != x:
		return x
	case x > 88.72284:
		return float32(math.Inf(1))
	case x < -103.97208: // below half the smallest subnormal
		return 0
	}
	n := float32(math.Floor(float64(x*1.44269504088896341 + 0.5)))
	t := float32(x - float32(n*0.693145751953125))
	t = float32(t - float32(n*1.428606765330187045e-06))
	p := float32(1.0 / 720)
	p = float32(float32(p*t) + 1.0/120)
	p = float32(float32(p*t) + 1.0/24)
	p = float32(float32(p*t) + 1.0/6)
	p = float32(float32(p*t) + 0.5)
	p = float32(float32(p*t) + 1)
	p = float32(float32(p*t) + 1)
	ni := int32(n)
	if ni < -126 { // 2^n = 2^(n+64)·2^-64 keeps the scale normal
		return float32(p*pow2(ni+64)) * pow2(-64)
	}
	if ni > 127 {
		return float32(p*pow2(ni-1)) * 2
	}
	return p * pow2(ni)
}

// pow2 is 2^n for -126 ≤ n ≤ 127.
func pow2(n int32) float32 { return math.Float32frombits(uint32(n+127) << 23) }

// Exp32RelErr bounds |Exp32(x) − e^x| / e^x for normal results.
const Exp32RelErr = 3e-7

// SoftmaxRow replaces row by softmax(row) in float32: subtract the maximum,
// Exp32, multiply by the reciprocal of the sum (accumulated in float32 over
// 4 lanes). A row whose maximum is -Inf (fully masked) or that holds NaN
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
	var s [4]float32
	i := 0
	for ; i+4 <= len(row); i += 4 {
		r := row[i : i+4 : i+4]
		r[0] = Exp32(r[0] - mx)
		r[1] = Exp32(r[1] - mx)
		r[2] = Exp32(r[2] - mx)
		r[3] = Exp32(r[3] - mx)
		s[0] += r[0]
		s[1] += r[1]
		s[2] += r[2]
		s[3] += r[3]
	}
	for ; i < len(row); i++ {
		row[i] = Exp32(row[i] - mx)
		s[0] += row[i]
	}
	inv := 1 / ((s[0] + s[1]) + (s[2] + s[3]))
	for i := range row {
		row[i] *= inv
	}
}

// SoftmaxRowErr bounds the absolute error of SoftmaxRow's probabilities
// against the float64 softmax of the same float32 scores, for rows of up
// to 4096 entries: exp's relative error, the float32 sum's rounding
// (n·2^-24 relative in the worst case, far less in practice) and the final
// product.
func SoftmaxRowErr(n int) float64 { return 4e-7 + float64(n)*6e-8/4 }

// GeluRow applies kiln.Gelu32 to every element (the activation of fused
// MatMul/Gemm epilogues, Act32).
func GeluRow(row []float32) {
	for i, v := range row {
		row[i] = kiln.Gelu32(v)
	}
}
