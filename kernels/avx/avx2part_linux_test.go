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
