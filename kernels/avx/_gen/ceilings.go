package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// The machine's ceilings, for benchmarks only: how fast a core can issue
// FMAs and VPDPBUSDs with nothing else in the way, and how fast memory
// streams (see ../ceilings_test.go).

// peakLoop emits n iterations of 24 independent accumulations into
// z0..z23 (more chains than FMA latency × pipes), sources z24 and z25.
func peakLoop(name, doc string, op func(a, b, acc reg.VecPhysical)) {
	TEXT(name, NOSPLIT, "func(n int)")
	Doc(doc)
	n := Load(Param("n"), reg.RCX)
	for i := 0; i < 26; i++ {
		VPXORD(zmm(i), zmm(i), zmm(i))
	}
	TESTQ(n, n)
	JEQ(LabelRef(name + "_done"))
	Label(name + "_loop")
	for i := 0; i < 24; i++ {
		op(zmm(24), zmm(25), zmm(i))
	}
	DECQ(n)
	JNE(LabelRef(name + "_loop"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}

func ceilings() {
	peakLoop("fmaPeakAVX512", "fmaPeakAVX512 runs n×24 independent VFMADD231PS zmm (n×768 flops).",
		func(a, b, acc reg.VecPhysical) { VFMADD231PS(a, b, acc) })
	peakLoop("vnniPeakAVX512", "vnniPeakAVX512 runs n×24 independent VPDPBUSD zmm (n×3072 int8 ops).",
		func(a, b, acc reg.VecPhysical) { raw("VPDPBUSD", a, b, acc) })

	TEXT("triadAVX512", NOSPLIT, "func(a, b, c *float32, s float32, n int)")
	Doc("triadAVX512 computes a[i] = b[i] + s·c[i] for i < n (n a multiple of 64), STREAM's triad.")
	a := Load(Param("a"), reg.RDI)
	b := Load(Param("b"), reg.RSI)
	c := Load(Param("c"), reg.RDX)
	n := Load(Param("n"), reg.RCX)
	sv := zmm(8)
	VBROADCASTSS(NewParamAddr("s", 24), sv)
	SHRQ(U8(6), n)
	JEQ(LabelRef("triad_done"))
	Label("triad_loop")
	for i := 0; i < 4; i++ {
		VMOVUPS(Mem{Base: b, Disp: 64 * i}, zmm(i))
		VFMADD231PS(Mem{Base: c, Disp: 64 * i}, sv, zmm(i))
		VMOVUPS(zmm(i), Mem{Base: a, Disp: 64 * i})
	}
	ADDQ(U32(256), a)
	ADDQ(U32(256), b)
	ADDQ(U32(256), c)
	DECQ(n)
	JNE(LabelRef("triad_loop"))
	Label("triad_done")
	VZEROUPPER()
	RET()
}
