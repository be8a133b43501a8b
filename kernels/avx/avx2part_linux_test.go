package avx

import (
	"math"
	"math/rand/v2"
	"syscall"
	"testing"
	"unsafe"
)

// pageEndFloats returns n float32s that end exactly where an unreadable
// page begins, so a kernel reading one element past them faults.
func pageEndFloats(t *testing.T, n int) []float32 {
	t.Helper()
	ps := syscall.Getpagesize()
	size := (4*n+ps-1)/ps*ps + ps
	mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Skipf("mmap: %v", err)
	}
	t.Cleanup(func() { syscall.Munmap(mem) })
	if err := syscall.Mprotect(mem[size-ps:], syscall.PROT_NONE); err != nil {
		t.Skipf("mprotect: %v", err)
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&mem[size-ps-4*n])), n)
}

// TestMicroPartialTilesReadInPlace: a tile of nr < 32 columns read in place
// from a row-major matrix (the direct 1×1 convolution's B) must not read
// past the matrix (its last row ends at an unreadable page) and must give
// the same bits as those columns computed inside a full-width tile, for
// every variant: otherwise results depend on where strips are cut.
func TestMicroPartialTilesReadInPlace(t *testing.T) {
	forEachVariant(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		for _, k := range []int{1, 7, 64} {
			for _, nr := range []int{1, 5, 8, 9, 17, 24, 31} {
				ldb := nr + 3
				a := make([]float32, k*MR)
				for i := range a {
					a[i] = r.Float32()*2 - 1
				}
				b := pageEndFloats(t, (k-1)*ldb+nr)
				wide := make([]float32, k*NR) // the same columns in a full-width strip
				for p := 0; p < k; p++ {
					for j := 0; j < nr; j++ {
						v := r.Float32()*2 - 1
						b[p*ldb+j], wide[p*NR+j] = v, v
					}
				}
				part := make([]float32, MR*nr)
				full := make([]float32, MR*NR)
				tile := &Tile{Lo: float32(math.Inf(-1)), Hi: float32(math.Inf(1))}
				Micro(k, a, b, ldb, part, nr, MR, nr, tile)
				Micro(k, a, wide, NR, full, NR, MR, NR, tile)
				for i := 0; i < MR; i++ {
					for j := 0; j < nr; j++ {
						if math.Float32bits(part[i*nr+j]) != math.Float32bits(full[i*NR+j]) {
							t.Fatalf("k %d nr %d: c[%d][%d] = %v in a partial tile, %v in a full one", k, nr, i, j, part[i*nr+j], full[i*NR+j])
						}
					}
				}
			}
		}
	})
}

// TestMicroEpilogueInRegisters: for every variant, flag set and tile
// shape, the micro-kernel's fused epilogue equals its plain sums (with
// FlagAccum alone when set) finished by tileEpilogue, bit for bit (NaN and ±Inf in c and resid
// included), and writes nothing outside the mr×nr block of c.
func TestMicroEpilogueInRegisters(t *testing.T) {
	forEachVariant(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, 8))
		special := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0}
		const k, ldc, guard = 13, NR + 5, 16
		for flags := 0; flags < 32; flags++ {
			if flags&FlagBiasRow != 0 && flags&FlagBiasCol != 0 {
				continue // one bias at a time
			}
			for _, tile := range [][2]int{{MR, NR}, {MR, 20}, {3, NR}, {5, 9}, {1, 1}} {
				mr, nr := tile[0], tile[1]
				a := make([]float32, k*MR)
				b := make([]float32, k*NR)
				for i := range a {
					a[i] = r.Float32()*2 - 1
				}
				for i := range b {
					b[i] = r.Float32()*2 - 1
				}
				c0 := make([]float32, (MR-1)*ldc+NR)
				resid := make([]float32, len(c0))
				for i := range c0 {
					c0[i], resid[i] = r.Float32()*4-2, r.Float32()*4-2
					if r.IntN(17) == 0 {
						c0[i] = special[r.IntN(len(special))]
					}
					if r.IntN(17) == 0 {
						resid[i] = special[r.IntN(len(special))]
					}
				}
				bias := make([]float32, NR)
				for i := range bias {
					bias[i] = r.Float32()*2 - 1
				}
				const lo, hi = -0.75, 1.5
				// Fused: c starts as c0 (read with FlagAccum), guard bands around it.
				buf := make([]float32, guard+len(c0)+guard)
				for i := range buf {
					buf[i] = -999
				}
				got := buf[guard : guard+len(c0)]
				copy(got, c0)
				var bp, rp *float32
				if flags&(FlagBiasRow|FlagBiasCol) != 0 {
					bp = &bias[0]
				}
				if flags&FlagResid != 0 {
					rp = &resid[0]
				}
				micro(k, &a[0], &b[0], NR, &got[0], ldc, mr, nr, bp, rp, lo, hi, flags)
				// Unfused: the sums alone (from c0 with FlagAccum: each
				// variant's own way of starting from c), then tileEpilogue.
				var raw [MR * NR]float32
				for i := 0; i < MR; i++ {
					copy(raw[i*NR:(i+1)*NR], c0[i*ldc:i*ldc+NR])
				}
				micro(k, &a[0], &b[0], NR, &raw[0], NR, MR, NR, nil, nil, 0, 0, flags&FlagAccum)
				want := append([]float32(nil), c0...)
				tileEpilogue(&raw, want, ldc, mr, nr, bp, rp, lo, hi, flags&^FlagAccum)
				for i := range buf {
					if i < guard || i >= guard+len(c0) {
						if buf[i] != -999 {
							t.Fatalf("flags %d tile %dx%d: guard band written at %d", flags, mr, nr, i-guard)
						}
						continue
					}
					x := i - guard
					if math.Float32bits(got[x]) != math.Float32bits(want[x]) && !(got[x] != got[x] && want[x] != want[x]) {
						t.Fatalf("flags %d tile %dx%d: c[%d][%d] = %v, want %v", flags, mr, nr, x/ldc, x%ldc, got[x], want[x])
					}
				}
			}
		}
	})
}

// TestMaxPoolRowsF32ReadsInside: the 2×2 row pool of every variant reads
// nothing past the last window (the input ends at an unreadable page) and
// writes nothing past the outputs, at widths around the vector widths.
func TestMaxPoolRowsF32ReadsInside(t *testing.T) {
	forEachVariant(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(9, 10))
		for _, n := range []int{1, 3, 5, 7, 8, 9, 13, 15, 16, 17, 23} {
			const rows = 2
			w := 2*n + 3
			x := pageEndFloats(t, (2*rows-1)*w+2*n)
			for i := range x {
				x[i] = r.Float32()
			}
			out := pageEndFloats(t, rows*n)
			MaxPoolRowsF32(out, x, w, n, rows)
			for q := 0; q < rows; q++ {
				for o := 0; o < n; o++ {
					b := x[2*q*w+2*o]
					for _, v := range []float32{x[2*q*w+2*o+1], x[(2*q+1)*w+2*o], x[(2*q+1)*w+2*o+1]} {
						if v > b {
							b = v
						}
					}
					if out[q*n+o] != b {
						t.Fatalf("n=%d: out[%d][%d] = %v, want %v", n, q, o, out[q*n+o], b)
					}
				}
			}
		}
	})
}
