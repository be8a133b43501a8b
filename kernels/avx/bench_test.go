package avx

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
	"unsafe"

	"github.com/kilnml/kiln/kernels/pack"
)

// rate runs f (ops operations per call) b.N times in batches and reports
// the mean rate and the best batch's rate: on a shared machine the best
// batch is the one that had the core to itself, the kernel's own speed.
func rate(b *testing.B, ops float64, unit string, f func()) {
	const batch = 32
	best := time.Duration(1 << 62)
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		t := time.Now()
		for j := 0; j < batch && i+j < b.N; j++ {
			f()
		}
		if d := time.Since(t); i+batch <= b.N && d < best {
			best = d
		}
	}
	b.ReportMetric(ops*float64(b.N)/b.Elapsed().Seconds()/1e9, unit)
	if best < time.Duration(1<<62) {
		b.ReportMetric(ops*batch/best.Seconds()/1e9, "best-"+unit)
	}
}

// BenchmarkMicro: the FP32 micro-kernel on L1-resident operands, per core
// (peak on this Zen 5: ~205 GFLOP/s).
func BenchmarkMicro(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	const k = 256
	a, bb := randF(r, k*MR), randF(r, k*NR)
	c := make([]float32, MR*NR)
	t := &Tile{}
	saved := Variant
	defer func() { Variant = saved }()
	for _, v := range Variants() {
		Variant = v
		b.Run([]string{"generic", "avx512", "avx2"}[v], func(b *testing.B) {
			rate(b, 2*k*MR*NR, "GFLOP/s", func() { Micro(k, a, bb, NR, c, NR, MR, NR, t) })
		})
	}
}

// BenchmarkGemm: one thread, C[256×3136] = A[256×576]·B (a ResNet 3×3 conv
// stage), B in L2-sized packed chunks.
func BenchmarkGemm(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	m, k, n := 256, 576, 3136
	ap := make([]float32, ASize(m, k))
	PackA(ap, randF(r, m*k), m, k, k, 1)
	chunk := 96
	bp := randF(r, BSize(k, chunk))
	c := make([]float32, m*n)
	e := &Epi{}
	rate(b, float64(2*m*n*k), "GFLOP/s", func() {
		for j := 0; j < n; j += chunk {
			Gemm(k, ap, m, bp, 0, min(chunk, n-j), c[j:], n, e, 0, j)
		}
	})
}

// BenchmarkQMicro: the INT8 micro-kernel (VPDPBUSD) with its requantizing
// epilogue on L1-resident operands, per core (peak: ~833 GOP/s).
// benchQVariants runs f once per INT8 micro-kernel this CPU has.
func benchQVariants(b *testing.B, f func(b *testing.B)) {
	saved := QVariant
	defer func() { QVariant = saved }()
	for _, v := range QVariants() {
		QVariant = v
		b.Run(qvariantNames[v], f)
	}
}

func BenchmarkQMicro(b *testing.B) {
	const k = 512
	a := make([]int8, QASize(MR, k))
	bb := make([]uint8, QBSize(k, NR))
	for i := range a {
		a[i] = int8(i * 7)
	}
	for i := range bb {
		bb[i] = uint8(i * 13)
	}
	out := make([]byte, MR*NR)
	corr := make([]int32, MR)
	mult := make([]float32, MR)
	q := &QEpi{Corr: &corr[0], Mult: &mult[0], YScale: 1, QLo: -128, QHi: 127, Flags: QQuant}
	benchQVariants(b, func(b *testing.B) {
		rate(b, 2*k*MR*NR, "GOP/s", func() { QMicro(K4(k), a, bb, unsafe.Pointer(&out[0]), NR, MR, NR, q) })
	})
}

// BenchmarkQGemm: one thread, int8 codes out, 256×3136×576 (as BenchmarkGemm).
func BenchmarkQGemm(b *testing.B) {
	m, k, n := 256, 576, 3136
	ap := make([]int8, QASize(m, k))
	chunk := 256
	bp := make([]uint8, QBSize(k, chunk))
	out := make([]byte, m*n)
	l := &QLayer{Corr: make([]int32, m), Mult: make([]float32, m), Quant: true, YScale: 1}
	o := &QOut{Q: out, Ld: n}
	benchQVariants(b, func(b *testing.B) {
		rate(b, float64(2*m*n*k), "GOP/s", func() {
			for j := 0; j < n; j += chunk {
				QGemm(k, ap, m, bp, min(chunk, n-j), o, l, 0, j)
			}
		})
	})
}

// BenchmarkIm2col: a 3×3 pad-1 conv over 64×56×56 (one image), bytes of
// packed B per second.
func BenchmarkIm2col(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	g := &pack.Conv2D{C: 64, H: 56, W: 56, M: 64, OH: 56, OW: 56, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, PT: 1, PL: 1, Group: 1}
	x := randF(r, 64*56*56)
	dst := make([]float32, BSize(g.K(), 56*56))
	rate(b, float64(4*g.K()*56*56), "GB/s", func() { Im2col(dst, x, g, 0, 0, 56*56) })
}

// BenchmarkIm2colTable: the same conv through the per-strip tap tables
// (VGATHERDPS) instead of row-run copies.
func BenchmarkIm2colTable(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, g := range []*pack.Conv2D{
		{C: 64, H: 56, W: 56, M: 64, OH: 56, OW: 56, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, PT: 1, PL: 1, Group: 1},
		{C: 32, H: 13, W: 13, M: 64, OH: 11, OW: 11, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, Group: 1},
	} {
		b.Run(fmt.Sprintf("%dx%dx%d", g.C, g.H, g.W), func(b *testing.B) {
			x := randF(r, g.C*g.H*g.W)
			n := g.OH * g.OW
			dst := make([]float32, BSize(g.K(), n))
			rate(b, float64(4*g.K()*n), "GB/s", func() { im2colTable(dst, x, g, 0, 0, n) })
		})
		b.Run(fmt.Sprintf("runs/%dx%dx%d", g.C, g.H, g.W), func(b *testing.B) {
			x := randF(r, g.C*g.H*g.W)
			n := g.OH * g.OW
			dst := make([]float32, BSize(g.K(), n))
			rate(b, float64(4*g.K()*n), "GB/s", func() { im2colRuns(dst, x, g, 0, 0, n) })
		})
	}
}

// BenchmarkGemvRow: batch-1 dense layers (simplecnn fc1 1600→128, ResNet-50
// fc 2048→1000), packed weights, through Gemm's one-row path and, for
// comparison, the 8×32 micro-kernel (Variant AVX2 takes the tile path).
func BenchmarkGemvRow(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, sz := range [][2]int{{1600, 128}, {2048, 1000}} {
		k, n := sz[0], sz[1]
		ap := make([]float32, ASize(1, k))
		PackA(ap, randF(r, k), 1, k, k, 1)
		bp := randF(r, BSize(k, n))
		c := make([]float32, n)
		b.Run(fmt.Sprintf("%dx%d", k, n), func(b *testing.B) {
			rate(b, float64(2*k*n), "GFLOP/s", func() { Gemm(k, ap, 1, bp, 0, n, c, n, &Epi{}, 0, 0) })
		})
	}
}
