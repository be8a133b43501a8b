//go:build !noasm && amd64

package avx

import (
	"sync"
	"unsafe"

	"golang.org/x/sys/cpu"
)

// hasFMA: the AVX2 depthwise row kernels accumulate with VFMADD231PS.
var hasFMA = cpu.X86.HasFMA

func qdw3x3(x *byte, w, h int, tab *int32, out *byte, n, rows, pt, pl, s int, resid *float32, p *qdwEpi, planes int, xu, yu bool) {
	switch {
	case QVariant == QVariantVNNI && hasVBMI:
	case QVariant != QVariantGeneric && hasFMA:
		qdw3x3Padded(x, w, h, tab, out, n, rows, pt, pl, s, resid, p, planes, xu, yu)
		return
	default:
		qdw3x3Generic(x, w, h, tab, out, n, rows, pt, pl, s, resid, p, planes, xu, yu)
		return
	}
	pf := (*float32)(unsafe.Pointer(p))
	switch {
	case s == 1 && yu:
		qdw3x3U8S1VNNI(x, w, h, tab, out, n, rows, pt, pl, resid, pf, planes)
	case s == 1:
		qdw3x3S8S1VNNI(x, w, h, tab, out, n, rows, pt, pl, resid, pf, planes)
	case yu:
		qdw3x3U8S2VNNI(x, w, h, tab, out, n, rows, pt, pl, resid, pf, planes)
	default:
		qdw3x3S8S2VNNI(x, w, h, tab, out, n, rows, pt, pl, resid, pf, planes)
	}
}

func dequantize(dst *float32, src *byte, n int, zero int32, scale float32, unsigned bool) {
	switch {
	case QVariant != QVariantVNNI:
		dequantizeGeneric(dst, src, n, zero, scale, unsigned)
	case unsigned:
		dequantizeU8AVX512(dst, src, n, zero, scale)
	default:
		dequantizeS8AVX512(dst, src, n, zero, scale)
	}
}

// qdwPadBufs holds the padded planes of qdw3x3Padded (one per running call).
var qdwPadBufs sync.Pool

// qdw3x3Padded is qdw3x3 on the AVX2 row kernels: each plane copied into a
// plane padded with the zero point's code (qdwpad.go), then one kernel call
// per output row for its multiples of 8 outputs; a row's last n mod 8
// outputs are recomputed by one more call on its last 8 (rows of fewer than
// 8 outputs go through 8-output scratch rows).
func qdw3x3Padded(x *byte, w, h int, tab *int32, out *byte, n, rows, pt, pl, s int, resid *float32, p *qdwEpi, planes int, xu, yu bool) {
	ph, ldx, size := qdwPadGeometry(n, rows, s)
	bp, _ := qdwPadBufs.Get().(*[]byte)
	if bp == nil || cap(*bp) < size+ldx {
		b := make([]byte, size+ldx)
		bp = &b
	}
	buf := (*bp)[:size]
	zrow := (*bp)[size : size+ldx] // the zero point's code, for the borders
	fillBytes(zrow, byte(p.xz))
	defer qdwPadBufs.Put(bp)
	tabs := unsafe.Slice(tab, 16*planes)
	pf := (*float32)(unsafe.Pointer(p))
	var oTmp [8]byte
	var rTmp [8]float32
	for q := range planes {
		xs := unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(x), q*w*h)), w*h)
		padCodes3x3(buf, xs, w, h, pt, pl, ph, ldx, zrow)
		k := newQDWRowK(tabs[16*q:16*q+16], p.xz)
		for oh := range rows {
			xr := &buf[oh*s*ldx]
			or := unsafe.Add(unsafe.Pointer(out), (q*rows+oh)*n)
			var rr unsafe.Pointer
			if resid != nil {
				rr = unsafe.Add(unsafe.Pointer(resid), 4*(q*rows+oh)*n)
			}
			if n < 8 {
				rt := (*float32)(nil)
				if rr != nil {
					copy(rTmp[:n], unsafe.Slice((*float32)(rr), n))
					rt = &rTmp[0]
				}
				qdw3x3Row(xr, ldx, &k[0], &oTmp[0], 8, rt, pf, s, xu, yu)
				copy(unsafe.Slice((*byte)(or), n), oTmp[:n])
				continue
			}
			n8 := n &^ 7
			qdw3x3Row(xr, ldx, &k[0], (*byte)(or), n8, (*float32)(rr), pf, s, xu, yu)
			if n8 < n {
				d := n - 8
				var rd *float32
				if rr != nil {
					rd = (*float32)(unsafe.Add(rr, 4*d))
				}
				qdw3x3Row((*byte)(unsafe.Add(unsafe.Pointer(xr), d*s)), ldx, &k[0], (*byte)(unsafe.Add(or, d)), 8, rd, pf, s, xu, yu)
			}
		}
	}
}

// qdw3x3Row dispatches to the AVX2 row kernel for the stride and signs.
func qdw3x3Row(x *byte, ldx int, k *float32, out *byte, n int, resid *float32, p *float32, s int, xu, yu bool) {
	switch {
	case s == 1 && !xu && !yu:
		qdw3x3RowS8S8S1AVX2(x, ldx, k, out, n, resid, p)
	case s == 1 && !xu && yu:
		qdw3x3RowS8U8S1AVX2(x, ldx, k, out, n, resid, p)
	case s == 1 && xu && !yu:
		qdw3x3RowU8S8S1AVX2(x, ldx, k, out, n, resid, p)
	case s == 1:
		qdw3x3RowU8U8S1AVX2(x, ldx, k, out, n, resid, p)
	case !xu && !yu:
		qdw3x3RowS8S8S2AVX2(x, ldx, k, out, n, resid, p)
	case !xu && yu:
		qdw3x3RowS8U8S2AVX2(x, ldx, k, out, n, resid, p)
	case xu && !yu:
		qdw3x3RowU8S8S2AVX2(x, ldx, k, out, n, resid, p)
	default:
		qdw3x3RowU8U8S2AVX2(x, ldx, k, out, n, resid, p)
	}
}
