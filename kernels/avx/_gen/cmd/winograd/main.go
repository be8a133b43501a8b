// Command winograd generates kernels/winograd/transforms_amd64.s: the
// AVX-512 input and output transforms of the Winograd convolutions
// F(2×2,3×3) and F(4×4,3×3), 16 tiles (one zmm) per step. It is separate
// from _gen's main command so that each generated file has one generator;
// it shares _gen's go.mod:
//
//	cd kernels/avx/_gen && go run ./cmd/winograd -pkg winograd -out ../../winograd/transforms_amd64.s -stubs ../../winograd/transforms_stubs_amd64.go
//
// The 1-D transforms are the programs of kernels/winograd/programs.go
// (copied below: this module cannot import kiln's), emitted step by step
// as VADDPS / VSUBPS / VMULPS by a broadcast constant, in the Go twins'
// order, so both compute the same float32 values bit for bit.
package main

import (
	"fmt"
	"math"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

type step struct {
	op   byte // '+': a+b, '-': a−b, '*': a·c
	a, b int
	c    float32
}

type program struct {
	in    int
	steps []step
	outs  []int
}

// Keep in step with kernels/winograd/programs.go (TestAsmMatchesGeneric
// there compares the kernels with the Go twins bit for bit).
var (
	inputF2 = program{in: 4, steps: []step{
		{'-', 0, 2, 0}, {'+', 1, 2, 0}, {'-', 2, 1, 0}, {'-', 1, 3, 0},
	}, outs: []int{4, 5, 6, 7}}
	outputF2 = program{in: 4, steps: []step{
		{'+', 0, 1, 0}, {'+', 4, 2, 0}, {'-', 1, 2, 0}, {'-', 6, 3, 0},
	}, outs: []int{5, 7}}
	inputF4 = program{in: 6, steps: []step{
		{'*', 2, 0, 5}, {'-', 4, 6, 0}, {'*', 0, 0, 4}, {'+', 7, 8, 0},
		{'+', 1, 2, 0}, {'*', 10, 0, 4}, {'+', 3, 4, 0}, {'-', 12, 11, 0},
		{'-', 1, 2, 0}, {'*', 14, 0, 4}, {'-', 4, 3, 0}, {'+', 16, 15, 0},
		{'-', 3, 1, 0}, {'*', 18, 0, 2}, {'-', 4, 2, 0}, {'+', 20, 19, 0}, {'-', 20, 19, 0},
		{'*', 3, 0, 5}, {'-', 5, 23, 0}, {'*', 1, 0, 4}, {'+', 24, 25, 0},
	}, outs: []int{9, 13, 17, 21, 22, 26}}
	outputF4 = program{in: 6, steps: []step{
		{'+', 1, 2, 0}, {'-', 1, 2, 0}, {'+', 3, 4, 0}, {'-', 3, 4, 0},
		{'+', 0, 6, 0}, {'+', 10, 8, 0},
		{'*', 9, 0, 2}, {'+', 7, 12, 0},
		{'*', 8, 0, 4}, {'+', 6, 14, 0},
		{'*', 9, 0, 8}, {'+', 7, 16, 0}, {'+', 17, 5, 0},
	}, outs: []int{11, 13, 15, 18}}
)

func main() {
	ConstraintExpr("!noasm,amd64")
	interleaveTables()
	inputKernel("inputF2AVX512", 2, &inputF2)
	inputKernel("inputF4AVX512", 4, &inputF4)
	outputKernel("outputF2AVX512", 2, &outputF2)
	outputKernel("outputF4AVX512", 4, &outputF4)
	Generate()
}

// alloc hands out free zmm registers.
type alloc struct{ free []reg.VecPhysical }

func newAlloc(n int) *alloc {
	a := &alloc{}
	for i := n - 1; i >= 0; i-- {
		a.free = append(a.free, zmm(i))
	}
	return a
}

func (a *alloc) get() reg.VecPhysical {
	if len(a.free) == 0 {
		panic("out of zmm registers")
	}
	r := a.free[len(a.free)-1]
	a.free = a.free[:len(a.free)-1]
	return r
}

func (a *alloc) put(r reg.VecPhysical) { a.free = append(a.free, r) }

func zmm(i int) reg.VecPhysical {
	return []reg.VecPhysical{reg.Z0, reg.Z1, reg.Z2, reg.Z3, reg.Z4, reg.Z5, reg.Z6, reg.Z7, reg.Z8, reg.Z9, reg.Z10,
		reg.Z11, reg.Z12, reg.Z13, reg.Z14, reg.Z15, reg.Z16, reg.Z17, reg.Z18, reg.Z19, reg.Z20, reg.Z21, reg.Z22,
		reg.Z23, reg.Z24, reg.Z25, reg.Z26, reg.Z27, reg.Z28, reg.Z29, reg.Z30, reg.Z31}[i]
}

// emit runs p over the registers in, which it consumes (each goes back to
// al after its last use), and returns the output registers (from al).
func emit(p *program, in []reg.VecPhysical, al *alloc, konst map[float32]reg.VecPhysical) []reg.VecPhysical {
	n := p.in + len(p.steps)
	last := make([]int, n)
	for i := range last {
		last[i] = -1
	}
	for s, st := range p.steps {
		last[st.a] = s
		if st.op != '*' {
			last[st.b] = s
		}
	}
	isOut := map[int]bool{}
	for _, o := range p.outs {
		isOut[o] = true
	}
	regs := make([]reg.VecPhysical, n)
	copy(regs, in)
	for i := 0; i < p.in; i++ {
		if last[i] < 0 && !isOut[i] {
			al.put(regs[i])
		}
	}
	for s, st := range p.steps {
		ops := []int{st.a}
		if st.op != '*' && st.b != st.a {
			ops = append(ops, st.b)
		}
		var a, b reg.VecPhysical = regs[st.a], nil
		if st.op != '*' {
			b = regs[st.b]
		}
		for _, o := range ops { // free operands first: the result may reuse one
			if last[o] == s && !isOut[o] {
				al.put(regs[o])
			}
		}
		d := al.get()
		switch st.op {
		case '+':
			VADDPS(b, a, d)
		case '-':
			VSUBPS(b, a, d) // d = a − b
		default:
			VMULPS(konst[st.c], a, d)
		}
		regs[p.in+s] = d
	}
	outs := make([]reg.VecPhysical, len(p.outs))
	for i, o := range p.outs {
		outs[i] = regs[o]
	}
	return outs
}

// constants broadcasts each multiplier of the programs into its own
// register, from the top of the register file down.
func constants(top int, ps ...*program) map[float32]reg.VecPhysical {
	k := map[float32]reg.VecPhysical{}
	for _, p := range ps {
		for _, st := range p.steps {
			if st.op != '*' {
				continue
			}
			if _, ok := k[st.c]; ok {
				continue
			}
			r := zmm(top)
			top--
			MOVL(U32(math.Float32bits(st.c)), reg.EAX)
			VPBROADCASTD(reg.EAX, r)
			k[st.c] = r
		}
	}
	return k
}

// pairLanes: VPERMT2PS indices that take the first (even) and second (odd)
// float of each qword of two 8-qword gathers: column j and j+1 of 16 lanes.
var (
	pairLanes     Mem
	pairLanesMade bool
)

// pairLo, pairHi: VPERMT2PS indices interleaving two vectors' lanes 0-7
// and 8-15 into (a, b) float pairs (qwords), for pair scatters.
var pairLo, pairHi Mem

func interleaveTables() {
	t := GLOBL("wginterleave", RODATA|NOPTR)
	for i := 0; i < 32; i++ { // lanes 0-7, then 8-15: a[l], b[l] (b's lanes are 16+l)
		l := (i%16)/2 + 8*(i/16)
		DATA(4*i, U32(l+16*(i%2)))
	}
	pairLo, pairHi = t, t.Offset(64)
}

func pairLaneTable() Mem {
	if !pairLanesMade {
		pairLanesMade = true
		pairLanes = GLOBL("wgpairlanes", RODATA|NOPTR)
		for i := 0; i < 32; i++ { // evens, then odds (DATA in increasing offsets)
			DATA(4*i, U32(2*(i%16)+i/16))
		}
	}
	return pairLanes
}

// inputKernel: for every channel, the t×t patch of each of the 16 lanes'
// tiles is gathered column by column or two at a time, each transformed and
// stored into the destination slots (i·t+j); then every row ξ of slots is
// loaded, transformed and stored back in place: the Go twin's columns-
// then-rows order. Columns j and j+1 of a patch row are adjacent floats,
// so where both have the same lane mask (always but at a left or right
// border) two 8-qword gathers (VPGATHERDQ: half the cost of a 16-float
// VGATHERDPS on Zen 4, for twice the data) and two VPERMT2PS give both
// columns; otherwise each column is one masked VGATHERDPS. Masked-off
// lanes read nothing (a qword is read only when both of its floats are
// inside the image) and give 0.
func inputKernel(name string, m int, p *program) {
	t := m + 2
	TEXT(name, NOSPLIT, "func(v *float32, vstride int, x *float32, idx *int32, mask *uint16, c, hw, w int)")
	Pragma("noescape")
	Doc(name + " is the AVX-512 twin of inputGeneric for F(" + fmt.Sprint(m) + "×" + fmt.Sprint(m) + ",3×3).")
	lab := func(s string) string { return s + "_" + name }
	v, vs, x, mask, c, hw, w := reg.RDI, reg.R8, reg.RSI, reg.RDX, reg.RCX, reg.R9, reg.R10
	rowPtr, slotPtr, colPtr, rowStride := reg.R11, reg.R13, reg.R14, reg.R12
	idxAll, idxHi, even, odd := reg.Z31, reg.Y30, reg.Z29, reg.Z28
	Load(Param("v"), v)
	Load(Param("vstride"), vs)
	SHLQ(U8(2), vs)
	Load(Param("x"), x)
	Load(Param("idx"), reg.RAX)
	VMOVDQU32(Mem{Base: reg.RAX}, idxAll)
	VEXTRACTI32X8(U8(1), idxAll, idxHi)
	tab := pairLaneTable()
	LEAQ(tab, reg.RAX)
	VMOVDQU32(Mem{Base: reg.RAX}, even)
	VMOVDQU32(Mem{Base: reg.RAX, Disp: 64}, odd)
	Load(Param("mask"), mask)
	Load(Param("c"), c)
	Load(Param("hw"), hw)
	SHLQ(U8(2), hw)
	Load(Param("w"), w)
	SHLQ(U8(2), w)
	IMUL3Q(U32(t), vs, rowStride) // t slots
	konst := constants(27, p)
	al := newAlloc(27 - len(konst) + 1)
	TESTQ(c, c)
	JLE(LabelRef(lab("done")))
	Label(lab("channel"))
	MOVQ(v, colPtr)
	// Columns 0 and t−1 alone, the others in pairs (1,2), (3,4): the
	// columns a left or right pad or the image's right edge masks off are
	// the first and last of a patch (pad 1, widths that are multiples of
	// m; pad 0), so the pairs rarely fall back.
	cols := [][]int{{0}}
	for j := 1; j+1 < t-1; j += 2 {
		cols = append(cols, []int{j, j + 1})
	}
	cols = append(cols, []int{t - 1})
	for _, js := range cols {
		j := js[0]
		MOVQ(x, rowPtr)
		ins := make([][]reg.VecPhysical, len(js))
		for q := range js {
			ins[q] = make([]reg.VecPhysical, t)
		}
		for i := 0; i < t; i++ {
			for q := range js {
				ins[q][i] = al.get()
			}
			if len(js) == 1 {
				r := ins[0][i]
				KMOVW(Mem{Base: mask, Disp: 2 * (i*t + j)}, reg.K1)
				VPXORD(r, r, r)
				VGATHERDPS(Mem{Base: rowPtr, Index: idxAll, Scale: 4, Disp: 4 * j}, reg.K1, r)
			} else {
				sfx := fmt.Sprintf("%d_%d", i, j)
				MOVWLZX(Mem{Base: mask, Disp: 2 * (i*t + j)}, reg.EAX)
				MOVWLZX(Mem{Base: mask, Disp: 2 * (i*t + j + 1)}, reg.EBX)
				CMPL(reg.EAX, reg.EBX)
				JNE(LabelRef(lab("single" + sfx)))
				g0, g1 := ins[0][i], ins[1][i]
				KMOVW(reg.EAX, reg.K1)
				KSHIFTRW(U8(8), reg.K1, reg.K2)
				VPXORQ(g0, g0, g0)
				VPGATHERDQ(Mem{Base: rowPtr, Index: idxAll.AsY(), Scale: 4, Disp: 4 * j}, reg.K1, g0)
				VPXORQ(g1, g1, g1)
				VPGATHERDQ(Mem{Base: rowPtr, Index: idxHi, Scale: 4, Disp: 4 * j}, reg.K2, g1)
				// g0: lanes 0-7 as (column j, column j+1) pairs, g1: lanes 8-15
				tmp := al.get()
				VMOVAPS(g0, tmp)
				VPERMT2PS(g1, even, g0) // column j
				VPERMT2PS(g1, odd, tmp) // column j+1
				VMOVAPS(tmp, g1)
				al.put(tmp)
				JMP(LabelRef(lab("gathered" + sfx)))
				Label(lab("single" + sfx))
				for q, r := range []reg.VecPhysical{g0, g1} {
					KMOVW(Mem{Base: mask, Disp: 2 * (i*t + j + q)}, reg.K1)
					VPXORD(r, r, r)
					VGATHERDPS(Mem{Base: rowPtr, Index: idxAll, Scale: 4, Disp: 4 * (j + q)}, reg.K1, r)
				}
				Label(lab("gathered" + sfx))
			}
			if i < t-1 {
				ADDQ(w, rowPtr)
			}
		}
		for q, in := range ins {
			outs := emit(p, in, al, konst)
			MOVQ(colPtr, slotPtr)
			for i, o := range outs {
				VMOVUPS(o, Mem{Base: slotPtr})
				al.put(o)
				if i < t-1 {
					ADDQ(rowStride, slotPtr)
				}
			}
			if js[q] < t-1 {
				ADDQ(vs, colPtr)
			}
		}
	}
	MOVQ(v, colPtr) // now the start of row ξ
	for xi := 0; xi < t; xi++ {
		in := make([]reg.VecPhysical, t)
		MOVQ(colPtr, slotPtr)
		for nu := 0; nu < t; nu++ {
			in[nu] = al.get()
			VMOVUPS(Mem{Base: slotPtr}, in[nu])
			if nu < t-1 {
				ADDQ(vs, slotPtr)
			}
		}
		outs := emit(p, in, al, konst)
		MOVQ(colPtr, slotPtr)
		for nu, o := range outs {
			VMOVUPS(o, Mem{Base: slotPtr})
			al.put(o)
			if nu < t-1 {
				ADDQ(vs, slotPtr)
			}
		}
		if xi < t-1 {
			ADDQ(rowStride, colPtr)
		}
	}
	ADDQ(U32(128), v) // next channel: one row of a 32-wide packed strip
	ADDQ(hw, x)
	DECQ(c)
	JNZ(LabelRef(lab("channel")))
	Label(lab("done"))
	VZEROUPPER()
	RET()
}

// outputKernel: for every row (output channel), each column ν of the t×t
// GEMM outputs is loaded and transformed into m values, kept in a stack
// buffer s[a][ν]; then rows a = 2s, 2s+1 are transformed into 2m outputs,
// given the epilogue (bias, residual gathered with the store masks,
// clamp) and either scattered with their masks or, with FlagPool, reduced
// to their m/2 2×2 maxima (taps in the pool's order) and those scattered.
func outputKernel(name string, m int, p *program) {
	t := m + 2
	TEXT(name, 0, "func(y, mb *float32, mstride, ldm, rows int, idx *int32, mask *uint16, yhw, yw int, bias, resid *float32, lo, hi float32, flags int)")
	Pragma("noescape")
	Doc(name + " is the AVX-512 twin of outputGeneric for F(" + fmt.Sprint(m) + "×" + fmt.Sprint(m) + ",3×3).")
	lab := func(s string) string { return s + "_" + name }
	y, mb, ms, ldm, rows, mask, yhw, yw := reg.RDI, reg.RSI, reg.R8, reg.R9, reg.RCX, reg.RDX, reg.R10, reg.R11
	bias, resid, flags, ptr, col := reg.R12, reg.R13, reg.R14, reg.R15, reg.RBX
	Load(Param("y"), y)
	Load(Param("mb"), mb)
	Load(Param("mstride"), ms)
	SHLQ(U8(2), ms)
	Load(Param("ldm"), ldm)
	SHLQ(U8(2), ldm)
	Load(Param("rows"), rows)
	Load(Param("idx"), reg.RAX)
	VMOVDQU32(Mem{Base: reg.RAX}, reg.Z31)
	Load(Param("mask"), mask)
	Load(Param("yhw"), yhw)
	SHLQ(U8(2), yhw)
	Load(Param("yw"), yw)
	SHLQ(U8(2), yw)
	Load(Param("bias"), bias)
	Load(Param("resid"), resid)
	Load(Param("flags"), flags)
	lo, hi, bv, rz := reg.Z29, reg.Z30, reg.Z28, reg.Z27
	VBROADCASTSS(NewParamAddr("lo", 88), lo)
	VBROADCASTSS(NewParamAddr("hi", 92), hi)
	konst := constants(26, p)
	al := newAlloc(26 - len(konst) + 1)
	sbuf := AllocLocal(m * t * 64)
	colStride := AllocLocal(8)
	IMUL3Q(U32(t), ms, reg.RAX)
	MOVQ(reg.RAX, colStride)
	// storeRow scatters the outputs zs of one tile row (mask and column
	// index q0+b, the row's address in RAX) into y: adjacent outputs b,
	// b+1 whose lane masks agree (all but tiles cut by the right edge) as
	// two 8-qword VPSCATTERDQs of the pair interleaved by VPERMT2PS (Zen 4
	// scatters 16 floats as qwords in about half the time of VSCATTERDPS),
	// the others one VSCATTERDPS each. Lanes outside the output are never
	// written.
	storeRow := func(zs []reg.VecPhysical, q0 int, tag string) {
		for b := 0; b < len(zs); b += 2 {
			if b+1 == len(zs) {
				KMOVW(Mem{Base: mask, Disp: 2 * (q0 + b)}, reg.K1)
				VSCATTERDPS(zs[b], reg.K1, Mem{Base: reg.RAX, Index: reg.Z31, Scale: 4, Disp: 4 * b})
				continue
			}
			sfx := fmt.Sprintf("%s_%d", tag, b)
			MOVWLZX(Mem{Base: mask, Disp: 2 * (q0 + b)}, reg.EBX)
			MOVWLZX(Mem{Base: mask, Disp: 2 * (q0 + b + 1)}, reg.R15L)
			CMPL(reg.EBX, reg.R15L)
			JNE(LabelRef(lab("single" + sfx)))
			pl, ph, ix := al.get(), al.get(), al.get()
			VMOVAPS(zs[b], pl)
			VMOVDQU32(pairLo, ix)
			VPERMT2PS(zs[b+1], ix, pl) // lanes 0-7: (b, b+1) pairs
			VMOVAPS(zs[b], ph)
			VMOVDQU32(pairHi, ix)
			VPERMT2PS(zs[b+1], ix, ph) // lanes 8-15
			KMOVW(reg.EBX, reg.K1)
			KSHIFTRW(U8(8), reg.K1, reg.K2)
			VPSCATTERDQ(pl, reg.K1, Mem{Base: reg.RAX, Index: reg.Y31, Scale: 4, Disp: 4 * b})
			VEXTRACTI32X8(U8(1), reg.Z31, ix.AsY())
			VPSCATTERDQ(ph, reg.K2, Mem{Base: reg.RAX, Index: ix.AsY(), Scale: 4, Disp: 4 * b})
			al.put(pl)
			al.put(ph)
			al.put(ix)
			JMP(LabelRef(lab("stored" + sfx)))
			Label(lab("single" + sfx))
			for q := 0; q < 2; q++ {
				KMOVW(Mem{Base: mask, Disp: 2 * (q0 + b + q)}, reg.K1)
				VSCATTERDPS(zs[b+q], reg.K1, Mem{Base: reg.RAX, Index: reg.Z31, Scale: 4, Disp: 4 * (b + q)})
			}
			Label(lab("stored" + sfx))
		}
	}
	TESTQ(rows, rows)
	JLE(LabelRef(lab("done")))
	Label(lab("row"))
	// columns: s[a][ν] = Aᵀ·M[·][ν]
	MOVQ(mb, col)
	for nu := 0; nu < t; nu++ {
		in := make([]reg.VecPhysical, t)
		MOVQ(col, ptr)
		for xi := 0; xi < t; xi++ {
			in[xi] = al.get()
			VMOVUPS(Mem{Base: ptr}, in[xi])
			if xi < t-1 {
				ADDQ(colStride, ptr)
			}
		}
		outs := emit(p, in, al, konst)
		for a, o := range outs {
			VMOVUPS(o, sbuf.Offset((a*t+nu)*64))
			al.put(o)
		}
		if nu < t-1 {
			ADDQ(ms, col)
		}
	}
	TESTQ(U32(1), flags)
	JZ(LabelRef(lab("nobias")))
	VBROADCASTSS(Mem{Base: bias}, bv)
	Label(lab("nobias"))
	h := m / 2
	for s := 0; s < h; s++ {
		// rows a = 2s, 2s+1: o[r][b]
		o := make([][]reg.VecPhysical, 2)
		for r := 0; r < 2; r++ {
			a := 2*s + r
			in := make([]reg.VecPhysical, t)
			for nu := 0; nu < t; nu++ {
				in[nu] = al.get()
				VMOVUPS(sbuf.Offset((a*t+nu)*64), in[nu])
			}
			o[r] = emit(p, in, al, konst)
		}
		sfx := fmt.Sprint(s)
		TESTQ(U32(1), flags)
		JZ(LabelRef(lab("b" + sfx)))
		for r := 0; r < 2; r++ {
			for _, z := range o[r] {
				VADDPS(bv, z, z)
			}
		}
		Label(lab("b" + sfx))
		TESTQ(U32(4), flags)
		JZ(LabelRef(lab("r" + sfx)))
		for r := 0; r < 2; r++ {
			a := 2*s + r
			MOVQ(resid, reg.RAX)
			for i := 0; i < a; i++ {
				ADDQ(yw, reg.RAX)
			}
			for b, z := range o[r] {
				KMOVW(Mem{Base: mask, Disp: 2 * (a*m + b)}, reg.K1)
				VPXORD(rz, rz, rz)
				VGATHERDPS(Mem{Base: reg.RAX, Index: reg.Z31, Scale: 4, Disp: 4 * b}, reg.K1, rz)
				VADDPS(rz, z, z)
			}
		}
		Label(lab("r" + sfx))
		TESTQ(U32(8), flags)
		JZ(LabelRef(lab("c" + sfx)))
		for r := 0; r < 2; r++ {
			for _, z := range o[r] {
				VMAXPS(z, lo, z) // z = lo > z ? lo : z (NaN keeps z)
				VMINPS(z, hi, z) // z = hi < z ? hi : z
			}
		}
		Label(lab("c" + sfx))
		TESTQ(U32(32), flags)
		JZ(LabelRef(lab("nopool" + sfx)))
		MOVQ(y, reg.RAX)
		for i := 0; i < s; i++ {
			ADDQ(yw, reg.RAX)
		}
		mxs := make([]reg.VecPhysical, h)
		for pb := range mxs {
			mx := al.get()
			VMOVAPS(o[0][2*pb], mx)
			VMAXPS(mx, o[0][2*pb+1], mx) // mx = v > mx ? v : mx: the pool's order
			VMAXPS(mx, o[1][2*pb], mx)
			VMAXPS(mx, o[1][2*pb+1], mx)
			mxs[pb] = mx
		}
		storeRow(mxs, s*h, fmt.Sprintf("p%d", s))
		for _, mx := range mxs {
			al.put(mx)
		}
		JMP(LabelRef(lab("stored" + sfx)))
		Label(lab("nopool" + sfx))
		for r := 0; r < 2; r++ {
			a := 2*s + r
			MOVQ(y, reg.RAX)
			for i := 0; i < a; i++ {
				ADDQ(yw, reg.RAX)
			}
			storeRow(o[r], a*m, fmt.Sprintf("u%d", a))
		}
		Label(lab("stored" + sfx))
		for r := 0; r < 2; r++ {
			for _, z := range o[r] {
				al.put(z)
			}
		}
	}
	ADDQ(U8(4), bias)
	ADDQ(yhw, resid)
	ADDQ(yhw, y)
	ADDQ(ldm, mb)
	DECQ(rows)
	JNZ(LabelRef(lab("row")))
	Label(lab("done"))
	VZEROUPPER()
	RET()
}
