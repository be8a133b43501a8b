package avx

import (
	"encoding/binary"
	"unsafe"

	"github.com/kilnml/kiln/kernels/pack"
)

// Channel-major INT8 im2col, depth in ONNX order (c, kh, kw): for convs
// with fewer than 4 input channels per group, where channels-last quads
// would pad the depth up to 4× (a 1-channel 3×3 conv: 9 → 36).

// QIm2col packs columns [j0, j0+n) of group grp's im2col matrix of one
// image of 8-bit codes x (C×H×W) in NR-column strips of 4-deep steps as u8:
// u = code^flip (flip 0x80 turns int8 codes into x+128), pad (the zero
// point's u) in the padding and past the depth. Columns past n in the last
// strip are left unwritten (the micro-kernel masks them).
func QIm2col(dst []uint8, x []byte, g *pack.Conv2D, grp, j0, n int, flip, pad byte) {
	if g.OW < NR && g.KH*g.KW <= maxTaps {
		qim2colTable(dst, x, g, grp, j0, n, flip, pad)
		return
	}
	k := g.K()
	k4 := K4(k)
	cg := g.C / g.Group
	hw := g.H * g.W
	var segs [NR]segment
	for t := 0; t < n; t += NR {
		strip := dst[t*4*k4 : (t+NR)*4*k4]
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
					d := strip[(p/4)*4*NR+p%4:]
					for _, sg := range segs[:ns] {
						ih := sg.oh*g.SH - g.PT + kh*g.DH
						if uint(ih) >= uint(g.H) {
							for o := sg.at; o < sg.at+sg.n; o++ {
								d[4*o] = pad
							}
							continue
						}
						row := plane[ih*g.W : ih*g.W+g.W]
						iw0 := sg.ow*g.SW - g.PL + kw*g.DW
						lo, hi := validRange(iw0, g.SW, g.W, sg.n)
						for o := 0; o < lo; o++ {
							d[4*(sg.at+o)] = pad
						}
						if hi > lo {
							src := row[iw0+lo*g.SW : iw0+(hi-1)*g.SW+1]
							out := d[4*(sg.at+lo) : 4*(sg.at+hi-1)+1]
							for o := 0; o < hi-lo; o++ {
								out[4*o] = src[o*g.SW] ^ flip
							}
						}
						for o := max(hi, lo); o < sg.n; o++ {
							d[4*(sg.at+o)] = pad
						}
					}
					p++
				}
			}
		}
		for ; p < 4*k4; p++ { // depth padding
			d := strip[(p/4)*4*NR+p%4:]
			for o := 0; o < cols; o++ {
				d[4*o] = pad
			}
		}
	}
}

func qim2colTable(dst []uint8, x []byte, g *pack.Conv2D, grp, j0, n int, flip, pad byte) {
	k := g.K()
	k4 := K4(k)
	cg := g.C / g.Group
	hw := g.H * g.W
	taps := g.KH * g.KW
	var tab [maxTaps][NR]int32
	var none [NR]int32
	for i := range none {
		none[i] = -1
	}
	xs := x[grp*cg*hw : (grp+1)*cg*hw]
	fill := uint32(pad) * 0x01010101
	for t := 0; t < n; t += NR {
		strip := unsafe.Slice((*uint32)(unsafe.Pointer(&dst[t*4*k4])), NR*k4)
		cols := min(NR, n-t)
		tapTable(&tab, g, j0+t, cols)
		for p4 := 0; p4 < k4; p4++ {
			// the four depths of this quad: plane offset and tap table
			var base [4]int
			var tq [4]*[NR]int32
			for q := 0; q < 4; q++ {
				kk := 4*p4 + q
				if kk >= k {
					tq[q] = &none
					continue
				}
				base[q], tq[q] = (kk/taps)*hw, &tab[kk%taps]
			}
			d := strip[p4*NR : p4*NR+cols]
			t0, t1, t2, t3 := tq[0][:cols], tq[1][:cols], tq[2][:cols], tq[3][:cols]
			for j := range d {
				v := fill
				if i := t0[j]; i >= 0 {
					v = v&^0xff | uint32(xs[base[0]+int(i)]^flip)
				}
				if i := t1[j]; i >= 0 {
					v = v&^0xff00 | uint32(xs[base[1]+int(i)]^flip)<<8
				}
				if i := t2[j]; i >= 0 {
					v = v&^0xff0000 | uint32(xs[base[2]+int(i)]^flip)<<16
				}
				if i := t3[j]; i >= 0 {
					v = v&^0xff000000 | uint32(xs[base[3]+int(i)]^flip)<<24
				}
				d[j] = v
			}
		}
	}
}

// Row-quad INT8 im2col, for convs with fewer than 4 channels per group and
// kernels at least 3 wide without horizontal dilation (first layers: one
// gray or three color channels). Depth is ordered (c, kh, kw) with kw
// padded to KW4, a multiple of 4, so that a quad is 4 consecutive bytes of
// one input row: one unaligned 32-bit load from an image padded once per
// run (the border and the flip applied there), instead of four byte
// gathers. The padded taps have zero weights; the bytes they read (real
// input or padding) do not change the sum. A 3×3 conv on one channel is 12
// deep instead of 9: the same three VNNI steps.

// KW4 is the padded kernel width of the row-quad order.
func KW4(kw int) int { return (kw + 3) &^ 3 }

// QRowsDepth is the depth of the row-quad order: cg × KH × KW4.
func QRowsDepth(cg, kh, kw int) int { return cg * kh * KW4(kw) }

// ReorderQWeightsRows turns m×(cg·kh·kw) int8 weights (ONNX order) into
// m×(cg·kh·KW4(kw)), zero in the padded taps.
func ReorderQWeightsRows(w []int8, m, cg, kh, kw int) []int8 {
	kw4 := KW4(kw)
	out := make([]int8, m*cg*kh*kw4)
	for i := 0; i < m*cg*kh; i++ {
		copy(out[i*kw4:i*kw4+kw], w[i*kw:(i+1)*kw])
	}
	return out
}

// QPadSize is the padded plane of the row-quad im2col: ph rows of pw bytes,
// enough for every tap of every output position plus the 4-byte loads.
func QPadSize(g *pack.Conv2D) (ph, pw int) {
	ph = max(g.PT+g.H, (g.OH-1)*g.SH+(g.KH-1)*g.DH+1)
	pw = max(g.PL+g.W, (g.OW-1)*g.SW+KW4(g.KW))
	return ph, pw
}

// QPadImage writes group grp of one image of 8-bit codes x (C×H×W) into
// dst as cg padded planes (QPadSize): u = code^flip inside, pad around.
func QPadImage(dst []byte, x []byte, g *pack.Conv2D, grp int, flip, pad byte) {
	cg := g.C / g.Group
	ph, pw := QPadSize(g)
	dst = dst[:cg*ph*pw]
	for c := 0; c < cg; c++ {
		plane := dst[c*ph*pw : (c+1)*ph*pw]
		src := x[(grp*cg+c)*g.H*g.W : (grp*cg+c+1)*g.H*g.W]
		for r := 0; r < ph; r++ {
			row := plane[r*pw : (r+1)*pw]
			ih := r - g.PT
			if ih < 0 || ih >= g.H {
				for i := range row {
					row[i] = pad
				}
				continue
			}
			for i := 0; i < g.PL; i++ {
				row[i] = pad
			}
			flipCopy(row[g.PL:g.PL+g.W], src[ih*g.W:(ih+1)*g.W], flip)
			for i := g.PL + g.W; i < pw; i++ {
				row[i] = pad
			}
		}
	}
}

// QIm2colRows packs columns [j0, j0+n) of the row-quad im2col matrix of one
// padded group image (QPadImage) in NR-column strips of quads. Columns past
// n in the last strip are left unwritten (the micro-kernel masks them).
func QIm2colRows(dst []uint8, xp []byte, g *pack.Conv2D, j0, n int) {
	cg := g.C / g.Group
	ph, pw := QPadSize(g)
	q := KW4(g.KW) / 4
	k4 := cg * g.KH * q
	xp = xp[:cg*ph*pw]
	if rows := cg * g.KH; rows <= maxTaps {
		// per strip, a table of each column's byte offset per (c, kh),
		// then q gathered words per row (AVX-512 gathers where available)
		var tab [maxTaps][NR]int32
		var rowOff [maxTaps]int32
		for r := range rows {
			rowOff[r] = int32(r/g.KH*ph*pw + r%g.KH*g.DH*pw)
		}
		sh, sw, ow0 := int32(g.SH*pw), int32(g.SW), g.OW
		if g.SW <= 2 {
			// stride 1 or 2: a run of consecutive output columns reads
			// overlapping windows of one input row (quad i 4i bytes on)
			for t := 0; t < n; t += NR {
				strip := unsafe.Slice((*uint32)(unsafe.Pointer(&dst[t*4*k4])), NR*k4)
				cols := min(NR, n-t)
				for at := 0; at < cols; {
					jj := j0 + t + at
					oh, ow := jj/ow0, jj%ow0
					run := min(cols-at, ow0-ow)
					o := oh*g.SH*pw + ow*g.SW
					for r, d := range rowOff[:rows] {
						for i := 0; i < q; i++ {
							p := (r*q + i) * NR
							slideQuads(strip[p+at:p+at+run], xp[o+int(d)+4*i:], run, g.SW)
						}
					}
					at += run
				}
			}
			return
		}
		for t := 0; t < n; t += NR {
			strip := unsafe.Slice((*uint32)(unsafe.Pointer(&dst[t*4*k4])), NR*k4)
			cols := min(NR, n-t)
			oh, ow := (j0+t)/ow0, (j0+t)%ow0 // then stepped: no division per column
			for j := range NR {
				if j >= cols {
					for r := range rows {
						tab[r][j] = -1
					}
					continue
				}
				o := int32(oh)*sh + int32(ow)*sw
				for r, d := range rowOff[:rows] {
					tab[r][j] = o + d
				}
				if ow++; ow == ow0 {
					oh, ow = oh+1, 0
				}
			}
			gatherQuads(strip, xp, &tab, rows, q, 4, 0)
		}
		return
	}
	var base [NR]int
	for t := 0; t < n; t += NR {
		strip := unsafe.Slice((*uint32)(unsafe.Pointer(&dst[t*4*k4])), NR*k4)
		cols := min(NR, n-t)
		for j := 0; j < cols; j++ {
			jj := j0 + t + j
			base[j] = (jj/g.OW*g.SH)*pw + jj%g.OW*g.SW
		}
		b := base[:cols]
		p := 0
		for c := 0; c < cg; c++ {
			for kh := 0; kh < g.KH; kh++ {
				for i := 0; i < q; i++ {
					src := xp[c*ph*pw+kh*g.DH*pw+4*i:]
					_ = src[b[cols-1]+3]
					d := strip[p*NR : p*NR+cols]
					for j, o := range b {
						d[j] = binary.LittleEndian.Uint32(src[o:])
					}
					p++
				}
			}
		}
	}
}

// flipCopy sets dst[i] = src[i] ^ flip, 8 bytes at a time.
func flipCopy(dst, src []byte, flip byte) {
	dst = dst[:len(src)]
	f8 := uint64(flip) * 0x0101010101010101
	i := 0
	for ; i+8 <= len(src); i += 8 {
		binary.LittleEndian.PutUint64(dst[i:], binary.LittleEndian.Uint64(src[i:])^f8)
	}
	for ; i < len(src); i++ {
		dst[i] = src[i] ^ flip
	}
}
