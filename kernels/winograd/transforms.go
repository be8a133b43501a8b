package winograd

import (
	"slices"
	"unsafe"

	"github.com/kilnml/kiln/kernels/avx"
)

// Input runs the input transform of group grp of p's tiles (16 tiles, all
// C channels) from x (the batch, NCHW) into v, which starts at the
// group's first column of the GEMMs' packed B matrices: transformed
// element (ξ, ν) of channel c and lane l goes to v[(ξ·T+ν)·vstride +
// c·StripWidth + l]. Padding taps are zeros; lanes past the last tile get
// zeros.
func Input(p *Plan, v []float32, vstride int, x []float32, grp int) {
	t := p.Kind.T()
	if grp < 0 || grp >= p.Groups || len(x) < p.N*p.C*p.H*p.W || vstride < p.C*StripWidth ||
		len(v) < (t*t-1)*vstride+(p.C-1)*StripWidth+Lanes {
		panic("winograd.Input: bad arguments")
	}
	input(p.Kind, &v[0], vstride, &x[0], &p.InIdx[grp*Lanes], &p.InMask[grp*t*t], p.C, p.H*p.W, p.W)
}

// Epi is the output transform's epilogue: y = clamp(o + bias[row] +
// resid), each part as Flags says (FlagBias, FlagResid, FlagClamp), then
// FlagPool's 2×2 maximum when the plan pools.
type Epi struct {
	Bias   []float32 // per output channel, from channel 0
	Resid  []float32 // the whole residual batch, shaped like the output
	Lo, Hi float32
	Flags  int
}

// Output runs the output transform of group grp for output channels
// [ch0, ch0+rows): the GEMM outputs are read from mb, element (ξ, ν) of
// row r and lane l at mb[(ξ·T+ν)·mstride + r·ldm + l]; results go to y
// (the whole batch output, NCHW, pooled when the plan pools).
func Output(p *Plan, y []float32, ch0, rows int, mb []float32, mstride, ldm, grp int, e *Epi) {
	t := p.Kind.T()
	flags := e.Flags &^ FlagPool
	if p.Pool {
		flags |= FlagPool
	}
	if rows <= 0 {
		return
	}
	if grp < 0 || grp >= p.Groups || ch0 < 0 || ch0+rows > p.M || len(y) < p.N*p.M*p.YHW || ldm < Lanes ||
		mstride < (rows-1)*ldm+Lanes || len(mb) < (t*t-1)*mstride+(rows-1)*ldm+Lanes ||
		(flags&FlagBias != 0 && len(e.Bias) < ch0+rows) || (flags&FlagResid != 0 && (p.Pool || len(e.Resid) < len(y))) {
		panic("winograd.Output: bad arguments")
	}
	var bias, resid *float32
	if flags&FlagBias != 0 {
		bias = &e.Bias[ch0]
	}
	if flags&FlagResid != 0 {
		resid = &e.Resid[ch0*p.YHW]
	}
	output(p.Kind, &y[ch0*p.YHW], &mb[0], mstride, ldm, rows, &p.OutIdx[grp*Lanes], &p.OutMask[grp*p.Outs], p.YHW, p.YW,
		bias, resid, e.Lo, e.Hi, flags)
}

// inputGeneric is the portable twin of the input transform kernels, the
// reference loop (k's Bᵀ program, programs.go):
//
//	for c < C:
//		d[i][j][l] = lane l's mask bit of (i, j) ? x[idx[l] + c·hw + i·w + j] : 0
//		every column j: d[·][j] = Bᵀ·d[·][j]; then every row ξ: d[ξ][·] = Bᵀ·d[ξ][·]
//		v[(ξ·T+ν)·vstride + c·StripWidth + l] = d[ξ][ν][l]
func inputGeneric(k Kind, v *float32, vstride int, x *float32, idx *int32, mask *uint16, c, hw, w int) {
	t := k.T()
	prog := inputProgram(k)
	ids := unsafe.Slice(idx, Lanes)
	ms := unsafe.Slice(mask, t*t)
	vs := unsafe.Slice(v, (t*t-1)*vstride+(c-1)*StripWidth+Lanes)
	var d [36][Lanes]float32
	var s [32][Lanes]float32
	var in, out [6]*[Lanes]float32
	for ch := 0; ch < c; ch++ {
		for i := 0; i < t; i++ {
			for j := 0; j < t; j++ {
				row := &d[i*t+j]
				for l := range row {
					row[l] = 0
					if ms[i*t+j]>>l&1 != 0 {
						row[l] = *(*float32)(unsafe.Add(unsafe.Pointer(x), 4*(int(ids[l])+ch*hw+i*w+j)))
					}
				}
			}
		}
		for j := 0; j < t; j++ {
			for i := 0; i < t; i++ {
				in[i], out[i] = &d[i*t+j], &d[i*t+j]
			}
			prog.run(s[:], in[:t], out[:t])
		}
		for i := 0; i < t; i++ {
			for j := 0; j < t; j++ {
				in[j], out[j] = &d[i*t+j], &d[i*t+j]
			}
			prog.run(s[:], in[:t], out[:t])
		}
		for q := 0; q < t*t; q++ {
			copy(vs[q*vstride+ch*StripWidth:q*vstride+ch*StripWidth+Lanes], d[q][:])
		}
	}
}

// outputGeneric is the portable twin of the output transform kernels, the
// reference loop (k's Aᵀ program, programs.go):
//
//	for r < rows:
//		s[ξ][ν][l] = mb[(ξ·T+ν)·mstride + r·ldm + l]
//		every column ν: s[0:m][ν] = Aᵀ·s[·][ν]; then every row a < m: o[a][·] = Aᵀ·s[a][·]
//		o[a][b] += bias[r] (FlagBias); += resid[idx[l] + r·yhw + a·yw + b] (FlagResid, stored lanes)
//		o[a][b] = min(max(o, lo), hi) (FlagClamp, NaN kept)
//		FlagPool: o'[pa][pb] = the first of o[2pa][2pb], o[2pa][2pb+1], o[2pa+1][2pb], o[2pa+1][2pb+1]
//			that no later one exceeds (v > max replaces: the 2×2 pool's order)
//		y[idx[l] + r·yhw + a·yw + b] = o[a][b] where lane l's mask bit of (a, b) is set
func outputGeneric(k Kind, y, mb *float32, mstride, ldm, rows int, idx *int32, mask *uint16, yhw, yw int, bias, resid *float32, lo, hi float32, flags int) {
	m, t := k.M(), k.T()
	h := m
	if flags&FlagPool != 0 {
		h = m / 2
	}
	prog := outputProgram(k)
	ids := unsafe.Slice(idx, Lanes)
	ms := unsafe.Slice(mask, h*h)
	mbs := unsafe.Slice(mb, (t*t-1)*mstride+(rows-1)*ldm+Lanes)
	var bs []float32
	if flags&FlagBias != 0 {
		bs = unsafe.Slice(bias, rows)
	}
	var d [36][Lanes]float32
	var o [16][Lanes]float32
	var s [32][Lanes]float32
	var in, out [6]*[Lanes]float32
	at := func(base *float32, off int) *float32 { return (*float32)(unsafe.Add(unsafe.Pointer(base), 4*off)) }
	for r := 0; r < rows; r++ {
		for q := 0; q < t*t; q++ {
			copy(d[q][:], mbs[q*mstride+r*ldm:q*mstride+r*ldm+Lanes])
		}
		for nu := 0; nu < t; nu++ {
			for i := 0; i < t; i++ {
				in[i] = &d[i*t+nu]
			}
			for a := 0; a < m; a++ {
				out[a] = &d[a*t+nu]
			}
			prog.run(s[:], in[:t], out[:m])
		}
		for a := 0; a < m; a++ {
			for j := 0; j < t; j++ {
				in[j] = &d[a*t+j]
			}
			for b := 0; b < m; b++ {
				out[b] = &o[a*m+b]
			}
			prog.run(s[:], in[:t], out[:m])
		}
		for q := 0; q < m*m; q++ {
			for l := range o[q] {
				v := o[q][l]
				if flags&FlagBias != 0 {
					v += bs[r]
				}
				if flags&FlagResid != 0 && ms[q]>>l&1 != 0 {
					v += *at(resid, int(ids[l])+r*yhw+(q/m)*yw+q%m)
				}
				if flags&FlagClamp != 0 {
					if v < lo {
						v = lo
					}
					if v > hi {
						v = hi
					}
				}
				o[q][l] = v
			}
		}
		if flags&FlagPool != 0 {
			for pa := 0; pa < h; pa++ {
				for pb := 0; pb < h; pb++ {
					dst := &o[pa*h+pb] // written after its taps are read: pa*h+pb <= (2pa)*m+2pb
					var mx [Lanes]float32
					for l := range mx {
						b := o[2*pa*m+2*pb][l]
						for _, v := range [3]float32{o[2*pa*m+2*pb+1][l], o[(2*pa+1)*m+2*pb][l], o[(2*pa+1)*m+2*pb+1][l]} {
							if v > b {
								b = v
							}
						}
						mx[l] = b
					}
					*dst = mx
				}
			}
		}
		for q := 0; q < h*h; q++ {
			for l, v := range o[q] {
				if ms[q]>>l&1 != 0 {
					*at(y, int(ids[l])+r*yhw+(q/h)*yw+q%h) = v
				}
			}
		}
	}
}

// Available reports whether the AVX-512 transforms can run here (CPU and
// build): the conv tactics are offered only then, since the Go twins are
// far slower than the GEMM conv they would replace.
func Available() bool { return hasAsm && slices.Contains(avx.Variants(), avx.VariantAVX512) }

// asmVariant reports whether the AVX-512 kernels run: they follow
// kernels/avx's Variant, so tests that force its variants force these too.
func asmVariant() bool { return hasAsm && avx.Variant == avx.VariantAVX512 }
