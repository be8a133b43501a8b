package avx

import (
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops/kilnq"
)

// recipScales are the y_scales of TestQEpiRecip: powers of two (whose
// reciprocal is exact), QRecip's range ends and just past them (the
// assembly divides there), reciprocals that are hard to round (mantissa all
// ones, near ones), tiny and huge scales, a subnormal one, and random full
// mantissas (the reciprocal rounds, so q0 = y·RN(1/y_scale) misses the
// quotient by an ulp for many y and only the correction step saves the code
// near .5 ties).
func recipScales(r *rand.Rand) []float32 {
	s := []float32{1, 0.5, 2, 0x1p-7, 0x1p-40, 0x1p40, 0x1p-41, 0x1p41, 1e-30, 1e30, 1e-44,
		math.Float32frombits(0x3f7fffff), math.Float32frombits(0x3f800001), math.Float32frombits(0x3fffffff),
		math.Float32frombits(0x2a7fffff), math.Float32frombits(0x54ffffff), 0.1, 1.0 / 3, 0.0078125 * 3, 6.1e-5}
	for range 120 {
		s = append(s, float32(math.Exp(r.Float64()*math.Log(1e6))*1e-4)) // log-uniform in [1e-4, 1e2]
	}
	for range 20 {
		s = append(s, math.Float32frombits(r.Uint32N(0x7f000000))) // any positive finite scale
	}
	return s
}

// recipValues are the y of TestQEpiRecip for scale ys: every code
// boundary (k+½)·ys of codes −300..300 with its neighbours up to 3 ulps
// away, the codes' centres, random values over the code range and beyond,
// random bit patterns (subnormals, huge), and ±0, ±Inf, NaN, the largest
// floats and the clamp's ±2⁶⁰ with their neighbours.
func recipValues(r *rand.Rand, ys float32) []float32 {
	var v []float32
	up := func(x float32, n int) float32 {
		for range n {
			x = math.Nextafter32(x, float32(math.Inf(1)))
		}
		return x
	}
	down := func(x float32, n int) float32 {
		for range n {
			x = math.Nextafter32(x, float32(math.Inf(-1)))
		}
		return x
	}
	for k := -300; k <= 300; k++ {
		b := float32((float64(k) + 0.5) * float64(ys))
		v = append(v, b, up(b, 1), up(b, 2), up(b, 3), down(b, 1), down(b, 2), down(b, 3), float32(float64(k)*float64(ys)))
	}
	for range 1500 {
		v = append(v, float32((r.Float64()*600-300)*float64(ys)), float32((r.Float64()*2e6-1e6)*float64(ys)))
		v = append(v, math.Float32frombits(r.Uint32()))
	}
	for _, x := range []float32{0, 0x1p60, math.MaxFloat32, math.SmallestNonzeroFloat32, 0x1p-126, float32(math.Inf(1))} {
		v = append(v, x, -x, up(x, 1), -up(x, 1), down(x, 1), -down(x, 1))
	}
	return append(v, float32(math.NaN()), -float32(math.NaN()))
}

// TestQEpiRecip checks the micro-kernels' requantization (QRecip's
// Markstein correction where y_scale allows it, the division elsewhere)
// against kilnq.Layer.QuantizeOut on y values fed as a float residual of an
// empty product (y = 0·1 + z = z), for int8 and uint8 codes with zero
// points, with and without an activation clamp (one beyond the codes'
// range, which keeps the division), in every variant and tile width (8×32,
// the narrow 8×16 and 8×8 kernels, partial widths).
func TestQEpiRecip(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 77))
	scales := recipScales(r)
	var corr [NR]int32
	var mult [NR]float32
	for i := range mult {
		mult[i] = 1
	}
	type form struct {
		unsigned bool
		zero     int32
		clamp    bool
		lo, hi   float32
		disjoint bool // the clamp lies beyond every code's y range: QRecip off
	}
	forms := []form{{false, 0, false, 0, 0, false}, {true, 128, false, 0, 0, false},
		{true, 3, true, 0, float32(math.Inf(1)), false}, {false, 0, true, -6, 6e20, false},
		{true, 0, true, 1e30, 2e30, true}, {true, 0, true, 0, float32(math.Inf(1)), false}, {true, 200, true, -1e30, 1e30, false}}
	forEachQVariant(t, func(t *testing.T) {
		recips, nanLos, bad := 0, 0, 0
		for si, ys := range scales {
			f := forms[si%len(forms)]
			out := ir.Int8
			if f.unsigned {
				out = ir.Uint8
			}
			l := kilnq.Layer{YScale: ys, YZero: f.zero, OutType: out}
			q := QEpi{Corr: &corr[0], Mult: &mult[0], YScale: ys, YZero: f.zero, Flags: QQuant | QResid}
			q.QLo, q.QHi = -128-float32(f.zero), 127-float32(f.zero)
			if f.unsigned {
				q.Flags |= QUnsigned
				q.QLo, q.QHi = -float32(f.zero), 255-float32(f.zero)
			}
			if f.clamp {
				q.Flags |= QClamp
				q.Lo, q.Hi = f.lo, f.hi
			}
			q.Flags = q.useRecip(q.Flags)
			wantRecip := ys >= recipMinScale && ys <= recipMaxScale && !f.disjoint
			if (q.Flags&QRecip != 0) != wantRecip {
				t.Fatalf("y_scale %g, clamp [%g, %g]: QRecip %v", ys, f.lo, f.hi, q.Flags&QRecip != 0)
			}
			if wantRecip {
				recips++
			}
			if q.Flags&QNaNLo != 0 && f.unsigned {
				nanLos++ // uint8 codes without the maximum for NaN
			}
			vals := recipValues(r, ys)
			widths := []int{NR, NR / 2, NR / 4, 29, 13, 5}
			for at, ti := 0, 0; at < len(vals); ti++ {
				nr := widths[ti%len(widths)]
				var z [MR * NR]float32
				var want [MR * NR]int64
				mr := 0
				for ; mr < MR && at < len(vals); mr++ {
					for j := 0; j < nr; j++ {
						y := vals[min(at, len(vals)-1)]
						at++
						z[mr*NR+j] = y
						if f.clamp {
							y = float32(math.Min(math.Max(float64(y), float64(f.lo)), float64(f.hi)))
						}
						want[mr*NR+j] = l.QuantizeOut(float32(0) + y)
					}
				}
				q.Resid = unsafe.Pointer(&z[0])
				var got [MR * NR]byte
				if nr > 3*NR/4 || !qMicroNarrow(0, nil, nil, unsafe.Pointer(&got[0]), NR, mr, nr, &q) {
					QMicro(0, nil, nil, unsafe.Pointer(&got[0]), NR, mr, nr, &q)
				}
				for i := 0; i < mr; i++ {
					for j := 0; j < nr; j++ {
						g := int64(int8(got[i*NR+j]))
						if f.unsigned {
							g = int64(got[i*NR+j])
						}
						if g != want[i*NR+j] {
							if bad++; bad <= 10 {
								t.Errorf("y_scale %g (%#08x), y %g (%#08x), zero %d, clamp %v: code %d, want %d",
									ys, math.Float32bits(ys), z[i*NR+j], math.Float32bits(z[i*NR+j]),
									f.zero, f.clamp, g, want[i*NR+j])
							}
						}
					}
				}
			}
		}
		if bad > 0 {
			t.Fatalf("%d codes differ", bad)
		}
		if nanLos == 0 {
			t.Fatal("no uint8 case took QNaNLo")
		}
		if recips < len(scales)/2 {
			t.Fatalf("only %d of %d scales took QRecip", recips, len(scales))
		}
	})
}
