package avx

import (
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
