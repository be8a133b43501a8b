package f32

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops/kilnq"
)

func TestExp32(t *testing.T) {
	worst, at := 0.0, float32(0)
	check := func(x float32) {
		want := math.Exp(float64(x))
		got := float64(Exp32(x))
		if want < math.SmallestNonzeroFloat32*(1<<23) || want > math.MaxFloat32 { // subnormal (2^-149 steps, rounded twice) or overflow: absolute
			if math.Abs(got-want) > 2*math.SmallestNonzeroFloat32 && !(math.IsInf(got, 1) && want > math.MaxFloat32) {
				t.Fatalf("Exp32(%g) = %g, want %g", x, got, want)
			}
			return
		}
		if r := math.Abs(got-want) / want; !(r <= worst) {
			worst, at = r, x
		}
	}
	for b := uint32(0); b <= math.Float32bits(110); b += 53 {
		x := math.Float32frombits(b)
		check(x)
		check(-x)
	}
	for _, x := range []float32{88.72283, 88.7, -87.3, -87.35, -100, -103.9, -103.98, 0, 1e-30} {
		check(x)
	}
	t.Logf("max relative error %.3g at %g", worst, at)
	if worst > Exp32RelErr {
		t.Fatalf("Exp32 relative error %.3g at %g exceeds %g", worst, at, Exp32RelErr)
	}
	if v := Exp32(float32(math.NaN())); v == v {
		t.Errorf("Exp32(NaN) = %g", v)
	}
	if Exp32(float32(math.Inf(-1))) != 0 || !math.IsInf(float64(Exp32(float32(math.Inf(1)))), 1) || !math.IsInf(float64(Exp32(89)), 1) {
		t.Errorf("Exp32 specials: %g %g %g", Exp32(float32(math.Inf(-1))), Exp32(float32(math.Inf(1))), Exp32(89))
	}
}

// softmax64 is the reference: float64 softmax of float32 scores.
func softmax64(row []float32) []float64 {
	mx := math.Inf(-1)
	for _, v := range row {
		mx = math.Max(mx, float64(v))
	}
	out := make([]float64, len(row))
	s := 0.0
	for i, v := range row {
		out[i] = math.Exp(float64(v) - mx)
		s += out[i]
	}
	for i := range out {
		out[i] /= s
	}
	return out
}

func TestSoftmaxRow(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 3, 4, 5, 31, 128, 129, 1000, 4096} {
		for _, spread := range []float64{0.1, 3, 30} {
			for _, masked := range []bool{false, true} {
				row := make([]float32, n)
				for i := range row {
					row[i] = float32(rng.NormFloat64() * spread)
					if masked && i%3 == 1 {
						row[i] = float32(math.Inf(-1))
					}
				}
				want := softmax64(row)
				SoftmaxRow(row)
				for i, w := range want {
					if d := math.Abs(float64(row[i]) - w); !(d <= SoftmaxRowErr(n)) {
						t.Fatalf("n=%d spread=%g masked=%v: p[%d] = %g, want %g (error %.3g > %.3g)", n, spread, masked, i, row[i], w, d, SoftmaxRowErr(n))
					}
				}
			}
		}
	}
	// A fully masked row and a row with NaN give NaN everywhere, as the reference.
	for _, row := range [][]float32{{float32(math.Inf(-1)), float32(math.Inf(-1))}, {1, float32(math.NaN()), 2}} {
		SoftmaxRow(row)
		for i, v := range row {
			if v == v {
				t.Errorf("p[%d] = %g, want NaN", i, v)
			}
		}
	}
}

func TestGeluRow(t *testing.T) {
	row := []float32{-3, -0.5, 0, 0.5, 3, float32(math.Inf(1))}
	want := []float64{-0.0040496, -0.1542687, 0, 0.3457312, 2.9959503, math.Inf(1)}
	GeluRow(row)
	for i, w := range want {
		if math.Abs(float64(row[i])-w) > 1e-6 && !(math.IsInf(w, 1) && math.IsInf(float64(row[i]), 1)) {
			t.Errorf("GeluRow[%d] = %g, want %g", i, row[i], w)
		}
	}
}

// The AVX-512 twins equal the Go loops bit for bit (NaN for NaN), at
// lengths below, at and above the 16-lane width, on normal values, values
// past the clamps and thresholds, and specials.
func TestVecMathVariants(t *testing.T) {
	if !vecAVX512 {
		t.Skip("no AVX-512 twins in this build or CPU")
	}
	defer func() { vecAVX512 = true }()
	r := rand.New(rand.NewPCG(5, 6))
	specials := []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()),
		4, -4, 5.657, -5.657, 88.72284, 88.7229, -103.97208, -103.98, -87.33, -87.34, 1e-40, -1e-40, math.MaxFloat32, -math.MaxFloat32}
	same := func(what string, n int, a, b []float32) {
		for i := range a {
			if math.Float32bits(a[i]) != math.Float32bits(b[i]) && !(a[i] != a[i] && b[i] != b[i]) {
				t.Fatalf("%s n=%d: element %d: AVX-512 %g (%#x), Go %g (%#x)", what, n, i, a[i], math.Float32bits(a[i]), b[i], math.Float32bits(b[i]))
			}
		}
	}
	for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 33, 128, 1000} {
		for rep := 0; rep < 20; rep++ {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(r.NormFloat64() * []float64{0.5, 3, 40}[rep%3])
				if rep%4 == 3 && r.IntN(4) == 0 {
					x[i] = specials[r.IntN(len(specials))]
				}
			}
			run := func(avx bool, f func([]float32)) []float32 {
				vecAVX512 = avx
				y := append([]float32(nil), x...)
				f(y)
				return y
			}
			same("GeluRow", n, run(true, GeluRow), run(false, GeluRow))
			same("SoftmaxRow", n, run(true, SoftmaxRow), run(false, SoftmaxRow))
			shift := float32(r.NormFloat64())
			var la, lg [16]float32
			n16 := n &^ 15
			a := run(true, func(y []float32) { expShiftBlock16(y[:n16], shift, &la) })
			g := run(false, func(y []float32) { expShiftBlock16(y[:n16], shift, &lg) })
			same("expShift", n, a, g)
			same("expShift lanes", n, la[:], lg[:])
			mask := make([]float32, n)
			for i := range mask {
				mask[i] = float32(r.NormFloat64())
				if i%5 == 2 {
					mask[i] = float32(math.Inf(-1))
				}
			}
			for _, m := range [][]float32{nil, mask} {
				var ma, mg float32
				a := run(true, func(y []float32) { ma = ScaleMaskMax(y, m, 0.125) })
				g := run(false, func(y []float32) { mg = ScaleMaskMax(y, m, 0.125) })
				same("ScaleMaskMax", n, a, g)
				same("ScaleMaskMax max", n, []float32{ma}, []float32{mg})
				// The maximum is the largest result, NaN when one is NaN.
				want, hasNaN := float32(math.Inf(-1)), false
				for _, v := range g {
					hasNaN = hasNaN || v != v
					want = max(want, v)
				}
				if hasNaN != (mg != mg) || (!hasNaN && mg != want) {
					t.Fatalf("ScaleMaskMax n=%d: max %g, want %g", n, mg, want)
				}
			}
		}
	}
}

// go test -bench VecMath ./kernels/f32: ns per element of each variant.
func BenchmarkVecMath(b *testing.B) {
	x := make([]float32, 1024)
	for i := range x {
		x[i] = float32(i%200)/25 - 4
	}
	saved := vecAVX512
	defer func() { vecAVX512 = saved }()
	for _, avx := range []bool{false, true} {
		if avx && !saved {
			continue
		}
		name := map[bool]string{false: "go", true: "avx512"}[avx]
		b.Run("GeluRow/"+name, func(b *testing.B) {
			vecAVX512 = avx
			for b.Loop() {
				GeluRow(x)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(x)), "ns/elem")
		})
		b.Run("SoftmaxRow128/"+name, func(b *testing.B) {
			vecAVX512 = avx
			for b.Loop() {
				for i := 0; i < len(x); i += 128 {
					SoftmaxRow(x[i : i+128])
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(x)), "ns/elem")
		})
	}
}

// QuantizeRow equals kilnq's QuantizeOut code for code, with and without
// the AVX-512 twin, on ties, saturation and specials.
func TestQuantizeRow(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	saved := vecAVX512
	defer func() { vecAVX512 = saved }()
	for _, c := range []struct {
		dt    ir.DType
		scale float32
		zero  int32
	}{{ir.Int8, 0.05, 0}, {ir.Uint8, 0.031, 128}, {ir.Uint8, 0.2, 3}, {ir.Int8, 1e-3, 0}} {
		l := &kilnq.Layer{OutType: c.dt, YScale: c.scale, YZero: c.zero}
		for _, n := range []int{0, 1, 15, 16, 17, 100, 1000} {
			src := make([]float32, n)
			for i := range src {
				switch i % 7 {
				case 0:
					src[i] = float32(float64(r.IntN(600)-300)+0.5) * c.scale // ties
				case 1:
					src[i] = []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), math.MaxFloat32, 0}[r.IntN(5)]
				default:
					src[i] = float32(r.NormFloat64() * 200 * float64(c.scale))
				}
			}
			for _, avx := range []bool{false, true} {
				if avx && !saved {
					continue
				}
				vecAVX512 = avx
				dst := make([]byte, n)
				QuantizeRow(dst, src, c.scale, c.zero, c.dt == ir.Uint8)
				for i, y := range src {
					if want := byte(l.QuantizeOut(y)); dst[i] != want {
						t.Fatalf("%s scale %g zero %d avx %v: y = %g: code %d, want %d", c.dt, c.scale, c.zero, avx, y, dst[i], want)
					}
				}
			}
		}
	}
}

// ScaleAddRow equals kilnq's epilogue (no activation) bit for bit, with and
// without the AVX-512 twin.
func TestScaleAddRow(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	saved := vecAVX512
	defer func() { vecAVX512 = saved }()
	for _, n := range []int{1, 15, 16, 17, 100, 1024} {
		acc, w, b, z := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
		for i := range acc {
			acc[i] = float32(r.IntN(200000) - 100000)
			w[i] = 0.001 + 0.01*r.Float32()
			b[i], z[i] = float32(r.NormFloat64()), float32(r.NormFloat64())
			if i%9 == 4 {
				acc[i], b[i], z[i] = 0, 0, float32(math.Copysign(0, -1))
			}
		}
		xs := float32(0.0123)
		l := &kilnq.Layer{XScale: xs, WScales: w}
		for _, avx := range []bool{false, true} {
			if avx && !saved {
				continue
			}
			vecAVX512 = avx
			y := make([]float32, n)
			ScaleAddRow(y, acc, w, b, z, xs)
			for i := range y {
				if want := l.Epilogue(acc[i], i, b[i], z[i]); math.Float32bits(y[i]) != math.Float32bits(want) {
					t.Fatalf("n=%d avx=%v: y[%d] = %g, want %g", n, avx, i, y[i], want)
				}
			}
		}
	}
}
