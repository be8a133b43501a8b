// Command int8x generates kernels/avx/qextra_amd64.s: INT8 helper kernels
// around the VNNI GEMM (2×2 max pooling of 8-bit codes, QuantizeLinear of
// float32 to 8-bit codes). It is separate from _gen's main command (the
// FP32 and GEMM kernels, sgemm_amd64.s) so that each generated file has
// one generator; both share _gen's go.mod:
//
//	cd kernels/avx/_gen && go run ./cmd/int8x -pkg avx -out ../qextra_amd64.s -stubs ../qextra_stubs_amd64.go
package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// qdwRows: output rows per step of the INT8 3×3 depthwise kernel.
const qdwRows = 4

func main() {
	ConstraintExpr("!noasm,amd64")
	qmaxPool2x2("maxPool2x2S8BW", VPMAXSB)
	qmaxPool2x2("maxPool2x2U8BW", VPMAXUB)
	quantizeF32("quantizeF32S8AVX512", VPMOVSDB)
	quantizeF32("quantizeF32U8AVX512", VPMOVUSDB)
	gatherQuads()
	packPointwise()
	rowMax("rowMaxS8BW", VPMAXSB)
	rowMax("rowMaxU8BW", VPMAXUB)
	codesToF32("codesToF32S8AVX512", VPMOVSXBD_Z)
	codesToF32("codesToF32U8AVX512", VPMOVZXBD_Z)
	slideQuads()
	slideQuads2()
	copyQuadWords()
	qgemmPool("qgemm8x32PoolVNNI", false)
	qgemmPool("qgemm8x32PoolShiftVNNI", true)
	qshiftPack()
	qpoolPack()
	packQRows8()
	hmax3s2("hmax3s2S8VBMI", VPMAXSB)
	hmax3s2("hmax3s2U8VBMI", VPMAXUB)
	qdw3x3("qdw3x3S8S1VNNI", 1, qdwRows, VPMOVSDB)
	qdw3x3("qdw3x3U8S1VNNI", 1, qdwRows, VPMOVUSDB)
	qdw3x3("qdw3x3S8S2VNNI", 2, qdwRows, VPMOVSDB)
	qdw3x3("qdw3x3U8S2VNNI", 2, qdwRows, VPMOVUSDB)
	dequantize("dequantizeS8AVX512", VPMOVSXBD)
	dequantize("dequantizeU8AVX512", VPMOVZXBD)
	qaddAVX512("qaddUUAVX512", VPMOVZXBD, VPMOVZXBD)
	qaddAVX512("qaddUSAVX512", VPMOVZXBD, VPMOVSXBD)
	qaddAVX512("qaddSUAVX512", VPMOVSXBD, VPMOVZXBD)
	qaddAVX512("qaddSSAVX512", VPMOVSXBD, VPMOVSXBD)
	qcolVNNI()
	qcol8VNNI()
	Generate()
}

// qmaxPool2x2 pools planes of 8-bit codes (rows of w bytes, planes hw bytes
// apart) 2×2 with stride 2 in floor mode; the output is contiguous (planes
// of oh rows of ow codes). Per 32 outputs: the maximum of the two input
// rows' 64 bytes, then of each 16-bit word's two bytes (the odd byte
// shifted down by 8), narrowed to the low bytes by VPMOVWB. Tails are
// masked; masked-off lanes are neither loaded (no fault past the end) nor
// stored.
func qmaxPool2x2(name string, vmax func(ops ...Op)) {
	TEXT(name, NOSPLIT, "func(x *byte, w, hw int, y *byte, ow, oh, planes int)")
	Pragma("noescape")
	Doc(name + " is the AVX-512BW twin of qmaxPool2x2Generic.")
	x := Load(Param("x"), reg.RSI)
	w := Load(Param("w"), reg.R8)
	hw := Load(Param("hw"), reg.R9)
	y := Load(Param("y"), reg.RDI)
	ow := Load(Param("ow"), reg.R10)
	oh := Load(Param("oh"), reg.R11)
	planes := Load(Param("planes"), reg.R12)
	rowp, rows, c, n, t, ones := reg.R13, reg.R14, reg.R15, reg.RAX, reg.RBX, reg.RCX
	l := func(s string) LabelRef { return LabelRef(s + "_" + name) }
	TESTQ(planes, planes)
	JLE(l("done"))
	TESTQ(oh, oh)
	JLE(l("done"))
	TESTQ(ow, ow)
	JLE(l("done"))
	MOVQ(I32(-1), ones)
	Label("plane_" + name)
	MOVQ(x, rowp)
	MOVQ(oh, rows)
	Label("row_" + name)
	XORQ(c, c)
	Label("col_" + name)
	MOVQ(ow, n)
	SUBQ(c, n)
	CMPQ(n, U8(32))
	JLE(l("masks"))
	MOVQ(U32(32), n)
	Label("masks_" + name)
	BZHIQ(n, ones, t)
	KMOVQ(t, reg.K2)
	SHLQ(U8(1), n)
	BZHIQ(n, ones, t)
	KMOVQ(t, reg.K1)
	LEAQ(Mem{Base: rowp, Index: c, Scale: 2}, t)
	VMOVDQU8_Z(Mem{Base: t}, reg.K1, reg.Z0)
	VMOVDQU8_Z(Mem{Base: t, Index: w, Scale: 1}, reg.K1, reg.Z1)
	vmax(reg.Z1, reg.Z0, reg.Z0)
	VPSRLW(U8(8), reg.Z0, reg.Z1)
	vmax(reg.Z1, reg.Z0, reg.Z0)
	VPMOVWB(reg.Z0, reg.K2, Mem{Base: y, Index: c, Scale: 1})
	ADDQ(U8(32), c)
	CMPQ(c, ow)
	JLT(l("col"))
	ADDQ(ow, y)
	LEAQ(Mem{Base: rowp, Index: w, Scale: 2}, rowp)
	DECQ(rows)
	JNE(l("row"))
	ADDQ(hw, x)
	DECQ(planes)
	JNE(l("plane"))
	Label("done_" + name)
	VZEROUPPER()
	RET()
}

// quantizeF32 is QuantizeLinear of float32 to 8-bit codes, 16 per step:
// v = x/scale (float32 division), clamped to [qlo, qhi] (the code range
// minus the zero point: integers, so clamping before rounding changes
// nothing), rounded half to even (VCVTPS2DQ under Go's default MXCSR),
// NaN lanes zeroed through the ordered-compare mask, plus the zero point,
// narrowed (the values already fit).
func quantizeF32(name string, narrow func(ops ...Op)) {
	TEXT(name, NOSPLIT, "func(dst *byte, src *float32, n int, scale, qlo, qhi float32, zero int32)")
	Pragma("noescape")
	Doc(name + " is the AVX-512 twin of quantizeF32Generic.")
	dst := Load(Param("dst"), reg.RDI)
	src := Load(Param("src"), reg.RSI)
	n := Load(Param("n"), reg.RCX)
	l := func(s string) LabelRef { return LabelRef(s + "_" + name) }
	VBROADCASTSS(NewParamAddr("scale", 24), reg.Z4)
	VBROADCASTSS(NewParamAddr("qlo", 28), reg.Z5)
	VBROADCASTSS(NewParamAddr("qhi", 32), reg.Z6)
	MOVL(NewParamAddr("zero", 36), reg.EDX)
	VPBROADCASTD(reg.EDX, reg.Z7)
	ones, t := reg.RAX, reg.RBX
	MOVQ(I32(-1), ones)
	TESTQ(n, n)
	JLE(l("done"))
	Label("loop_" + name)
	lowBits(name, t, n, ones, 16)
	KMOVW(t.As32(), reg.K1)
	VMOVUPS_Z(Mem{Base: src}, reg.K1, reg.Z0)
	VDIVPS(reg.Z4, reg.Z0, reg.Z0)
	VCMPPS(U8(7), reg.Z0, reg.Z0, reg.K2) // ordered: not NaN
	VMAXPS(reg.Z5, reg.Z0, reg.Z0)
	VMINPS(reg.Z6, reg.Z0, reg.Z0)
	VCVTPS2DQ_Z(reg.Z0, reg.K2, reg.Z0)
	VPADDD(reg.Z7, reg.Z0, reg.Z0)
	narrow(reg.Z0, reg.K1, Mem{Base: dst})
	ADDQ(U8(64), src)
	ADDQ(U8(16), dst)
	SUBQ(U8(16), n)
	JG(l("loop"))
	Label("done_" + name)
	VZEROUPPER()
	RET()
}

// gatherQuads packs INT8 im2col strips with gathers: for each of rows
// tables of 32 byte offsets (one per strip column, -1 for padding) and
// each of q quads, one strip row of 32 words: dst[(r*q+i)*32+j] =
// the 32-bit word at src + idx[r][j] + i*step, or fill where idx < 0.
func gatherQuads() {
	name := "gatherQuadsAVX512"
	TEXT(name, NOSPLIT, "func(dst *uint32, src *byte, idx *int32, rows, q, step int, fill uint32)")
	Pragma("noescape")
	Doc(name + " is the AVX-512 twin of gatherQuadsGeneric.")
	dst := Load(Param("dst"), reg.RDI)
	src := Load(Param("src"), reg.RSI)
	idx := Load(Param("idx"), reg.RDX)
	rows := Load(Param("rows"), reg.RCX)
	q := Load(Param("q"), reg.R8)
	step := Load(Param("step"), reg.R9)
	MOVL(NewParamAddr("fill", 48), reg.EAX)
	VPBROADCASTD(reg.EAX, reg.Z7)
	VPXORD(reg.Z6, reg.Z6, reg.Z6)
	p, i := reg.R10, reg.R11
	l := func(s string) LabelRef { return LabelRef(s + "_" + name) }
	TESTQ(rows, rows)
	JLE(l("done"))
	TESTQ(q, q)
	JLE(l("done"))
	Label("row_" + name)
	VMOVDQU32(Mem{Base: idx}, reg.Z0)
	VMOVDQU32(Mem{Base: idx, Disp: 64}, reg.Z1)
	VPCMPD(U8(5), reg.Z6, reg.Z0, reg.K1) // idx >= 0
	VPCMPD(U8(5), reg.Z6, reg.Z1, reg.K2)
	MOVQ(src, p)
	MOVQ(q, i)
	Label("quad_" + name)
	KMOVW(reg.K1, reg.K3)
	KMOVW(reg.K2, reg.K4)
	VMOVDQA32(reg.Z7, reg.Z2)
	VMOVDQA32(reg.Z7, reg.Z3)
	VPGATHERDD(Mem{Base: p, Index: reg.Z0, Scale: 1}, reg.K3, reg.Z2)
	VPGATHERDD(Mem{Base: p, Index: reg.Z1, Scale: 1}, reg.K4, reg.Z3)
	VMOVDQU32(reg.Z2, Mem{Base: dst})
	VMOVDQU32(reg.Z3, Mem{Base: dst, Disp: 64})
	ADDQ(U8(128), dst)
	ADDQ(step, p)
	DECQ(i)
	JNE(l("quad"))
	ADDQ(U8(128), idx)
	DECQ(rows)
	JNE(l("row"))
	Label("done_" + name)
	VZEROUPPER()
	RET()
}

// packPointwise packs NR-column strips of a 1×1 conv's B matrix straight
// from channel-major codes: quad p of column j is the bytes of channels
// 4p..4p+3 at position j (rows hw bytes apart), flipped. Per 16 columns
// and quad: four zero-extending loads (VPMOVZXBD), three shifts, one
// three-way OR, one XOR. Columns past n in the last strip are loaded as
// zero (masked, no read past the end) and stored.
func packPointwise() {
	name := "packPointwiseAVX512"
	TEXT(name, NOSPLIT, "func(dst *uint32, x *byte, hw, quads, n int, flip uint32)")
	Pragma("noescape")
	Doc(name + " is the AVX-512 twin of packPointwiseGeneric.")
	dst := Load(Param("dst"), reg.RDI)
	x := Load(Param("x"), reg.RSI)
	hw := Load(Param("hw"), reg.R8)
	quads := Load(Param("quads"), reg.R9)
	n := Load(Param("n"), reg.R10)
	MOVL(NewParamAddr("flip", 40), reg.EAX)
	VPBROADCASTD(reg.EAX, reg.Z15)
	hw3, hw4, r, p, t, ones := reg.R11, reg.R12, reg.R13, reg.R14, reg.RBX, reg.RCX
	l := func(s string) LabelRef { return LabelRef(s + "_" + name) }
	LEAQ(Mem{Base: hw, Index: hw, Scale: 2}, hw3)
	MOVQ(hw, hw4)
	SHLQ(U8(2), hw4)
	MOVQ(I32(-1), ones)
	TESTQ(quads, quads)
	JLE(l("done"))
	TESTQ(n, n)
	JLE(l("done"))
	Label("strip_" + name)
	lowBits(name, t, n, ones, 32)
	KMOVD(t.As32(), reg.K1)
	KSHIFTRD(U8(16), reg.K1, reg.K2)
	MOVQ(x, r)
	MOVQ(quads, p)
	Label("quad_" + name)
	for half, k := range []reg.Register{reg.K1, reg.K2} {
		d := 16 * half
		z := func(i int) reg.VecPhysical {
			return [...]reg.VecPhysical{reg.Z0, reg.Z1, reg.Z2, reg.Z3, reg.Z4, reg.Z5, reg.Z6, reg.Z7}[4*half+i]
		}
		VPMOVZXBD_Z(Mem{Base: r, Disp: d}, k, z(0))
		VPMOVZXBD_Z(Mem{Base: r, Index: hw, Scale: 1, Disp: d}, k, z(1))
		VPMOVZXBD_Z(Mem{Base: r, Index: hw, Scale: 2, Disp: d}, k, z(2))
		VPMOVZXBD_Z(Mem{Base: r, Index: hw3, Scale: 1, Disp: d}, k, z(3))
		VPSLLD(U8(8), z(1), z(1))
		VPSLLD(U8(16), z(2), z(2))
		VPSLLD(U8(24), z(3), z(3))
		VPTERNLOGD(U8(0xfe), z(2), z(1), z(0))    // z0 | z1 | z2
		VPTERNLOGD(U8(0x96), reg.Z15, z(3), z(0)) // z0 ^ z3 ^ flip (disjoint bytes: ^ is |)
		VMOVDQU32(z(0), Mem{Base: dst, Disp: 64 * half})
	}
	ADDQ(U8(128), dst)
	ADDQ(hw4, r)
	DECQ(p)
	JNE(l("quad"))
	ADDQ(U8(32), x)
	SUBQ(U8(32), n)
	JG(l("strip"))
	Label("done_" + name)
	VZEROUPPER()
	RET()
}

// lowBits leaves the low min(n, w) bits of t set (ones holds all ones):
// the lane mask of a step that may run past the end. full_NAME labels the
// join, so a kernel uses it once.
func lowBits(name string, t, n, ones reg.Register, w int) {
	MOVQ(U32(w), t)
	CMPQ(n, U8(w))
	JGE(LabelRef("full_" + name))
	MOVQ(n, t)
	Label("full_" + name)
	BZHIQ(t, ones, t)
}

// rowMax is dst[i] = max(dst[i], src[i]) over n 8-bit codes, 64 per step,
// the tail masked.
func rowMax(name string, vmax func(ops ...Op)) {
	TEXT(name, NOSPLIT, "func(dst, src *byte, n int)")
	Pragma("noescape")
	Doc(name + " is the AVX-512BW twin of rowMaxGeneric.")
	dst := Load(Param("dst"), reg.RDI)
	src := Load(Param("src"), reg.RSI)
	n := Load(Param("n"), reg.RCX)
	ones, t := reg.RAX, reg.RBX
	l := func(s string) LabelRef { return LabelRef(s + "_" + name) }
	MOVQ(I32(-1), ones)
	TESTQ(n, n)
	JLE(l("done"))
	Label("loop_" + name)
	lowBits(name, t, n, ones, 64)
	KMOVQ(t, reg.K1)
	VMOVDQU8_Z(Mem{Base: dst}, reg.K1, reg.Z0)
	VMOVDQU8_Z(Mem{Base: src}, reg.K1, reg.Z1)
	vmax(reg.Z1, reg.Z0, reg.Z0)
	VMOVDQU8(reg.Z0, reg.K1, Mem{Base: dst})
	ADDQ(U8(64), dst)
	ADDQ(U8(64), src)
	SUBQ(U8(64), n)
	JG(l("loop"))
	Label("done_" + name)
	VZEROUPPER()
	RET()
}

// codesToF32 is dst[r*ldd+i] = float32(code(src[r*w+i]) − zero) for h
// rows of w 8-bit codes (int8 by sign extension, uint8 by zero
// extension), 16 per step, each row's tail masked: exact (small integers).
func codesToF32(name string, extend func(mx, k, xyz Op)) {
	TEXT(name, NOSPLIT, "func(dst *float32, ldd int, src *byte, w, h int, zero int32)")
	Pragma("noescape")
	Doc(name + " is the AVX-512 twin of codesToF32Generic.")
	dst := Load(Param("dst"), reg.RDI)
	ldd := Load(Param("ldd"), reg.R8)
	src := Load(Param("src"), reg.RSI)
	w := Load(Param("w"), reg.R9)
	h := Load(Param("h"), reg.R10)
	MOVL(NewParamAddr("zero", 40), reg.EDX)
	VPBROADCASTD(reg.EDX, reg.Z7)
	ones, t, n, d := reg.RAX, reg.RBX, reg.RCX, reg.R11
	l := func(s string) LabelRef { return LabelRef(s + "_" + name) }
	MOVQ(I32(-1), ones)
	SHLQ(U8(2), ldd)
	TESTQ(w, w)
	JLE(l("done"))
	TESTQ(h, h)
	JLE(l("done"))
	Label("row_" + name)
	MOVQ(w, n)
	MOVQ(dst, d)
	Label("loop_" + name)
	lowBits(name, t, n, ones, 16)
	KMOVW(t.As32(), reg.K1)
	extend(Mem{Base: src}, reg.K1, reg.Z0)
	VPSUBD(reg.Z7, reg.Z0, reg.Z0)
	VCVTDQ2PS(reg.Z0, reg.Z0)
	VMOVUPS(reg.Z0, reg.K1, Mem{Base: d})
	ADDQ(U8(64), d)
	MOVQ(U32(16), t)
	CMPQ(n, t)
	CMOVQLT(n, t)
	ADDQ(t, src)
	SUBQ(U8(16), n)
	JG(l("loop"))
	ADDQ(ldd, dst)
	DECQ(h)
	JNE(l("row"))
	Label("done_" + name)
	VZEROUPPER()
	RET()
}

// slideQuads writes n ≤ 32 overlapping 32-bit windows of a byte row:
// dst[j] = src[j] | src[j+1]<<8 | src[j+2]<<16 | src[j+3]<<24 (the row
// quads of a stride-1 conv's consecutive output columns). One masked load
// of n+3 bytes, two VPERMB (AVX512-VBMI) with a constant index, masked
// stores of n words.
func slideQuads() {
	idx := GLOBL("slidequadidx", RODATA|NOPTR)
	for b := 0; b < 128; b++ {
		DATA(b, U8(b/4+b%4))
	}
	name := "slideQuadsVBMI"
	TEXT(name, NOSPLIT, "func(dst *uint32, src *byte, n int)")
	Pragma("noescape")
	Doc(name + " is the AVX-512 VBMI twin of slideQuadsGeneric.")
	dst := Load(Param("dst"), reg.RDI)
	src := Load(Param("src"), reg.RSI)
	n := Load(Param("n"), reg.RCX)
	ones, t := reg.RAX, reg.RBX
	MOVQ(I32(-1), ones)
	LEAQ(Mem{Base: n, Disp: 3}, t)
	BZHIQ(t, ones, t)
	KMOVQ(t, reg.K1)
	BZHIQ(n, ones, t)
	KMOVD(t.As32(), reg.K2)
	KSHIFTRD(U8(16), reg.K2, reg.K3)
	VMOVDQU8_Z(Mem{Base: src}, reg.K1, reg.Z0)
	VMOVDQU64(idx, reg.Z1)
	VMOVDQU64(idx.Offset(64), reg.Z2)
	VPERMB(reg.Z0, reg.Z1, reg.Z3)
	VPERMB(reg.Z0, reg.Z2, reg.Z4)
	VMOVDQU32(reg.Z3, reg.K2, Mem{Base: dst})
	VMOVDQU32(reg.Z4, reg.K3, Mem{Base: dst, Disp: 64})
	VZEROUPPER()
	RET()
}

// slideQuads2 is slideQuads at stride 2: dst[j] = the word at src[2j:2j+4]
// for j < n ≤ 32, 16 words per masked load (34 bytes) and VPERMB.
func slideQuads2() {
	idx := GLOBL("slidequad2idx", RODATA|NOPTR)
	for b := 0; b < 64; b++ {
		DATA(b, U8(2*(b/4)+b%4))
	}
	name := "slideQuads2VBMI"
	TEXT(name, NOSPLIT, "func(dst *uint32, src *byte, n int)")
	Pragma("noescape")
	Doc(name + " is the AVX-512 VBMI twin of slideQuads2Generic.")
	dst := Load(Param("dst"), reg.RDI)
	src := Load(Param("src"), reg.RSI)
	n := Load(Param("n"), reg.RCX)
	ones, t, h := reg.RAX, reg.RBX, reg.RDX
	MOVQ(I32(-1), ones)
	VMOVDQU64(idx, reg.Z1)
	for half := 0; half < 2; half++ {
		// h = min(max(n - 16*half, 0), 16) words; 2h+2 bytes
		MOVQ(n, h)
		if half == 1 {
			SUBQ(U8(16), h)
			JLE(LabelRef("done_" + name))
		}
		MOVQ(U32(16), t)
		CMPQ(h, t)
		CMOVQGT(t, h)
		LEAQ(Mem{Base: h, Index: h, Scale: 1, Disp: 2}, t)
		BZHIQ(t, ones, t)
		KMOVQ(t, reg.K1)
		BZHIQ(h, ones, t)
		KMOVW(t.As32(), reg.K2)
		VMOVDQU8_Z(Mem{Base: src, Disp: 32 * half}, reg.K1, reg.Z0)
		VPERMB(reg.Z0, reg.Z1, reg.Z2)
		VMOVDQU32(reg.Z2, reg.K2, Mem{Base: dst, Disp: 64 * half})
	}
	Label("done_" + name)
	VZEROUPPER()
	RET()
}

// copyQuadWords writes a run of run ≤ 32 columns of each of q strip rows
// (NR words apart): words lo ≤ j < hi from q quad planes (step bytes
// apart; src is column lo's word of the first), fill elsewhere (the
// padding taps of the run). The source is read under the mask [lo, hi)
// only, from src − 4·lo, so nothing outside [lo, hi) is touched; the
// destination is written under [0, run).
func copyQuadWords() {
	name := "copyQuadWordsAVX512"
	TEXT(name, NOSPLIT, "func(dst *uint32, src *uint32, lo, hi, run, q, step int, fill uint32)")
	Pragma("noescape")
	Doc(name + " is the AVX-512 twin of copyQuadWordsGeneric.")
	dst := Load(Param("dst"), reg.RDI)
	src := Load(Param("src"), reg.RSI)
	lo := Load(Param("lo"), reg.RCX)
	hi := Load(Param("hi"), reg.RDX)
	run := Load(Param("run"), reg.R11)
	q := Load(Param("q"), reg.R8)
	step := Load(Param("step"), reg.R9)
	ones, t, u := reg.RAX, reg.RBX, reg.R10
	l := func(s string) LabelRef { return LabelRef(s + "_" + name) }
	MOVQ(I32(-1), ones)
	TESTQ(q, q)
	JLE(l("done"))
	BZHIQ(hi, ones, t) // bits [0, hi)
	BZHIQ(lo, ones, u) // bits [0, lo)
	ANDNQ(t, u, t)     // [lo, hi)
	KMOVD(t.As32(), reg.K1)
	KSHIFTRD(U8(16), reg.K1, reg.K2)
	BZHIQ(run, ones, t)
	KMOVD(t.As32(), reg.K3)
	KSHIFTRD(U8(16), reg.K3, reg.K4)
	SHLQ(U8(2), lo)
	SUBQ(lo, src) // column 0 of the run (read only under [lo, hi))
	Load(Param("fill"), reg.R12L)
	VPBROADCASTD(reg.R12L, reg.Z2)
	Label("quad_" + name)
	VMOVDQA64(reg.Z2, reg.Z0)
	VMOVDQA64(reg.Z2, reg.Z1)
	VMOVDQU32(Mem{Base: src}, reg.K1, reg.Z0)
	VMOVDQU32(Mem{Base: src, Disp: 64}, reg.K2, reg.Z1)
	VMOVDQU32(reg.Z0, reg.K3, Mem{Base: dst})
	VMOVDQU32(reg.Z1, reg.K4, Mem{Base: dst, Disp: 64})
	ADDQ(step, src)
	ADDQ(U32(4*32), dst)
	DECQ(q)
	JNE(l("quad"))
	Label("done_" + name)
	VZEROUPPER()
	RET()
}
