//go:build !noasm && amd64

package avx

import (
	"fmt"
	"slices"
	"sync"
	"testing"
)

// The machine's ceilings (BENCHMARKS.md, "CPU speed"): peak FMA and VNNI
// issue rate of one core on register operands, and memory bandwidth by
// STREAM's triad over arrays far larger than the last-level cache.

func BenchmarkPeakFMA(b *testing.B) {
	if !slices.Contains(Variants(), VariantAVX512) {
		b.Skip("no AVX-512")
	}
	const n = 4096
	rate(b, 768*n, "GFLOP/s", func() { fmaPeakAVX512(n) })
}

func BenchmarkPeakVNNI(b *testing.B) {
	if !slices.Contains(QVariants(), QVariantVNNI) {
		b.Skip("no AVX-512 VNNI")
	}
	const n = 4096
	rate(b, 3072*n, "GOP/s", func() { vnniPeakAVX512(n) })
}

func TestTriad(t *testing.T) {
	if !slices.Contains(Variants(), VariantAVX512) {
		t.Skip("no AVX-512")
	}
	const n = 192
	a, bb, c := make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range bb {
		bb[i], c[i] = float32(i), float32(2*i+1)
	}
	triadAVX512(&a[0], &bb[0], &c[0], 3, n)
	for i := range a {
		if want := bb[i] + 3*c[i]; a[i] != want {
			t.Fatalf("a[%d] = %v, want %v", i, a[i], want)
		}
	}
}

// BenchmarkTriad: a[i] = b[i] + s·c[i] over three 32 MiB arrays (96 MiB,
// 3× the L3), split in halves for 2 threads; GB/s counts 12 bytes per
// element as STREAM does (the write-allocate read of a is not counted).
func BenchmarkTriad(b *testing.B) {
	if !slices.Contains(Variants(), VariantAVX512) {
		b.Skip("no AVX-512")
	}
	const n = 8 << 20
	x, y, z := make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range y {
		y[i], z[i] = 1, 2
	}
	for _, th := range []int{1, 2} {
		b.Run(fmt.Sprintf("threads=%d", th), func(b *testing.B) {
			part := n / th
			var wg sync.WaitGroup
			rate(b, 12*n, "GB/s", func() {
				for w := 0; w < th; w++ {
					wg.Add(1)
					go func(o int) {
						defer wg.Done()
						triadAVX512(&x[o], &y[o], &z[o], 3, part)
					}(w * part)
				}
				wg.Wait()
			})
		})
	}
}
