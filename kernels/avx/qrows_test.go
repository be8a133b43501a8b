package avx

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestPackQRows checks PackQRows (the block kernel for whole strips and
// its word and byte tails) against a byte-by-byte reference: every
// variant, row counts below, at and above a strip, depths below a block,
// at whole blocks, with word and byte tails, int8 and uint8 codes; and
// that nothing past the packed strips is written.
func TestPackQRows(t *testing.T) {
	forEachQVariant(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(87, 88))
		for _, m := range []int{1, 7, 8, 9, 16, 21} {
			for _, k := range []int{4, 37, 64, 67, 130, 1600} {
				for _, flip := range []byte{0, 0x80} {
					t.Run(fmt.Sprint(m, k, flip), func(t *testing.T) {
						x := make([]byte, m*k)
						for i := range x {
							x[i] = byte(r.IntN(256))
						}
						k4 := K4(k)
						size := (m + MR - 1) / MR * MR * 4 * k4
						got := make([]int8, size+qpoolGuard)
						for i := range got {
							got[i] = 0x55
						}
						rc := make([]int32, m)
						PackQRows(got[:size], x, m, k, flip, rc)
						for s := 0; s < m; s += MR {
							for i := range MR {
								var sum int32
								for p := range 4 * k4 {
									var want int8
									if s+i < m && p < k {
										want = int8(x[(s+i)*k+p] ^ flip)
										sum += int32(want)
									}
									if g := got[s*4*k4+(p/4)*4*MR+i*4+p%4]; g != want {
										t.Fatalf("row %d depth %d: %d, want %d", s+i, p, g, want)
									}
								}
								if s+i < m && rc[s+i] != 128*sum {
									t.Fatalf("row %d: correction %d, want %d", s+i, rc[s+i], 128*sum)
								}
							}
						}
						for i := size; i < len(got); i++ {
							if got[i] != 0x55 {
								t.Fatalf("guard byte %d written", i-size)
							}
						}
					})
				}
			}
		}
	})
}
