package avx

import (
	"math"
	"unsafe"
)

// F8Epi holds the constants of kilnq's epilogue for one output channel of
// an fp8 layer with float8 output codes, no residual, and no activation or
// Relu (see F8Epilogue), or of a float8 QuantizeLinear (M 1, B and Z −0).
type F8Epi struct {
	M, B, YScale float32 // multiplier x_scale·w_scale[c], bias, y_scale
	Sub          float32 // 2^(bias−1+mbits): a subnormal magnitude in units of the smallest subnormal
	Half         uint32  // 1<<(Sh−1) − 1
	Rebias       uint32  // (127 − bias) << mbits
	Lo, Hi       uint32  // float32 bits of the smallest normal and of the largest finite value
	Sh           uint32  // 23 − mbits
	Relu         uint32  // 1: apply Relu
	Z            float32 // added after B: kilnq's absent residual (+0, which makes −0 +0); −0 adds nothing (QuantizeLinear: M 1, B −0)
	PerLane      uint32  // 1: M and B per element from MS and BS (a Gemm row: one channel per column)
	MS, BS       *float32
}

// F8Epilogue writes codes[i] for acc[i], i < n, as kilnq does
// (y = float32(float32(acc·M) + B) + Z, Relu, v = float32(y / YScale),
// rounded half even to the float8 format), and returns how many it wrote:
// it stops before the first block of 16 holding a v whose magnitude is at
// least the largest finite value, or NaN (saturation: the caller's
// floatx path), so the result is < n only there.
func F8Epilogue(acc []float32, codes []byte, p *F8Epi) int {
	n := min(len(acc), len(codes))
	if n == 0 {
		return 0
	}
	return f8Epilogue(&acc[0], &codes[0], n, p)
}

// f8EpilogueGeneric is the portable twin, the reference loop:
//
//	for i < n (in blocks of 16; stop before a block with |v| ≥ Hi or NaN):
//		y := float32(float32(acc[i]·M) + B) + Z        (M, B: MS[i], BS[i] with PerLane)
//		if Relu && !(y > 0 || y != y) { y = 0 }
//		v := float32(y / YScale); mag := bits(v) & 0x7fffffff
//		code := (mag + Half + (mag>>Sh)&1) >> Sh − Rebias          (normal)
//		        or roundHalfEven(float(mag)·Sub)                  (mag < Lo)
//		codes[i] = sign(v) | code
func f8EpilogueGeneric(acc *float32, codes *byte, n int, p *F8Epi) int {
	a := unsafe.Slice(acc, n)
	c := unsafe.Slice(codes, n)
	var ms, bs []float32
	if p.PerLane != 0 {
		ms, bs = unsafe.Slice(p.MS, n), unsafe.Slice(p.BS, n)
	}
	for blk := 0; blk < n; blk += 16 {
		end := min(n, blk+16)
		var out [16]byte
		for i := blk; i < end; i++ {
			m, b := p.M, p.B
			if ms != nil {
				m, b = ms[i], bs[i]
			}
			y := float32(float32(float32(a[i]*m)+b) + p.Z)
			if p.Relu != 0 && !(y > 0 || y != y) {
				y = 0
			}
			v := float32(y / p.YScale)
			bits := math.Float32bits(v)
			mag := bits & 0x7fffffff
			if mag >= p.Hi {
				return blk
			}
			code := (mag+p.Half+(mag>>p.Sh)&1)>>p.Sh - p.Rebias
			if mag < p.Lo {
				code = uint32(math.RoundToEven(float64(math.Float32frombits(mag) * p.Sub)))
			}
			out[i-blk] = byte(bits>>24)&0x80 | byte(code)
		}
		copy(c[blk:end], out[:end-blk])
	}
	return n
}
