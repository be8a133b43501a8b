package avx

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops/kilnq"
)

// qaddScales are (a, b, y) scale sets: ResNet-like, exact halves (ties of
// the rounding), inexact near-ties, saturation everywhere, y scales far
// from 1 (the power-of-two prescaling: 1e13 is ONNX Runtime's scale in
// ResNet-50's last stage on random inputs), input scales far below y's
// (near the bound of the prescaled ones), and outside Recip's range (the
// Go loop then runs in every variant: subnormal or huge scales).
var qaddScales = [][3]float32{
	{0.0375, 0.021, 0.05},
	{1, 1, 2},
	{0.5, 0.25, 0.75},
	{0.1, 0.1, 0.3},
	{1, 1, 0.01},
	{0x1p-30, 0x1p-31, 0x1p-40},
	{3e9, 1e10, 0x1p40},
	{7.3e-5, 1.9e-3, 2.2e-3},
	{2.5e9, 9.6e10, 1.07e13},
	{1.3e-36, 3e-37, 1.1e-35},
	{0x1p-120, 0x1p-100, 0x1p5}, // prescaled input scales near 2^-126
	{0x1p-124, 0x1p-100, 0x1p5}, // below it: the Go loop
	{1e-39, 3e-39, 0x1p-40},     // subnormal: the Go loop
	{1e30, 1e30, 1e30},          // past 2^100: the Go loop
}

// The assembly reads QAddParams at fixed offsets.
func TestQAddParamsOffsets(t *testing.T) {
	var p QAddParams
	got := []uintptr{unsafe.Offsetof(p.AZero), unsafe.Offsetof(p.BZero), unsafe.Offsetof(p.YZero), unsafe.Offsetof(p.KAScale),
		unsafe.Offsetof(p.KBScale), unsafe.Offsetof(p.KYScale), unsafe.Offsetof(p.KYRecip), unsafe.Offsetof(p.Lo), unsafe.Offsetof(p.Hi)}
	want := []uintptr{8, 12, 20, 32, 36, 40, 44, 48, 52}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("offsets %v, the assembly's %v", got, want)
	}
}

func codeTypeOf(signed bool) ir.DType {
	if signed {
		return ir.Int8
	}
	return ir.Uint8
}

// refQAdd is ops/kilnq's kiln.QAdd for one code pair, as bytes.
func refQAdd(l *kilnq.QAddLayer, a, b byte) byte {
	code := func(dt ir.DType, c byte) int32 {
		if dt == ir.Int8 {
			return int32(int8(c))
		}
		return int32(c)
	}
	return byte(l.Code(code(l.AType, a), code(l.BType, b)))
}

// QAdd equals ops/kilnq's kiln.QAdd on every code pair in every variant,
// for int8/uint8 on each side, zero points at both ends, with and without
// Relu; lengths below, at and above the 16- and 32-code steps, unaligned
// starts, and nothing written past the end.
func TestQAdd(t *testing.T) {
	pairsA, pairsB := make([]byte, 1<<16), make([]byte, 1<<16)
	for i := range pairsA {
		pairsA[i], pairsB[i] = byte(i>>8), byte(i)
	}
	zeros := map[bool][]int32{true: {-128, 0, 127}, false: {0, 128, 255}}
	recips := 0
	forEachQVariant(t, func(t *testing.T) {
		for _, sa := range []bool{false, true} {
			for _, sb := range []bool{false, true} {
				for _, sy := range []bool{false, true} {
					for si, s := range qaddScales {
						for _, relu := range []bool{false, true} {
							za, zb, zy := zeros[sa][si%3], zeros[sb][(si+1)%3], zeros[sy][(si+2)%3]
							if relu {
								zy = zeros[sy][si%3]
							}
							p := NewQAddParams(s[0], s[1], s[2], za, zb, zy, sa, sb, sy, relu)
							if p.Recip {
								recips++
							}
							l := &kilnq.QAddLayer{AScale: s[0], BScale: s[1], YScale: s[2], AZero: za, BZero: zb, YZero: zy, Relu: relu,
								AType: codeTypeOf(sa), BType: codeTypeOf(sb), YType: codeTypeOf(sy)}
							what := fmt.Sprintf("scales %v zeros %d/%d/%d signed %v/%v/%v relu %v", s, za, zb, zy, sa, sb, sy, relu)
							checkQAdd(t, what, l, &p, pairsA, pairsB)
						}
					}
				}
			}
		}
	})
	// Random full-mantissa scales over a wide exponent range, random types and zero points.
	rng := rand.New(rand.NewPCG(7, 11))
	logUniform := func() float32 { return float32(math.Ldexp(1+rng.Float64(), rng.IntN(120)-60)) }
	forEachQVariant(t, func(t *testing.T) {
		for range 60 {
			sa, sb, sy := rng.IntN(2) == 0, rng.IntN(2) == 0, rng.IntN(2) == 0
			z := func(signed bool) int32 {
				if signed {
					return int32(rng.IntN(256) - 128)
				}
				return int32(rng.IntN(256))
			}
			ys := logUniform()
			s := [3]float32{ys * float32(math.Ldexp(1+rng.Float64(), rng.IntN(12)-8)), ys * float32(math.Ldexp(1+rng.Float64(), rng.IntN(12)-8)), ys}
			za, zb, zy, relu := z(sa), z(sb), z(sy), rng.IntN(2) == 0
			p := NewQAddParams(s[0], s[1], s[2], za, zb, zy, sa, sb, sy, relu)
			l := &kilnq.QAddLayer{AScale: s[0], BScale: s[1], YScale: s[2], AZero: za, BZero: zb, YZero: zy, Relu: relu,
				AType: codeTypeOf(sa), BType: codeTypeOf(sb), YType: codeTypeOf(sy)}
			checkQAdd(t, fmt.Sprintf("random scales %v zeros %d/%d/%d signed %v/%v/%v relu %v", s, za, zb, zy, sa, sb, sy, relu), l, &p, pairsA, pairsB)
		}
	})
	if recips == 0 || recips == 3*8*2*len(qaddScales) {
		t.Fatalf("%d parameter sets take the division-free kernel: want some, not all", recips)
	}
}

func checkQAdd(t *testing.T, what string, l *kilnq.QAddLayer, p *QAddParams, a, b []byte) {
	t.Helper()
	const guard = 32
	dst := make([]byte, len(a)+guard)
	for i := range dst {
		dst[i] = 0xa5
	}
	QAdd(dst[:len(a)], a, b, p)
	for i := range a {
		if want := refQAdd(l, a[i], b[i]); dst[i] != want {
			t.Fatalf("%s: codes (%d, %d) → %d, want %d", what, a[i], b[i], dst[i], want)
		}
	}
	for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 33, 47, 48, 63, 65} {
		for _, off := range []int{0, 3} {
			d := dst[:n+guard]
			for i := range d {
				d[i] = 0xa5
			}
			QAdd(d[:n], a[off+1000:off+1000+n], b[off+1000:off+1000+n], p)
			for i := range n {
				if want := refQAdd(l, a[off+1000+i], b[off+1000+i]); d[i] != want {
					t.Fatalf("%s n=%d off=%d: [%d] = %d, want %d", what, n, off, i, d[i], want)
				}
			}
			for i := n; i < len(d); i++ {
				if d[i] != 0xa5 {
					t.Fatalf("%s n=%d: wrote past the end at %d", what, n, i)
				}
			}
		}
	}
}

func BenchmarkQAdd(b *testing.B) {
	const n = 256 * 56 * 56
	x, y, d := make([]byte, n), make([]byte, n), make([]byte, n)
	for i := range x {
		x[i], y[i] = byte(i*7), byte(i*13)
	}
	p := NewQAddParams(0.03, 0.0018, 0.04, 0, 0, 0, false, false, false, true)
	b.SetBytes(3 * n)
	for range b.N {
		QAdd(d, x, y, &p)
	}
}
