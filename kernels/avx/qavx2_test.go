package avx

import (
	"math/rand/v2"
	"testing"
	"unsafe"
)

// TestQMicroExtremeCodes: activation codes 255 against weights −128 and 127
// in every lane, the products where a VPMADDUBSW pair sum would saturate
// (2·255·127 > 32767), plus random strips; every INT8 micro-kernel must give
// the reference loop's exact int32 accumulators (float output, Mult 1, no
// correction, so the float32 is the accumulator rounded once).
func TestQMicroExtremeCodes(t *testing.T) {
	const k4 = 37 // odd step count
	fill := map[string]func(a []int8, b []uint8, r *rand.Rand){
		"max_times_min": func(a []int8, b []uint8, _ *rand.Rand) {
			for i := range a {
				a[i] = -128
			}
			for i := range b {
				b[i] = 255
			}
		},
		"max_times_max": func(a []int8, b []uint8, _ *rand.Rand) {
			for i := range a {
				a[i] = 127
			}
			for i := range b {
				b[i] = 255
			}
		},
		"alternating": func(a []int8, b []uint8, _ *rand.Rand) {
			for i := range a {
				a[i] = [2]int8{-128, 127}[i%2]
			}
			for i := range b {
				b[i] = [2]uint8{255, 0}[i/4%2]
			}
		},
		"random": func(a []int8, b []uint8, r *rand.Rand) {
			for i := range a {
				a[i] = int8(r.IntN(256) - 128)
			}
			for i := range b {
				b[i] = uint8(r.IntN(256))
			}
		},
	}
	corr := make([]int32, NR)
	mult := make([]float32, NR)
	for i := range mult {
		mult[i] = 1
	}
	for name, f := range fill {
		t.Run(name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(5, 6))
			a := make([]int8, k4*4*MR)
			b := make([]uint8, k4*4*NR)
			f(a, b, r)
			var want [MR * NR]int32
			qaccumulate(&want, k4, unsafe.SliceData(a), unsafe.SliceData(b), MR, NR)
			forEachQVariant(t, func(t *testing.T) {
				for _, tile := range [][2]int{{MR, NR}, {3, 17}, {1, 1}} {
					mr, nr := tile[0], tile[1]
					const guard = 8
					buf := make([]float32, guard+MR*NR+guard)
					for i := range buf {
						buf[i] = -777
					}
					out := buf[guard : guard+MR*NR]
					q := &QEpi{Corr: &corr[0], Mult: &mult[0]}
					QMicro(k4, a, b, unsafe.Pointer(&out[0]), NR, mr, nr, q)
					for i := range buf {
						row, col := (i-guard)/NR, (i-guard)%NR
						inTile := i >= guard && i < guard+MR*NR && row < mr && col < nr
						switch {
						case inTile && out[row*NR+col] != float32(want[row*NR+col]):
							t.Fatalf("%dx%d tile: acc[%d][%d] = %v, want %d", mr, nr, row, col, out[row*NR+col], want[row*NR+col])
						case !inTile && buf[i] != -777:
							t.Fatalf("%dx%d tile: element %d outside the tile written", mr, nr, i-guard)
						}
					}
				}
			})
		})
	}
}
