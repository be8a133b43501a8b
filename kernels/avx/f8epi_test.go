package avx

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/floatx"
)

// f8EpiFor returns F8Epi's constants for a float8 format, and the format.
func f8EpiFor(e5m2 bool, m, b, ys float32, relu bool) (*F8Epi, floatx.F8Format) {
	f, mbits, bias, maxCode := floatx.E4M3FN, uint32(3), 7, uint8(0x7e)
	if e5m2 {
		f, mbits, bias, maxCode = floatx.E5M2, 2, 15, 0x7b
	}
	p := &F8Epi{M: m, B: b, YScale: ys, Sub: float32(math.Ldexp(1, bias-1+int(mbits))),
		Half: 1<<(22-mbits) - 1, Rebias: uint32(127-bias) << mbits,
		Lo: math.Float32bits(float32(math.Ldexp(1, 1-bias))), Hi: math.Float32bits(floatx.F8ToF32(maxCode, f)), Sh: 23 - mbits}
	if relu {
		p.Relu = 1
	}
	return p, f
}

// TestF8Epilogue checks F8Epilogue (every variant) against kilnq's
// arithmetic spelled out with floatx.F32ToF8: sums that land on every
// code, on rounding midpoints (ties), on subnormals, ±0, and blocks that
// saturate or hold NaN (where it must stop), at lengths around 16.
func TestF8Epilogue(t *testing.T) {
	r := rand.New(rand.NewPCG(91, 92))
	forEachVariant(t, func(t *testing.T) {
		for _, e5m2 := range []bool{false, true} {
			for mode := range 4 { // no activation, Relu, QuantizeLinear (M 1, B and Z −0), Relu with M and B per element
				relu, quant, perLane := mode == 1 || mode == 3, mode == 2, mode == 3
				for _, n := range []int{1, 15, 16, 17, 33, 200} {
					m, b, ys := float32(0.01+r.Float32()*0.02), float32(r.NormFloat64()*0.01), float32(0.001+r.Float32()*0.01)
					if r.IntN(3) == 0 {
						b = 0
					}
					p, f := f8EpiFor(e5m2, m, b, ys, relu)
					acc := make([]float32, n)
					for i := range acc {
						switch r.IntN(5) {
						case 0: // the sum that gives a code's value or a midpoint, ± a few ulps
							c := uint8(r.IntN(0x7b))
							v := floatx.F8ToF32(c, f)
							if r.IntN(2) == 0 {
								v = (v + floatx.F8ToF32(c+1, f)) / 2
							}
							a := (v*ys - b) / m
							if bits := math.Float32bits(a) & 0x7fffffff; bits > 4 && bits < 0x7f000000 {
								a = math.Float32frombits(math.Float32bits(a) + uint32(r.IntN(5)) - 2)
							}
							acc[i] = a
						case 1:
							acc[i] = float32(math.Copysign(0, float64(r.IntN(2)*2-1)))
						default:
							acc[i] = float32(r.NormFloat64()) * 2
						}
					}
					if quant { // inputs x ≈ the layer's y; M 1, B and Z −0
						for i := range acc {
							acc[i] = acc[i]*m + b
							if r.IntN(6) == 0 {
								acc[i] = float32(math.Copysign(0, -1)) // must stay −0 (code 0x80)
							}
						}
						m, b = 1, float32(math.Copysign(0, -1))
						p.M, p.B, p.Z = m, b, b
					}
					var ms, bs []float32
					if perLane { // the same sums against other multipliers and biases per element
						ms, bs = make([]float32, n), make([]float32, n)
						for i := range ms {
							ms[i], bs[i] = m*(0.5+r.Float32()), b+float32(r.NormFloat64()*0.01)
						}
						p.PerLane, p.MS, p.BS = 1, &ms[0], &bs[0]
					}
					stopAt := -1
					if n > 20 && r.IntN(2) == 0 { // a saturating (or NaN) value: stop at its block
						stopAt = r.IntN(n)
						acc[stopAt] = []float32{1e30, -1e30, float32(math.NaN())}[r.IntN(3)]
						if relu && acc[stopAt] < 0 {
							acc[stopAt] = 1e30
						}
					}
					codes := make([]byte, n+2)
					codes[n], codes[n+1] = 0xA5, 0xA5
					done := F8Epilogue(acc, codes[:n], p)
					want := n
					if stopAt >= 0 {
						want = stopAt &^ 15
					}
					if done != want || codes[n] != 0xA5 || codes[n+1] != 0xA5 {
						t.Fatalf("n %d: done %d, want %d (guard %#x %#x)", n, done, want, codes[n], codes[n+1])
					}
					for i := 0; i < done; i++ {
						mi, bi := m, b
						if perLane {
							mi, bi = ms[i], bs[i]
						}
						y := float32(float32(float32(acc[i]*mi)+bi) + 0)
						if quant {
							y = acc[i] // QuantizeLinear: x / y_scale
						}
						if relu && !(y > 0 || y != y) {
							y = 0
						}
						if w := floatx.F32ToF8(float32(y/ys), f, true); codes[i] != w {
							t.Fatalf("e5m2 %v relu %v: acc[%d] = %v: code %#x, want %#x", e5m2, relu, i, acc[i], codes[i], w)
						}
					}
				}
			}
		}
	})
}
