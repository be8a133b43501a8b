package avx

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/kernels/pack"
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

// TestQRowsPlan: the planned row-quad packing equals QIm2colRows on every
// packed column, every variant: strides 1–3, padding, rows wider and
// narrower than a strip, chunks starting at strips, a partial last strip.
func TestQRowsPlan(t *testing.T) {
	geoms := []pack.Conv2D{
		{C: 3, H: 30, W: 37, KH: 7, KW: 7, SH: 2, SW: 2, DH: 1, DW: 1, PT: 3, PL: 3, Group: 1}, // a stem
		{C: 3, H: 25, W: 23, KH: 3, KW: 3, SH: 2, SW: 2, DH: 1, DW: 1, PT: 1, PL: 1, Group: 1},
		{C: 1, H: 28, W: 28, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, Group: 1},
		{C: 2, H: 11, W: 70, KH: 5, KW: 5, SH: 1, SW: 3, DH: 1, DW: 1, PT: 2, PL: 2, Group: 1},
	}
	forEachQVariant(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(95, 96))
		for gi, g := range geoms {
			g.OH = (g.H+2*g.PT-(g.KH-1)*g.DH-1)/g.SH + 1
			g.OW = (g.W+2*g.PL-(g.KW-1)*g.DW-1)/g.SW + 1
			g.M = 1
			x := make([]byte, g.C*g.H*g.W)
			for i := range x {
				x[i] = byte(r.IntN(256))
			}
			ph, pw := QPadSize(&g)
			xp := make([]byte, g.C*ph*pw)
			QPadImage(xp, x, &g, 0, 0x80, 5)
			p := NewQRowsPlan(&g)
			if !p.direct {
				t.Fatalf("geometry %d: no direct plan", gi)
			}
			k := QRowsDepth(g.C, g.KH, g.KW)
			k4 := K4(k)
			ohw := g.OH * g.OW
			for _, j0 := range []int{0, NR, 2 * NR} {
				if j0 >= ohw {
					continue
				}
				n := ohw - j0
				want, got := make([]uint8, QBSize(k, n)), make([]uint8, QBSize(k, n))
				QIm2colRows(want, xp, &g, j0, n)
				p.Pack(got, xp, j0, n)
				for i := range want {
					if col := i/(4*k4*NR)*NR + i%(4*NR)/4; col < n && got[i] != want[i] {
						t.Fatalf("geometry %d j0 %d: byte %d (column %d) = %#x, want %#x", gi, j0, i, col, got[i], want[i])
					}
				}
			}
		}
	})
}
