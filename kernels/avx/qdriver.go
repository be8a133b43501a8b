package avx

import (
	"encoding/binary"
	"unsafe"
)

// QLayer is a quantized layer's epilogue prepared for the micro-kernel:
// per-channel constants (indexed by row, or by column with Col) and the
// output format. Act, when set, is an activation the clamp cannot express:
// it runs in Go on the float tile (after the bias and residual adds), and
// Quantize then makes the output code (kilnq.Layer.QuantizeOut).
type QLayer struct {
	Corr     []int32   // off·Σw per channel
	Mult     []float32 // float32(x_scale·w_scale) per channel
	Bias     []float32 // per channel, nil for none
	Col      bool
	Clamp    bool
	Lo, Hi   float32
	Quant    bool // codes out (y_scale > 0)
	Unsigned bool
	YScale   float32
	YZero    int32
	Act      func(float32) float32
	ActRow   func([]float32) // optional: Act over a row of the float tile (vectorized), used instead of Act where set
	Quantize func(float32) byte
	// QuantizeRow, optional: Quantize over a row (vectorized), used instead where set.
	QuantizeRow func(dst []byte, src []float32)
	RCorr       []int32 // with Col: per row (activation row sums ×128), indexed from r0
	// ZScale > 0: the residual is 8-bit codes (QOut.ResidQ; int8 with
	// ZSigned, else uint8) whose value is float32(code − ZZero)·ZScale, as
	// DequantizeLinear's (ops/kilnq's quantized residual).
	ZScale  float32
	ZZero   int32
	ZSigned bool
	// MScale > 0: the mid quantization (QEpi's QMid; ops/kilnq's m_scale)
	// over codes whose range minus the zero point is [MQLo, MQHi]; MScale
	// must satisfy MidOK.
	MScale     float32
	MQLo, MQHi float32
}

// ResidualValue is the value the epilogue adds for residual code c (with
// ZScale > 0): DequantizeLinear's, float32(c − ZZero)·ZScale.
func (l *QLayer) ResidualValue(c byte) float32 {
	v := int32(c)
	if l.ZSigned {
		v = int32(int8(c))
	}
	return float32(v-l.ZZero) * l.ZScale
}

// QOut is the output of a quantized GEMM block: float32 (F) or codes (Q),
// row stride Ld elements, with the residual (float32 Resid, or codes
// ResidQ with QLayer.ZScale > 0) indexed alike.
type QOut struct {
	F      []float32
	Q      []byte
	Resid  []float32
	ResidQ []byte
	Ld     int
	Jump   int // QGemmPool: bytes from one image's pooled planes to the next's, less a plane
}

// QGemm computes rows [0,m), columns [0,n) of a quantized product: packed
// int8 weights or activations ap (MR-row strips, depth k) times packed u8
// bp (NR-column strips); channel constants are indexed from r0 (rows) or c0
// (columns), the output and residual from their top left (r0, c0).
func QGemm(k int, ap []int8, m int, bp []uint8, n int, o *QOut, l *QLayer, r0, c0 int) {
	k4 := K4(k)
	var q QEpi
	base := QClamp * b2i(l.Clamp)
	if l.Bias != nil {
		base |= QBias
	}
	if l.Col {
		base |= QCol
		if l.RCorr != nil {
			base |= QRCorr
		}
	}
	if l.Quant {
		base |= QQuant
		q.YScale, q.YZero = l.YScale, l.YZero
		lo, hi := float32(-128), float32(127)
		if l.Unsigned {
			base |= QUnsigned
			lo, hi = 0, 255
		}
		q.QLo, q.QHi = lo-float32(l.YZero), hi-float32(l.YZero)
	}
	q.Lo, q.Hi = l.Lo, l.Hi
	if l.Quant && !DivideEpilogue {
		base = q.useRecip(base)
	}
	if o.ResidQ != nil {
		q.ZScale, q.ZZero = l.ZScale, l.ZZero
	}
	if l.MScale > 0 {
		if !MidOK(l.MScale) {
			panic("avx.QGemm: mid quantization scale outside MidOK's range")
		}
		base |= QMid
		q.setMid(l.MScale, l.MQLo, l.MQHi)
	}
	var tile *[MR * NR]float32 // float tile for a Go activation; allocated only then (it escapes)
	if l.Act != nil {
		tile = new([MR * NR]float32)
	}
	// The last strip's last few columns (7×7 outputs: 49 = 32 + 16 + 1)
	// one column at a time for all rows after the tiles (qgemmColumns),
	// instead of on the 8×8 kernel: columns [cj0, nrLast) of strip tLast.
	tLast := (n - 1) / NR * NR
	nrLast, cj0 := n-tLast, -1
	if l.Act == nil && n > 0 && qcolOK() {
		switch {
		case nrLast <= qColMax:
			cj0 = 0
		case nrLast > NR/2 && nrLast-NR/2 <= qColMax:
			cj0 = NR / 2
		}
	}
	for s := 0; s < m; s += MR {
		mr := min(MR, m-s)
		as := ap[s*4*k4 : (s+MR)*4*k4]
		for t := 0; t < n; t += NR {
			nr := min(NR, n-t)
			if t == tLast && cj0 >= 0 {
				if cj0 == 0 {
					continue
				}
				nr = cj0
			}
			bs := bp[t*4*k4 : (t+NR)*4*k4]
			if l.Act != nil {
				off := qTile(&q, o, l, base, r0, c0, s, t, mr, nr)
				q.Flags = base &^ (QClamp | QQuant | QResid | QMid) // the float tile; the rest in Go
				QMicro(k4, as, bs, unsafe.Pointer(tile), NR, mr, nr, &q)
				for i := 0; i < mr; i++ {
					row := tile[i*NR : i*NR+nr]
					at := off + i*o.Ld
					if base&QMid != 0 {
						for j, y := range row {
							row[j] = q.mid(y)
						}
					}
					if o.Resid != nil {
						for j, r := range o.Resid[at : at+nr] {
							row[j] += r
						}
					} else if o.ResidQ != nil {
						for j, c := range o.ResidQ[at : at+nr] {
							row[j] += l.ResidualValue(c)
						}
					}
					if l.ActRow != nil {
						l.ActRow(row)
					} else {
						for j, y := range row {
							row[j] = l.Act(y)
						}
					}
					if l.Quant && l.QuantizeRow != nil {
						l.QuantizeRow(o.Q[at:at+nr], row)
					} else if l.Quant {
						for j, y := range row {
							o.Q[at+j] = l.Quantize(y)
						}
					} else {
						copy(o.F[at:at+nr], row)
					}
				}
				continue
			}
			off := qTile(&q, o, l, base, r0, c0, s, t, mr, nr)
			var p unsafe.Pointer
			if l.Quant {
				p = unsafe.Pointer(&o.Q[off])
			} else {
				p = unsafe.Pointer(&o.F[off])
			}
			if nr <= 3*NR/4 && qMicroNarrow(k4, as, bs, p, o.Ld, mr, nr, &q) {
				continue // a narrow tail strip: half-width kernels
			}
			QMicro(k4, as, bs, p, o.Ld, mr, nr, &q)
		}
	}
	if cj0 >= 0 {
		qgemmColumns(k4, ap, m, bp[tLast*4*k4:(tLast+NR)*4*k4], cj0, nrLast, &q, o, l, base, r0, c0, tLast)
	}
}

// qTile points q at tile (s, t) (mr × nr) of QGemm's block: its channel
// constants, residual and flags (base and the residual's); it returns the
// tile's offset in the output (and residual), whose bounds it checks.
func qTile(q *QEpi, o *QOut, l *QLayer, base, r0, c0, s, t, mr, nr int) int {
	ch := r0 + s
	if l.Col {
		ch = c0 + t
	}
	q.Corr, q.Mult = &l.Corr[ch], &l.Mult[ch]
	if base&QRCorr != 0 {
		_ = l.RCorr[r0+s+mr-1]
		q.RCorr = &l.RCorr[r0+s]
	}
	if l.Bias != nil {
		q.Bias = &l.Bias[ch]
	}
	off := (r0+s)*o.Ld + c0 + t
	last := off + (mr-1)*o.Ld + nr - 1
	q.Flags = base
	q.Resid = nil
	switch {
	case o.Resid != nil:
		q.Flags |= QResid
		_ = o.Resid[last]
		q.Resid = unsafe.Pointer(&o.Resid[off])
	case o.ResidQ != nil:
		q.Flags |= QResid | QZCode
		if l.ZSigned {
			q.Flags |= QZSigned
		}
		_ = o.ResidQ[last]
		q.Resid = unsafe.Pointer(&o.ResidQ[off])
	}
	if l.Quant {
		_ = o.Q[last]
	} else if o.F != nil {
		_ = o.F[last]
	}
	return off
}

// qColMax is the most columns of a strip's tail computed one at a time
// (qcol8VNNI, then the Go epilogue) instead of on the 8×8 kernel, which
// costs about as much per step whatever its columns.
const qColMax = 3

// qgemmColumns is QGemm's column pass: columns j0 ≤ j < nr of the column
// strip bs (at output column t) for all m rows, eight weight strips per
// qcol8 call (each column's quad loaded once per step for the eight), then
// q's epilogue per strip in Go (qtileEpilogue: the same results as the
// micro-kernels').
func qgemmColumns(k4 int, ap []int8, m int, bs []uint8, j0, nr int, q *QEpi, o *QOut, l *QLayer, base, r0, c0, t int) {
	var cols [qColMax][8 * MR]int32
	var acc [MR * NR]int32
	stride := 4 * MR * k4 // bytes from one weight strip to the next
	for s0 := 0; s0 < m; s0 += 8 * MR {
		g := min(8, (m-s0+MR-1)/MR) // strips in this group
		for j := j0; j < nr; j++ {
			b := &bs[4*j]
			if g == 8 {
				qcol8(k4, &ap[s0*4*k4], stride, b, &cols[j-j0][0])
				continue
			}
			for i := range g {
				qcol(k4, &ap[(s0+i*MR)*4*k4], b, &cols[j-j0][i*MR])
			}
		}
		for i := range g {
			s := s0 + i*MR
			mr := min(MR, m-s)
			for j := j0; j < nr; j++ {
				for r := range MR {
					acc[r*NR+j] = cols[j-j0][i*MR+r]
				}
			}
			off := qTile(q, o, l, base, r0, c0, s, t, mr, nr)
			var p *byte
			if l.Quant {
				p = &o.Q[off]
			} else {
				p = (*byte)(unsafe.Pointer(&o.F[off]))
			}
			qtileEpilogue(&acc, p, o.Ld, mr, j0, nr, q)
		}
	}
}

// qMicroNarrow is QMicro for a strip of nr ≤ 24 columns on the 8×16 and
// 8×8 VNNI kernels (16 columns zmm, 8 ymm; 17–24 columns as 16 + 8, the
// second from the strip's second half), with the same results; it reports
// false where the CPU lacks them (the caller runs QMicro).
func qMicroNarrow(k4 int, a []int8, b []uint8, out unsafe.Pointer, ldo, mr, nr int, q *QEpi) bool {
	if k4 < 0 || mr < 1 || mr > MR || nr < 1 || nr > 3*NR/4 || len(a) < k4*4*MR || len(b) < k4*4*NR {
		panic("avx.qMicroNarrow: bad tile")
	}
	if k4 == 0 {
		return false
	}
	pa, pb := unsafe.SliceData(a), unsafe.SliceData(b)
	if nr <= NR/2 {
		return qmicroNarrow(k4, pa, pb, (*byte)(out), ldo, mr, nr, q)
	}
	if !qmicroNarrow(k4, pa, pb, (*byte)(out), ldo, mr, NR/2, q) {
		return false
	}
	// columns 16..nr: the second half of each step, the outputs (and
	// residual, and per-column constants) 16 columns on
	esz := 4
	if q.Flags&QQuant != 0 {
		esz = 1
	}
	q2 := *q
	if q.Flags&QResid != 0 {
		zsz := 4
		if q.Flags&QZCode != 0 {
			zsz = 1
		}
		q2.Resid = unsafe.Add(q.Resid, zsz*NR/2)
	}
	if q.Flags&QCol != 0 {
		q2.Corr = (*int32)(unsafe.Add(unsafe.Pointer(q.Corr), 4*NR/2))
		q2.Mult = (*float32)(unsafe.Add(unsafe.Pointer(q.Mult), 4*NR/2))
		if q.Flags&QBias != 0 {
			q2.Bias = (*float32)(unsafe.Add(unsafe.Pointer(q.Bias), 4*NR/2))
		}
	}
	return qmicroNarrow(k4, pa, (*uint8)(unsafe.Add(unsafe.Pointer(pb), 4*NR/2)), (*byte)(unsafe.Add(out, esz*NR/2)), ldo, mr, nr-NR/2, &q2)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// PackQRows packs m rows of 8-bit activation codes (row stride k) as the
// A side, s8 = code^flip (flip 0x80 turns uint8 codes into x−128), in
// MR-row strips of 4-deep steps (zero past the edges), and stores
// 128·Σ s8 of each row in rcorr: with weights fed as u8 = w+128, that is
// the per-row part of the correction. Whole strips go through packQRows8
// 16 words at a time; the rest word by word.
func PackQRows(dst []int8, x []byte, m, k int, flip byte, rcorr []int32) {
	k4 := K4(k)
	kf := k / 4 // whole words per row
	f4 := uint32(flip) * 0x01010101
	var part [MR * 16]int32
	for s := 0; s < m; s += MR {
		strip := dst[s*4*k4 : (s+MR)*4*k4]
		if m-s < MR {
			clear(strip)
		}
		words := unsafe.Slice((*uint32)(unsafe.Pointer(&strip[0])), MR*k4)
		p0 := 0 // words packed by the block kernel
		if nb := kf / 16; m-s >= MR && nb > 0 {
			_ = x[(s+MR-1)*k+64*nb-1]
			packQRows8(strip, x[s*k:], k, nb, f4, &part)
			p0 = 16 * nb
		}
		for i := 0; i < MR && s+i < m; i++ {
			row := x[(s+i)*k : (s+i+1)*k]
			var sum int32
			if p0 > 0 {
				for _, v := range part[16*i : 16*i+16] {
					sum += v
				}
			}
			for p := p0; p < kf; p++ { // word copies: quad p of row i
				words[p*MR+i] = binary.LittleEndian.Uint32(row[4*p:]) ^ f4
			}
			for p := 4 * kf; p < 4*k4; p++ {
				var v int8
				if p < k {
					v = int8(row[p] ^ flip)
				}
				strip[(p/4)*4*MR+i*4+p%4] = v
			}
			for _, c := range row[4*p0:] {
				sum += int32(int8(c ^ flip))
			}
			rcorr[s+i] = 128 * sum
		}
	}
}

// packQRows8 packs nb blocks of 16 words (64 codes) of 8 rows (x, k bytes
// apart) into the first 16·nb steps of an A strip, flipped by f4 (XOR), and
// leaves per-row partial sums of the flipped codes as signed bytes in
// sums (16 per row: their total is the row's sum over the blocks).
func packQRows8(strip []int8, x []byte, k, nb int, f4 uint32, sums *[MR * 16]int32) {
	_, _ = strip[nb*16*4*MR-1], x[(MR-1)*k+64*nb-1]
	packQRows8Dispatch(&strip[0], &x[0], k, nb, f4, &sums[0])
}

// packQRows8Generic is the reference loop of packQRows8: word p < 16·nb of
// row i goes to strip word p·MR+i as x^f4, and sums[16i + p%16] adds its
// four bytes as int8.
func packQRows8Generic(dst *int8, x *byte, k, nb int, f4 uint32, sums *int32) {
	words := unsafe.Slice((*uint32)(unsafe.Pointer(dst)), nb*16*MR)
	xs := unsafe.Slice(x, (MR-1)*k+64*nb)
	ss := unsafe.Slice(sums, MR*16)
	clear(ss)
	for i := range MR {
		for p := range 16 * nb {
			w := binary.LittleEndian.Uint32(xs[i*k+4*p:]) ^ f4
			words[p*MR+i] = w
			ss[16*i+p%16] += int32(int8(w)) + int32(int8(w>>8)) + int32(int8(w>>16)) + int32(int8(w>>24))
		}
	}
}
