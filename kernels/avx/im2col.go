package avx

import "github.com/kilnml/kiln/kernels/pack"

// segment is a run of output positions of one output row inside a strip.
type segment struct{ oh, ow, n, at int }

// Im2col packs columns [j0, j0+n) of group grp's im2col matrix of one image
// x (C×H×W) in NR-column strips, as pack.Im2col does (B[(c,kh,kw)][j] is
// the input under tap (kh,kw) of output position j, 0 in the padding), but
// a strip's columns are handled as runs of one output row, so stride-1
// taps are contiguous copies. Columns past n in the last strip are left
// unwritten: the micro-kernel never reads them.
func Im2col(dst, x []float32, g *pack.Conv2D, grp, j0, n int) {
	if g.OW < NR && g.KH*g.KW <= maxTaps {
		im2colTable(dst, x, g, grp, j0, n)
		return
	}
	k := g.K()
	cg := g.C / g.Group
	hw := g.H * g.W
	var segs [NR]segment
	for t := 0; t < n; t += NR {
		strip := dst[t*k : t*k+NR*k]
		cols := min(NR, n-t)
		ns := 0
		for j := 0; j < cols; {
			jj := j0 + t + j
			oh, ow := jj/g.OW, jj%g.OW
			run := min(cols-j, g.OW-ow)
			segs[ns] = segment{oh, ow, run, j}
			ns++
			j += run
		}
		p := 0
		for c := 0; c < cg; c++ {
			plane := x[(grp*cg+c)*hw : (grp*cg+c+1)*hw]
			for kh := 0; kh < g.KH; kh++ {
				for kw := 0; kw < g.KW; kw++ {
					d := strip[p*NR : p*NR+NR]
					for _, sg := range segs[:ns] {
						out := d[sg.at : sg.at+sg.n]
						ih := sg.oh*g.SH - g.PT + kh*g.DH
						if uint(ih) >= uint(g.H) {
							clear(out)
							continue
						}
						row := plane[ih*g.W : ih*g.W+g.W]
						iw0 := sg.ow*g.SW - g.PL + kw*g.DW // input col of out[0]
						lo, hi := validRange(iw0, g.SW, g.W, sg.n)
						if lo >= hi {
							clear(out)
							continue
						}
						clear(out[:lo])
						if g.SW == 1 {
							copy(out[lo:hi], row[iw0+lo:iw0+hi])
						} else {
							for o := lo; o < hi; o++ {
								out[o] = row[iw0+o*g.SW]
							}
						}
						clear(out[hi:])
					}
					p++
				}
			}
		}
	}
}

// validRange is the range of o in [0,n) with 0 <= off+o*s < w.
func validRange(off, s, w, n int) (lo, hi int) {
	if off < 0 {
		lo = (-off + s - 1) / s
	}
	hi = n
	if last := w - 1 - off; last < 0 {
		hi = 0
	} else {
		hi = min(n, last/s+1)
	}
	lo = min(lo, n)
	return lo, max(hi, lo)
}

// maxTaps bounds the kernels whose per-strip tap tables fit on the stack.
const maxTaps = 49

// tapTable fills, for strip columns [0,cols) starting at output position
// j, the input offset within a plane of every tap (kh,kw), or -1 in the
// padding: narrow outputs make runs too short for copies, so a table per
// strip serves every channel.
func tapTable(tab *[maxTaps][NR]int32, g *pack.Conv2D, j, cols int) {
	for c := 0; c < cols; c++ {
		oh, ow := (j+c)/g.OW, (j+c)%g.OW
		ih0, iw0 := oh*g.SH-g.PT, ow*g.SW-g.PL
		t := 0
		for kh := 0; kh < g.KH; kh++ {
			ih := ih0 + kh*g.DH
			for kw := 0; kw < g.KW; kw++ {
				iw := iw0 + kw*g.DW
				if uint(ih) < uint(g.H) && uint(iw) < uint(g.W) {
					tab[t][c] = int32(ih*g.W + iw)
				} else {
					tab[t][c] = -1
				}
				t++
			}
		}
	}
}

func im2colTable(dst, x []float32, g *pack.Conv2D, grp, j0, n int) {
	k := g.K()
	cg := g.C / g.Group
	hw := g.H * g.W
	taps := g.KH * g.KW
	var tab [maxTaps][NR]int32
	for t := 0; t < n; t += NR {
		strip := dst[t*k : t*k+NR*k]
		cols := min(NR, n-t)
		tapTable(&tab, g, j0+t, cols)
		p := 0
		for c := 0; c < cg; c++ {
			plane := x[(grp*cg+c)*hw : (grp*cg+c+1)*hw]
			for tp := 0; tp < taps; tp++ {
				d := strip[p*NR : p*NR+cols]
				for j, idx := range tab[tp][:cols] {
					if idx >= 0 {
						d[j] = plane[idx]
					} else {
						d[j] = 0
					}
				}
				p++
			}
		}
	}
}
