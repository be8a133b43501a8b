package pack

// Conv2D is the geometry of one 2-D convolution over NCHW data, resolved
// for concrete input dims.
type Conv2D struct {
	C, H, W        int // input channels and size (per image)
	M, OH, OW      int // output channels and size
	KH, KW         int
	SH, SW, DH, DW int
	PT, PL         int // begin pads (end pads only shape OH/OW)
	Group          int
}

// K is the GEMM depth of one group: Cg·KH·KW.
func (g *Conv2D) K() int { return g.C / g.Group * g.KH * g.KW }

// Pointwise reports whether the conv is a plain 1×1 stride-1 unpadded
// product, whose B matrix is the input itself (no im2col).
func (g *Conv2D) Pointwise() bool {
	return g.KH == 1 && g.KW == 1 && g.SH == 1 && g.SW == 1 && g.PT == 0 && g.PL == 0 && g.OH == g.H && g.OW == g.W
}

// Im2col packs columns [j0, j0+n) of group grp's im2col matrix of one image
// x (C×H×W) into nr-column strips: B[(c,kh,kw)][j] is the input under tap
// (kh,kw) of output position j, or 0 in the padding.
func Im2col[S Src, D Dst](dst []D, x []S, lut *[256]D, g *Conv2D, grp, j0, n, nr int) {
	k := g.K()
	cg := g.C / g.Group
	hw := g.H * g.W
	if g.Pointwise() {
		B(dst, x[grp*cg*hw+j0:], lut, k, n, hw, 1, nr)
		return
	}
	var ih0, iw0 [MaxNR]int
	for t := 0; t < n; t += nr {
		strip := dst[t*k : t*k+nr*k]
		cols := min(nr, n-t)
		for j := 0; j < nr; j++ {
			jj := j0 + t + min(j, cols-1)
			oh, ow := jj/g.OW, jj%g.OW
			ih0[j], iw0[j] = oh*g.SH-g.PT, ow*g.SW-g.PL
		}
		p := 0
		for c := 0; c < cg; c++ {
			plane := x[(grp*cg+c)*hw : (grp*cg+c+1)*hw]
			for kh := 0; kh < g.KH; kh++ {
				for kw := 0; kw < g.KW; kw++ {
					d := strip[p*nr : p*nr+nr]
					for j := range d {
						ih, iw := ih0[j]+kh*g.DH, iw0[j]+kw*g.DW
						if j < cols && uint(ih) < uint(g.H) && uint(iw) < uint(g.W) {
							d[j] = load(plane[ih*g.W+iw], lut)
						} else {
							d[j] = 0
						}
					}
					p++
				}
			}
		}
	}
}
