package avx

import (
	"math/bits"
	"unsafe"

	"github.com/kilnml/kiln/kernels/pack"
)

// segment is a run of output positions of one output row inside a strip.
type segment struct{ oh, ow, n, at int }

// Im2col packs columns [j0, j0+n) of group grp's im2col matrix of one image
// x (C×H×W) in NR-column strips, as pack.Im2col does (B[(c,kh,kw)][j] is
// the input under tap (kh,kw) of output position j, 0 in the padding), but
// a strip's columns are handled as runs of one output row, so stride-1
// taps are contiguous copies. Columns past n in the last strip are left
// unwritten: the micro-kernel never reads them.
func Im2col(dst, x []float32, g *pack.Conv2D, grp, j0, n int) {
	if g.SW <= 2 && g.KH*g.KW <= maxTaps {
		im2colRuns(dst, x, g, grp, j0, n)
		return
	}
	if (g.OW < NR || g.SW > 1) && g.KH*g.KW <= maxTaps { // strided rows: gathers beat a scalar loop
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
// padding and in columns [cols,NR): narrow outputs make runs too short for
// copies, so a table per strip serves every channel.
func tapTable(tab *[maxTaps][NR]int32, g *pack.Conv2D, j, cols int) {
	taps := g.KH * g.KW
	for c := 0; c < cols; { // one output row's run of columns at a time
		oh, ow := (j+c)/g.OW, (j+c)%g.OW
		run := min(cols-c, g.OW-ow)
		for kh := 0; kh < g.KH; kh++ {
			ih := oh*g.SH - g.PT + kh*g.DH
			for kw := 0; kw < g.KW; kw++ {
				d := tab[kh*g.KW+kw][c : c+run]
				if uint(ih) >= uint(g.H) {
					for q := range d {
						d[q] = -1
					}
					continue
				}
				iw, base := ow*g.SW-g.PL+kw*g.DW, int32(ih*g.W)
				for q := range d {
					if uint(iw) < uint(g.W) {
						d[q] = base + int32(iw)
					} else {
						d[q] = -1
					}
					iw += g.SW
				}
			}
		}
		c += run
	}
	for t := 0; t < taps; t++ {
		for c := cols; c < NR; c++ {
			tab[t][c] = -1
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
		tapTable(&tab, g, j0+t, min(NR, n-t))
		planes := x[grp*cg*hw : (grp+1)*cg*hw]
		im2colGather(&strip[0], &planes[0], hw, cg, &tab[0][0], taps)
	}
}

// im2colGatherGeneric is the portable twin of the strip gather, the
// reference loop (tab holds taps rows of NR plane offsets, -1 for a zero):
//
//	for c < cg, t < taps, j < NR:
//		dst[(c*taps+t)*NR+j] = plane[c*hw+tab[t*NR+j]] if tab[t*NR+j] >= 0, else 0
func im2colGatherGeneric(dst, plane *float32, hw, cg int, tab *int32, taps int) {
	if cg == 0 || taps == 0 {
		return
	}
	d := unsafe.Slice(dst, cg*taps*NR)
	x := unsafe.Slice(plane, cg*hw)
	tb := unsafe.Slice(tab, taps*NR)
	for c := 0; c < cg; c++ {
		pl := x[c*hw : c*hw+hw]
		for t := 0; t < taps; t++ {
			out := d[(c*taps+t)*NR : (c*taps+t+1)*NR]
			for j, idx := range tb[t*NR : t*NR+NR] {
				if idx >= 0 {
					out[j] = pl[idx]
				} else {
					out[j] = 0
				}
			}
		}
	}
}

// runStream is the largest run stream of a strip: per tap a count and up
// to NR runs (one per output row the strip touches) of 3 int32 each.
const runStream = maxTaps * (1 + 3*NR)

// runTable writes the run stream of strip columns [0,cols) starting at
// output position j of a conv of row stride 1 or 2: per tap (kh,kw) the
// number of runs (plus 1<<16 when the runs leave some of the NR columns to
// zero), then per run the plane offset of its first input, its first strip
// column and the mask of its length (bit i for each of its columns; column
// i reads the input g.SW·i after the first). Columns in the padding belong
// to no run (they stay zero). It returns the stream's length.
func runTable(st *[runStream]int32, g *pack.Conv2D, j, cols int) int {
	var segs [NR]segment
	ns := 0
	for c := 0; c < cols; {
		oh, ow := (j+c)/g.OW, (j+c)%g.OW
		run := min(cols-c, g.OW-ow)
		segs[ns] = segment{oh, ow, run, c}
		ns++
		c += run
	}
	p := 0
	for kh := 0; kh < g.KH; kh++ {
		for kw := 0; kw < g.KW; kw++ {
			cnt := p
			p++
			for _, sg := range segs[:ns] {
				ih := sg.oh*g.SH - g.PT + kh*g.DH
				if uint(ih) >= uint(g.H) {
					continue
				}
				iw0 := sg.ow*g.SW - g.PL + kw*g.DW
				lo, hi := validRange(iw0, g.SW, g.W, sg.n)
				if lo >= hi {
					continue
				}
				st[p] = int32(ih*g.W + iw0 + lo*g.SW)
				st[p+1] = int32(sg.at + lo)
				st[p+2] = int32(uint32(1)<<(hi-lo) - 1)
				if hi-lo == 32 {
					st[p+2] = -1
				}
				p += 3
			}
			runs, covered := (p-cnt-1)/3, 0
			for q := cnt + 1; q < p; q += 3 {
				covered += bits.OnesCount32(uint32(st[q+2]))
			}
			st[cnt] = int32(runs)
			if covered < NR {
				st[cnt] |= 1 << 16 // padding or columns past the strip's: zero the row
			}
		}
	}
	return p
}

// im2colRuns is Im2col for convs of row stride 1 or 2: each strip's runs
// are found once (runTable) and copied for every channel by im2colSegs
// (stride 1) or im2colSegsS2 (stride 2: every other input).
func im2colRuns(dst, x []float32, g *pack.Conv2D, grp, j0, n int) {
	k := g.K()
	cg := g.C / g.Group
	hw := g.H * g.W
	planes := x[grp*cg*hw : (grp+1)*cg*hw]
	var st [runStream]int32
	for t := 0; t < n; t += NR {
		strip := dst[t*k : t*k+NR*k]
		runTable(&st, g, j0+t, min(NR, n-t))
		im2colSegsStride(&strip[0], &planes[0], hw, cg, &st[0], g.KH*g.KW, g.SW)
	}
}

// im2colSegsStride copies a strip's runs with the kernel of the row stride.
func im2colSegsStride(dst, plane *float32, hw, cg int, segs *int32, taps, stride int) {
	if stride == 2 {
		im2colSegsS2(dst, plane, hw, cg, segs, taps)
		return
	}
	im2colSegs(dst, plane, hw, cg, segs, taps)
}

// im2colSegsGeneric is the portable twin of the strip copy, the reference
// loop (segs: per tap a count n (bit 16: zero the row), then n runs (off,
// at, mask), the mask's set bits a prefix of length len):
//
//	for c < cg, t < taps:
//		row := dst[(c*taps+t)*NR:][:NR]; if bit 16 { row[:] = 0 }
//		for each run (off, at, len) of tap t: row[at+i] = plane[c*hw+off+i] for i < len
func im2colSegsGeneric(dst, plane *float32, hw, cg int, segs *int32, taps int) {
	copyRuns(dst, plane, hw, cg, segs, taps, 1)
}

// RunPlan holds the run streams (runTable) of every NR-column strip of a
// conv's output (row stride 1 or 2), so that a batch of images (and every run of a
// layer) reuses them instead of rebuilding them per strip.
type RunPlan struct {
	g       pack.Conv2D
	streams []int32
	at      []int // strip s's stream starts at streams[at[s]]
}

// NewRunPlan returns the run plan of g, or nil when Im2col does not copy
// runs for it (row stride above 2, or more taps than a strip table holds).
func NewRunPlan(g *pack.Conv2D) *RunPlan {
	if g.SW > 2 || g.KH*g.KW > maxTaps {
		return nil
	}
	ohw := g.OH * g.OW
	p := &RunPlan{g: *g}
	var st [runStream]int32
	for j := 0; j < ohw; j += NR {
		n := runTable(&st, g, j, min(NR, ohw-j))
		p.at = append(p.at, len(p.streams))
		p.streams = append(p.streams, st[:n]...)
	}
	// Slack: im2colSegsGeneric views runStream values from a strip's start.
	p.streams = append(p.streams, make([]int32, runStream)...)
	return p
}

// Fits says whether the plan was made for geometry g.
func (p *RunPlan) Fits(g *pack.Conv2D) bool { return p != nil && p.g == *g }

// Im2colPlanned is Im2col with the strips' run streams taken from p (made
// for g by NewRunPlan); j0 must be a multiple of NR.
func Im2colPlanned(dst, x []float32, p *RunPlan, grp, j0, n int) {
	g := &p.g
	if j0%NR != 0 {
		panic("avx.Im2colPlanned: j0 is not a strip boundary")
	}
	k := g.K()
	cg := g.C / g.Group
	hw := g.H * g.W
	planes := x[grp*cg*hw : (grp+1)*cg*hw]
	for t := 0; t < n; t += NR {
		strip := dst[t*k : t*k+NR*k]
		st := p.streams[p.at[(j0+t)/NR]:]
		im2colSegsStride(&strip[0], &planes[0], hw, cg, &st[0], g.KH*g.KW, g.SW)
	}
}

// im2colSegsS2Generic is the portable twin of the stride-2 strip copy, the
// reference loop (segs as for im2colSegsGeneric; a run reads every other
// input):
//
//	for c < cg, t < taps:
//		row := dst[(c*taps+t)*NR:][:NR]; if bit 16 { row[:] = 0 }
//		for each run (off, at, len) of tap t: row[at+i] = plane[c*hw+off+2*i] for i < len
func im2colSegsS2Generic(dst, plane *float32, hw, cg int, segs *int32, taps int) {
	copyRuns(dst, plane, hw, cg, segs, taps, 2)
}

// copyRuns is the loop of both portable strip copies: runs read every
// stride-th input.
func copyRuns(dst, plane *float32, hw, cg int, segs *int32, taps, stride int) {
	if cg == 0 || taps == 0 {
		return
	}
	d := unsafe.Slice(dst, cg*taps*NR)
	x := unsafe.Slice(plane, cg*hw)
	st := unsafe.Slice(segs, runStream)
	for c := 0; c < cg; c++ {
		pl := x[c*hw : c*hw+hw]
		p := 0
		for t := 0; t < taps; t++ {
			row := d[(c*taps+t)*NR : (c*taps+t+1)*NR]
			n := int(st[p] & 0xffff)
			if st[p]&(1<<16) != 0 {
				clear(row)
			}
			p++
			for ; n > 0; n-- {
				off, at := int(st[p]), int(st[p+1])
				ln := bits.OnesCount32(uint32(st[p+2]))
				if stride == 1 {
					copy(row[at:at+ln], pl[off:off+ln])
				} else {
					for i := range ln {
						row[at+i] = pl[off+stride*i]
					}
				}
				p += 3
			}
		}
	}
}
