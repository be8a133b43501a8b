package avx

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/kernels/f32"
	"github.com/kilnml/kiln/ops/kiln"
	"github.com/kilnml/kiln/ops/kilnq"
)

// qvariantNames names the INT8 micro-kernels in subtests, by QVariant value.
var qvariantNames = []string{QVariantGeneric: "generic", QVariantVNNI: "vnni", QVariantAVX2: "avx2"}

func forEachQVariant(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	saved := QVariant
	defer func() { QVariant = saved }()
	for _, v := range QVariants() {
		QVariant = v
		t.Run(qvariantNames[v], f)
	}
}

// qcase is one quantized product checked against kilnq.Layer: m output
// channels (weights rows), n positions, depth k.
type qcase struct {
	m, n, k  int
	unsigned bool // uint8 activations with a zero point (else int8)
	out      ir.DType
	act      string
	bias     bool
	resid    bool
	zcode    ir.DType // with resid: int8 or uint8 residual codes (z_scale > 0), else float32
}

func (c qcase) run(t *testing.T, r *rand.Rand, gemm bool) { c.runMid(t, r, gemm, false) }

// runMid is run, with mid: a mid quantization (ops/kilnq's m_scale) over
// the output codes (c.out int8 or uint8).
func (c qcase) runMid(t *testing.T, r *rand.Rand, gemm, mid bool) {
	w := make([]int8, c.m*c.k)
	for i := range w {
		w[i] = int8(r.IntN(256) - 128)
	}
	x := make([]byte, c.k*c.n) // x[p][j] (conv) / x[j][p] (gemm)
	for i := range x {
		x[i] = byte(r.IntN(256))
	}
	l := &kilnq.Layer{XScale: 0.02, WScales: make([]float32, c.m), YScale: 0, Act: kiln.Activation{Kind: c.act}, OutType: ir.Float32}
	if c.act == "Clip" {
		l.Act.Alpha, l.Act.Beta = -3, 4
	}
	var xz int32
	if c.unsigned {
		xz = 117
		l.XZero = xz
	}
	for i := range l.WScales {
		l.WScales[i] = 0.001 + 0.01*r.Float32()
	}
	if c.out != ir.Float32 {
		l.YScale, l.OutType = 0.05, c.out
		if c.out == ir.Uint8 {
			l.YZero = 100
		}
	}
	if mid { // a scale that saturates some sums at both ends, zero point off centre
		l.MScale, l.MZero = 0.013, -3
		if c.out == ir.Uint8 {
			l.MZero = 140
		}
	}
	bias := make([]float32, c.m)
	for i := range bias {
		bias[i] = float32(r.NormFloat64())
	}
	code := func(j, p int) int32 { // x − xz at position j, depth p
		v := x[p*c.n+j]
		if gemm {
			v = x[j*c.k+p]
		}
		if c.unsigned {
			return int32(v) - xz
		}
		return int32(int8(v))
	}
	// Output: conv Y[ch][j] (ld n); gemm Y[j][ch] (ld m).
	ld := c.n
	if gemm {
		ld = c.m
	}
	size := c.m * c.n
	resid := make([]float32, size)
	for i := range resid {
		resid[i] = float32(r.NormFloat64())
	}
	resid[0] = float32(math.NaN())
	var residQ []byte // codes, and their values in resid
	if c.zcode != 0 {
		l.ZScale, l.ZZero = 0.037, -5
		if c.zcode == ir.Uint8 {
			l.ZZero = 131
		}
		residQ = make([]byte, size)
		for i := range residQ {
			residQ[i] = byte(r.IntN(256))
			v := float32(residQ[i])
			if c.zcode == ir.Int8 {
				v = float32(int8(residQ[i]))
			}
			resid[i] = l.ResidualValue(v)
		}
	}
	want := make([]float32, size)
	wantQ := make([]byte, size)
	for ch := 0; ch < c.m; ch++ {
		for j := 0; j < c.n; j++ {
			var acc int32
			for p := 0; p < c.k; p++ {
				acc += code(j, p) * int32(w[ch*c.k+p])
			}
			at := ch*ld + j
			if gemm {
				at = j*ld + ch
			}
			var b, z float32
			if c.bias {
				b = bias[ch]
			}
			if c.resid {
				z = resid[at]
			}
			y := l.Epilogue(float32(acc), ch, b, z)
			want[at] = y
			if l.YScale != 0 {
				wantQ[at] = byte(l.QuantizeOut(y))
			}
		}
	}
	// Prepare the layer.
	ql := &QLayer{Mult: make([]float32, c.m), Col: gemm}
	for i := range ql.Mult {
		ql.Mult[i] = l.XScale * l.WScales[i]
	}
	if c.bias {
		ql.Bias = bias
	}
	switch c.act {
	case "":
	case "Relu":
		ql.Clamp, ql.Lo, ql.Hi = true, 0, float32(math.Inf(1))
	case "Clip":
		ql.Clamp, ql.Lo, ql.Hi = true, l.Act.Alpha, l.Act.Beta
	default:
		a := l.Act
		ql.Act = func(y float32) float32 { return f32.Act32(&a, y) }
		ql.Quantize = func(y float32) byte { return byte(l.QuantizeOut(y)) }
	}
	if l.YScale != 0 {
		ql.Quant, ql.Unsigned, ql.YScale, ql.YZero = true, c.out == ir.Uint8, l.YScale, l.YZero
	}
	if mid {
		ql.MScale = l.MScale
		ql.MQLo, ql.MQHi = l.MidBounds()
	}
	o := &QOut{Ld: ld}
	const g = 41
	var fbuf []float32
	var qbuf []byte
	if ql.Quant {
		qbuf = make([]byte, g+size+g)
		for i := range qbuf {
			qbuf[i] = 0xA5
		}
		o.Q = qbuf[g : g+size]
	} else {
		fbuf = make([]float32, g+size+g)
		for i := range fbuf {
			fbuf[i] = 777
		}
		o.F = fbuf[g : g+size]
	}
	switch {
	case c.resid && c.zcode != 0:
		o.ResidQ = residQ
		ql.ZScale, ql.ZZero, ql.ZSigned = l.ZScale, l.ZZero, c.zcode == ir.Int8
	case c.resid:
		o.Resid = resid
	}
	var flip byte
	if !c.unsigned {
		flip = 0x80
	}
	if !gemm {
		ap := make([]int8, QASize(c.m, c.k))
		sums := PackQA(ap, w, c.m, c.k)
		off := 128 + xz
		if c.unsigned {
			off = xz
		}
		ql.Corr = make([]int32, c.m)
		for i, s := range sums {
			ql.Corr[i] = off * s
		}
		u := make([]byte, len(x))
		for i, v := range x {
			u[i] = v ^ flip
		}
		bp := make([]uint8, QBSize(c.k, c.n))
		PackQB(bp, u, c.k, c.n, c.n, 1, byte(off))
		QGemm(c.k, ap, c.m, bp, c.n, o, ql, 0, 0)
	} else {
		// A: activations s8 = code^flip' (flip' 0x80 for uint8), B: weights u8 = w+128.
		fl := byte(0)
		delta := int32(0)
		if c.unsigned {
			fl, delta = 0x80, 128
		}
		ap := make([]int8, QASize(c.n, c.k))
		ql.RCorr = make([]int32, c.n)
		PackQRows(ap, x, c.n, c.k, fl, ql.RCorr)
		wu := make([]byte, len(w)) // wᵀ as k×m u8
		for ch := 0; ch < c.m; ch++ {
			for p := 0; p < c.k; p++ {
				wu[p*c.m+ch] = byte(w[ch*c.k+p]) ^ 0x80
			}
		}
		bp := make([]uint8, QBSize(c.k, c.m))
		PackQB(bp, wu, c.k, c.m, c.m, 1, 128)
		ql.Corr = make([]int32, c.m)
		for ch := 0; ch < c.m; ch++ {
			var s int32
			for p := 0; p < c.k; p++ {
				s += int32(w[ch*c.k+p])
			}
			ql.Corr[ch] = (xz - delta) * s
		}
		QGemm(c.k, ap, c.n, bp, c.m, o, ql, 0, 0)
	}
	for i := 0; i < g; i++ {
		if ql.Quant && (qbuf[i] != 0xA5 || qbuf[g+size+i] != 0xA5) || !ql.Quant && (fbuf[i] != 777 || fbuf[g+size+i] != 777) {
			t.Fatalf("%+v: guard band written", c)
		}
	}
	for i := 0; i < size; i++ {
		if ql.Quant {
			if o.Q[i] != wantQ[i] {
				t.Fatalf("%+v gemm %v: code %d = %d, want %d", c, gemm, i, o.Q[i], wantQ[i])
			}
		} else if math.Float32bits(o.F[i]) != math.Float32bits(want[i]) && !(o.F[i] == 0 && want[i] == 0) {
			t.Fatalf("%+v gemm %v: element %d = %v, want %v", c, gemm, i, o.F[i], want[i])
		}
	}
}

// The mid quantization (QMid) in every variant and path: full and narrow
// tiles, the column pass (49 = 32 + 16 + 1 columns), the Go activation,
// residual codes and floats, per-row (conv) and per-column (gemm) constants.
func TestQGemmMid(t *testing.T) {
	forEachQVariant(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(23, 24))
		for _, c := range []qcase{
			{8, 32, 4, false, ir.Int8, "Relu", true, false, 0},
			{9, 33, 7, true, ir.Uint8, "Relu", true, true, ir.Uint8},
			{17, 70, 77, false, ir.Int8, "Clip", true, true, ir.Int8},
			{13, 45, 64, true, ir.Uint8, "HardSwish", false, true, ir.Uint8},
			{13, 49, 64, true, ir.Uint8, "", true, true, ir.Uint8},
			{9, 24, 40, false, ir.Uint8, "Relu", true, true, 0},
			{16, 8, 300, true, ir.Int8, "", true, true, ir.Int8},
		} {
			for _, gemm := range []bool{false, true} {
				c.runMid(t, r, gemm, true)
			}
		}
	})
}

func TestQGemmBitExact(t *testing.T) {
	forEachQVariant(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(21, 22))
		for _, c := range []qcase{
			{1, 1, 1, false, ir.Float32, "", false, false, 0},
			{8, 32, 4, false, ir.Int8, "Relu", true, false, 0},
			{9, 33, 7, true, ir.Uint8, "Relu", true, true, 0},
			{17, 70, 77, false, ir.Int8, "Clip", true, true, 0},
			{5, 31, 300, true, ir.Float32, "", true, true, 0},
			{13, 45, 64, false, ir.Float32, "Sigmoid", true, true, 0},
			{13, 45, 64, true, ir.Uint8, "HardSwish", false, true, 0},
			{3, 17, 2000, false, ir.Int8, "", true, false, 0},
			// tails on the narrow kernels: 53 = 32 + 16 + 5, 24 = 16 + 8, 8
			{13, 53, 64, true, ir.Float32, "", true, true, 0},
			{9, 24, 40, false, ir.Uint8, "Relu", true, true, 0},
			{11, 8, 12, true, ir.Int8, "Clip", false, true, 0},
			// a few columns one at a time (qcolVNNI): 49 = 32 + 16 + 1, 51, 18, 1..3; odd depths
			{16, 49, 36, false, ir.Int8, "Relu", true, true, 0},
			{9, 51, 13, true, ir.Uint8, "", true, true, 0},
			{8, 18, 64, true, ir.Float32, "Clip", true, true, 0},
			{7, 1, 9, false, ir.Int8, "", false, true, 0},
			{13, 2, 21, true, ir.Float32, "", true, false, 0},
			{5, 3, 7, false, ir.Uint8, "Sigmoid", true, true, 0},
			{70, 49, 40, true, ir.Uint8, "Relu", true, true, 0}, // eight strips per qcol8 call, then one partial
			{64, 17, 12, false, ir.Float32, "", false, true, 0},
			{49, 72, 20, false, ir.Int8, "Clip", true, true, 0}, // gemm: 49 channels
		} {
			zs := []ir.DType{0}
			if c.resid { // also with residual codes (ops/kilnq's z_scale)
				zs = append(zs, ir.Int8, ir.Uint8)
			}
			for _, z := range zs {
				c.zcode = z
				for _, gemm := range []bool{false, true} {
					t.Run(fmt.Sprintf("%dx%dx%d_%v_z%v", c.m, c.n, c.k, gemm, z), func(t *testing.T) { c.run(t, r, gemm) })
				}
			}
		}
	})
}

// qcolVNNI and qcol8VNNI (one column's sums, for one or eight weight
// strips) equal their Go twins: depths around the 4-step unrolling, every
// column of a strip, strips at an odd stride.
func TestQColTwin(t *testing.T) {
	if !qcolOK() {
		t.Skip("no VNNI on this CPU/build")
	}
	r := rand.New(rand.NewPCG(31, 32))
	for _, k4 := range []int{1, 2, 3, 4, 5, 8, 17, 1152} {
		a := make([]int8, k4*4*MR)
		b := make([]uint8, k4*4*NR)
		for i := range a {
			a[i] = int8(r.IntN(256) - 128)
		}
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		for j := 0; j < NR; j++ {
			var got, want [MR]int32
			qcol(k4, &a[0], &b[4*j], &got[0]) // qcolVNNI (qcolOK)
			qcolGeneric(k4, &a[0], &b[4*j], &want[0])
			if got != want {
				t.Fatalf("k4 %d column %d: %v, want %v", k4, j, got, want)
			}
		}
		// eight strips: the same strip at eight strides' distance, the
		// others random
		a8 := make([]int8, 8*len(a)+64)
		for i := range a8 {
			a8[i] = int8(r.IntN(256) - 128)
		}
		stride := len(a) + 8
		var got8, want8 [8 * MR]int32
		qcol8(k4, &a8[0], stride, &b[4*5], &got8[0])
		qcol8Generic(k4, &a8[0], stride, &b[4*5], &want8[0])
		if got8 != want8 {
			t.Fatalf("k4 %d, 8 strips: %v, want %v", k4, got8, want8)
		}
	}
}

// The mid quantization at its rounding ties and range ends, in every
// variant and tile width: y (the bias, zero weights) at (k + ½)·MScale and
// one ulp either side for every mid code, and past both ends; fails
// without the assembly's correction FMA.
func TestQGemmMidTies(t *testing.T) {
	const ms = float32(0.0123)
	var ys []float32
	for k := -300; k <= 300; k++ {
		for _, f := range []float32{0, 0.5} {
			v := (float32(k) + f) * ms
			ys = append(ys, v, math.Nextafter32(v, 1e9), math.Nextafter32(v, -1e9))
		}
	}
	m := (len(ys) + MR - 1) / MR * MR
	for len(ys) < m {
		ys = append(ys, 0)
	}
	for _, out := range []ir.DType{ir.Int8, ir.Uint8} {
		l := &kilnq.Layer{XScale: 1, WScales: []float32{1}, YScale: 0.05, OutType: out, MScale: ms, MZero: -7}
		if out == ir.Uint8 {
			l.YZero, l.MZero = 100, 201
		}
		forEachQVariant(t, func(t *testing.T) {
			for _, n := range []int{32, 16, 8} {
				const k = 4
				ap := make([]int8, QASize(m, k))
				PackQA(ap, make([]int8, m*k), m, k)
				bp := make([]uint8, QBSize(k, n))
				PackQB(bp, make([]uint8, k*n), k, n, n, 1, 0)
				ql := &QLayer{Corr: make([]int32, m), Mult: make([]float32, m), Bias: ys, Quant: true, Unsigned: out == ir.Uint8,
					YScale: l.YScale, YZero: l.YZero, MScale: ms}
				for i := range ql.Mult {
					ql.Mult[i] = 1
				}
				ql.MQLo, ql.MQHi = l.MidBounds()
				o := &QOut{Q: make([]byte, m*n), Ld: n}
				QGemm(k, ap, m, bp, n, o, ql, 0, 0)
				for ch := range m {
					want := byte(l.QuantizeOut(l.Epilogue(0, 0, ys[ch], 0)))
					for j := range n {
						if o.Q[ch*n+j] != want {
							t.Fatalf("%s n=%d: y %v: code %d, want %d", out, n, ys[ch], o.Q[ch*n+j], want)
						}
					}
				}
			}
		})
	}
}
