//go:build !noasm

#include "textflag.h"

// AVX-512 twins of geluBlock and expShiftBlock (vecmath.go): the same
// float32 operations in the same order, 16 lanes at a time, no FMA, so the
// results equal the Go loops bit for bit (vecmath_test.go forces both).

DATA geluK<>+0(SB)/4, $0x3f3504f3  // √2/2
DATA geluK<>+4(SB)/4, $0xc0800000  // -4
DATA geluK<>+8(SB)/4, $0x40800000  // 4
DATA geluK<>+12(SB)/4, $0xaf95df0b // erf numerator x^13 ... x^1
DATA geluK<>+16(SB)/4, $0x32edffee
DATA geluK<>+20(SB)/4, $0xb60cff51
DATA geluK<>+24(SB)/4, $0xb86ec2d2
DATA geluK<>+28(SB)/4, $0xba40ac63
DATA geluK<>+32(SB)/4, $0xbb41a1f6
DATA geluK<>+36(SB)/4, $0xbc83dbd4
DATA geluK<>+40(SB)/4, $0xb77460cd // erf denominator x^8 ... x^0
DATA geluK<>+44(SB)/4, $0xb95fbd29
DATA geluK<>+48(SB)/4, $0xbadc924e
DATA geluK<>+52(SB)/4, $0xbbf19bf8
DATA geluK<>+56(SB)/4, $0xbc69b6a7
DATA geluK<>+60(SB)/4, $0x3f000000 // 0.5
DATA geluK<>+64(SB)/4, $0x3f800000 // 1
GLOBL geluK<>(SB), RODATA|NOPTR, $68

// func geluAVX512(x *float32, n int): x[i] = Gelu32(x[i]), n a multiple of 16.
TEXT ·geluAVX512(SB), NOSPLIT, $0-16
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	TESTQ CX, CX
	JZ   gdone
	VBROADCASTSS geluK<>+0(SB), Z16
	VBROADCASTSS geluK<>+4(SB), Z17
	VBROADCASTSS geluK<>+8(SB), Z18
	VBROADCASTSS geluK<>+12(SB), Z19
	VBROADCASTSS geluK<>+16(SB), Z20
	VBROADCASTSS geluK<>+20(SB), Z21
	VBROADCASTSS geluK<>+24(SB), Z22
	VBROADCASTSS geluK<>+28(SB), Z23
	VBROADCASTSS geluK<>+32(SB), Z24
	VBROADCASTSS geluK<>+36(SB), Z25
	VBROADCASTSS geluK<>+40(SB), Z26
	VBROADCASTSS geluK<>+44(SB), Z27
	VBROADCASTSS geluK<>+48(SB), Z28
	VBROADCASTSS geluK<>+52(SB), Z29
	VBROADCASTSS geluK<>+56(SB), Z30
	VBROADCASTSS geluK<>+60(SB), Z31
	VBROADCASTSS geluK<>+64(SB), Z15

gloop:
	VMOVUPS (SI), Z0
	VMULPS  Z16, Z0, Z1 // z = x·(√2/2)
	VMAXPS  Z1, Z17, Z1 // max(-4, z), NaN z kept
	VMINPS  Z1, Z18, Z1 // min(4, z), NaN z kept
	VMULPS  Z1, Z1, Z2  // z²
	VMULPS  Z2, Z19, Z3 // p
	VADDPS  Z20, Z3, Z3
	VMULPS  Z2, Z3, Z3
	VADDPS  Z21, Z3, Z3
	VMULPS  Z2, Z3, Z3
	VADDPS  Z22, Z3, Z3
	VMULPS  Z2, Z3, Z3
	VADDPS  Z23, Z3, Z3
	VMULPS  Z2, Z3, Z3
	VADDPS  Z24, Z3, Z3
	VMULPS  Z2, Z3, Z3
	VADDPS  Z25, Z3, Z3
	VMULPS  Z1, Z3, Z3  // p·z
	VMULPS  Z2, Z26, Z4 // q
	VADDPS  Z27, Z4, Z4
	VMULPS  Z2, Z4, Z4
	VADDPS  Z28, Z4, Z4
	VMULPS  Z2, Z4, Z4
	VADDPS  Z29, Z4, Z4
	VMULPS  Z2, Z4, Z4
	VADDPS  Z30, Z4, Z4
	VDIVPS  Z4, Z3, Z5  // erf = p/q
	VMULPS  Z31, Z0, Z6 // 0.5·x
	VADDPS  Z15, Z5, Z5 // 1 + erf
	VMULPS  Z5, Z6, Z0
	VMOVUPS Z0, (SI)
	ADDQ    $64, SI
	SUBQ    $16, CX
	JNZ     gloop
	VZEROUPPER

gdone:
	RET

DATA expK<>+0(SB)/4, $0x3fb8aa3b  // log2(e)
DATA expK<>+4(SB)/4, $0x3f000000  // 0.5
DATA expK<>+8(SB)/4, $0x3f317200  // ln2 high part
DATA expK<>+12(SB)/4, $0x35bfbe8e // ln2 low part
DATA expK<>+16(SB)/4, $0x3ab60b61 // 1/720
DATA expK<>+20(SB)/4, $0x3c088889 // 1/120
DATA expK<>+24(SB)/4, $0x3d2aaaab // 1/24
DATA expK<>+28(SB)/4, $0x3e2aaaab // 1/6
DATA expK<>+32(SB)/4, $0x3f800000 // 1
DATA expK<>+36(SB)/4, $0x42b17218 // overflow threshold 88.72284
DATA expK<>+40(SB)/4, $0xc2cff1b4 // underflow threshold -103.97208
DATA expK<>+44(SB)/4, $0x7f800000 // +Inf
GLOBL expK<>(SB), RODATA|NOPTR, $48

// func expShiftAVX512(x *float32, n int, shift float32, lanes *[16]float32):
// x[i] = Exp32(x[i] - shift), lanes[i%16] += x[i]; n a multiple of 16.
TEXT ·expShiftAVX512(SB), NOSPLIT, $0-32
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ lanes+24(FP), DI
	TESTQ CX, CX
	JZ   edone
	VBROADCASTSS shift+16(FP), Z20
	VMOVUPS      (DI), Z21
	VBROADCASTSS expK<>+0(SB), Z22
	VBROADCASTSS expK<>+4(SB), Z23
	VBROADCASTSS expK<>+8(SB), Z24
	VBROADCASTSS expK<>+12(SB), Z25
	VBROADCASTSS expK<>+16(SB), Z26
	VBROADCASTSS expK<>+20(SB), Z27
	VBROADCASTSS expK<>+24(SB), Z28
	VBROADCASTSS expK<>+28(SB), Z29
	VBROADCASTSS expK<>+32(SB), Z30
	VBROADCASTSS expK<>+36(SB), Z31
	VBROADCASTSS expK<>+40(SB), Z19
	VBROADCASTSS expK<>+44(SB), Z18
	VXORPS       Z17, Z17, Z17

	CMPQ CX, $32
	JLT  eloop

	// Two blocks of 16 per iteration (independent chains, so the
	// out-of-order core overlaps them); lanes get block A, then block B,
	// as in the Go loop.
eloop2:
	VMOVUPS     (SI), Z0
	VMOVUPS     64(SI), Z8
	VSUBPS      Z20, Z0, Z0
	VSUBPS      Z20, Z8, Z8
	VMULPS      Z22, Z0, Z1
	VMULPS      Z22, Z8, Z9
	VADDPS      Z23, Z1, Z1
	VADDPS      Z23, Z9, Z9
	VRNDSCALEPS $1, Z1, Z1
	VRNDSCALEPS $1, Z9, Z9
	VMULPS      Z24, Z1, Z2
	VMULPS      Z24, Z9, Z10
	VSUBPS      Z2, Z0, Z2
	VSUBPS      Z10, Z8, Z10
	VMULPS      Z25, Z1, Z3
	VMULPS      Z25, Z9, Z11
	VSUBPS      Z3, Z2, Z2
	VSUBPS      Z11, Z10, Z10
	VMULPS      Z2, Z26, Z3
	VMULPS      Z10, Z26, Z11
	VADDPS      Z27, Z3, Z3
	VADDPS      Z27, Z11, Z11
	VMULPS      Z2, Z3, Z3
	VMULPS      Z10, Z11, Z11
	VADDPS      Z28, Z3, Z3
	VADDPS      Z28, Z11, Z11
	VMULPS      Z2, Z3, Z3
	VMULPS      Z10, Z11, Z11
	VADDPS      Z29, Z3, Z3
	VADDPS      Z29, Z11, Z11
	VMULPS      Z2, Z3, Z3
	VMULPS      Z10, Z11, Z11
	VADDPS      Z23, Z3, Z3
	VADDPS      Z23, Z11, Z11
	VMULPS      Z2, Z3, Z3
	VMULPS      Z10, Z11, Z11
	VADDPS      Z30, Z3, Z3
	VADDPS      Z30, Z11, Z11
	VMULPS      Z2, Z3, Z3
	VMULPS      Z10, Z11, Z11
	VADDPS      Z30, Z3, Z3
	VADDPS      Z30, Z11, Z11
	VSCALEFPS   Z1, Z3, Z3
	VSCALEFPS   Z9, Z11, Z11
	VCMPPS      $0x1e, Z31, Z0, K1
	VMOVAPS     Z18, K1, Z3
	VCMPPS      $0x11, Z19, Z0, K2
	VMOVAPS     Z17, K2, Z3
	VCMPPS      $0x1e, Z31, Z8, K3
	VMOVAPS     Z18, K3, Z11
	VCMPPS      $0x11, Z19, Z8, K4
	VMOVAPS     Z17, K4, Z11
	VMOVUPS     Z3, (SI)
	VMOVUPS     Z11, 64(SI)
	VADDPS      Z3, Z21, Z21
	VADDPS      Z11, Z21, Z21
	ADDQ        $128, SI
	SUBQ        $32, CX
	CMPQ        CX, $32
	JGE         eloop2
	TESTQ       CX, CX
	JZ          estore

eloop:
	VMOVUPS     (SI), Z0
	VSUBPS      Z20, Z0, Z0 // x - shift
	VMULPS      Z22, Z0, Z1 // x·log2e
	VADDPS      Z23, Z1, Z1 // + 0.5
	VRNDSCALEPS $1, Z1, Z1  // n = floor
	VMULPS      Z24, Z1, Z2
	VSUBPS      Z2, Z0, Z2  // t = x - n·ln2hi
	VMULPS      Z25, Z1, Z3
	VSUBPS      Z3, Z2, Z2  // t -= n·ln2lo
	VMULPS      Z2, Z26, Z3 // p
	VADDPS      Z27, Z3, Z3
	VMULPS      Z2, Z3, Z3
	VADDPS      Z28, Z3, Z3
	VMULPS      Z2, Z3, Z3
	VADDPS      Z29, Z3, Z3
	VMULPS      Z2, Z3, Z3
	VADDPS      Z23, Z3, Z3
	VMULPS      Z2, Z3, Z3
	VADDPS      Z30, Z3, Z3
	VMULPS      Z2, Z3, Z3
	VADDPS      Z30, Z3, Z3
	VSCALEFPS   Z1, Z3, Z3        // p·2^n, one rounding
	VCMPPS      $0x1e, Z31, Z0, K1 // x > hi
	VMOVAPS     Z18, K1, Z3
	VCMPPS      $0x11, Z19, Z0, K2 // x < lo
	VMOVAPS     Z17, K2, Z3
	VMOVUPS     Z3, (SI)
	VADDPS      Z3, Z21, Z21
	ADDQ        $64, SI
	SUBQ        $16, CX
	JNZ         eloop

estore:
	VMOVUPS     Z21, (DI)
	VZEROUPPER

edone:
	RET

// func quantizeAVX512(dst *byte, src *float32, n int, k *[4]float32):
// dst[i] = code of src[i] as quantizeBlock (k: y_scale, zero point, lo, hi
// in code space); n a multiple of 16.
TEXT ·quantizeAVX512(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ k+24(FP), AX
	TESTQ CX, CX
	JZ   qdone
	VBROADCASTSS 0(AX), Z20  // y_scale
	VBROADCASTSS 4(AX), Z21  // zero point
	VBROADCASTSS 8(AX), Z22  // lo
	VBROADCASTSS 12(AX), Z23 // hi

qloop:
	VMOVUPS     (SI), Z0
	VDIVPS      Z20, Z0, Z0 // y / y_scale
	VRNDSCALEPS $0, Z0, Z0  // round half to even
	VADDPS      Z21, Z0, Z0 // + zero point
	VMAXPS      Z22, Z0, Z0 // max(r, lo); NaN r gives lo
	VMINPS      Z23, Z0, Z0 // min(r, hi)
	VCVTPS2DQ   Z0, Z0
	VPMOVDB     Z0, X1
	VMOVDQU     X1, (DI)
	ADDQ        $64, SI
	ADDQ        $16, DI
	SUBQ        $16, CX
	JNZ         qloop
	VZEROUPPER

qdone:
	RET

// func scaleMaskMaxAVX512(x, mask *float32, n int, scale float32) (mx float32, nan bool):
// x[i] = x[i]·scale (+ mask[i] when mask is not nil), and the maximum of
// the results (nan: one of them is NaN); n a multiple of 16.
TEXT ·scaleMaskMaxAVX512(SB), NOSPLIT, $0-37
	MOVQ x+0(FP), SI
	MOVQ mask+8(FP), DX
	MOVQ n+16(FP), CX
	VBROADCASTSS scale+24(FP), Z20
	VBROADCASTSS expK<>+44(SB), Z21 // +Inf
	VXORPS       Z22, Z22, Z22
	VSUBPS       Z21, Z22, Z21      // running max: -Inf
	KXORW        K2, K2, K2         // NaN seen
	TESTQ DX, DX
	JZ    snomask

smask:
	VMOVUPS (SI), Z0
	VMULPS  Z20, Z0, Z0
	VADDPS  (DX), Z0, Z0
	VMOVUPS Z0, (SI)
	VCMPPS  $3, Z0, Z0, K1 // unordered: NaN
	KORW    K1, K2, K2
	VMAXPS  Z0, Z21, Z21
	ADDQ    $64, SI
	ADDQ    $64, DX
	SUBQ    $16, CX
	JNZ     smask
	JMP     sreduce

snomask:
	VMOVUPS (SI), Z0
	VMULPS  Z20, Z0, Z0
	VMOVUPS Z0, (SI)
	VCMPPS  $3, Z0, Z0, K1
	KORW    K1, K2, K2
	VMAXPS  Z0, Z21, Z21
	ADDQ    $64, SI
	SUBQ    $16, CX
	JNZ     snomask

sreduce:
	VEXTRACTF32X8 $1, Z21, Y1
	VMAXPS        Y1, Y21, Y21
	VEXTRACTF32X4 $1, Y21, X1
	VMAXPS        X1, X21, X21
	VPERMILPS     $0x4e, X21, X1
	VMAXPS        X1, X21, X21
	VPERMILPS     $0xb1, X21, X1
	VMAXPS        X1, X21, X21
	VMOVSS        X21, mx+32(FP)
	KMOVW         K2, AX
	TESTW         AX, AX
	SETNE         nan+36(FP)
	VZEROUPPER
	RET

// func sumLanesAVX512(x *float32, n int, lanes *[16]float32): lanes[i%16] += x[i]; n a multiple of 16.
TEXT ·sumLanesAVX512(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ lanes+16(FP), DI
	TESTQ CX, CX
	JZ   sldone
	VMOVUPS (DI), Z1

slloop:
	VADDPS (SI), Z1, Z1
	ADDQ   $64, SI
	SUBQ   $16, CX
	JNZ    slloop
	VMOVUPS Z1, (DI)
	VZEROUPPER

sldone:
	RET

// func devLanesAVX512(x *float32, n int, mean float32, d, q *[16]float32):
// e = x[i] − mean; d[i%16] += e; q[i%16] += e·e; n a multiple of 16.
TEXT ·devLanesAVX512(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ d+24(FP), DI
	MOVQ q+32(FP), DX
	TESTQ CX, CX
	JZ   dldone
	VBROADCASTSS mean+16(FP), Z0
	VMOVUPS (DI), Z1
	VMOVUPS (DX), Z2

dlloop:
	VMOVUPS (SI), Z3
	VSUBPS  Z0, Z3, Z3
	VADDPS  Z3, Z1, Z1
	VMULPS  Z3, Z3, Z3
	VADDPS  Z3, Z2, Z2
	ADDQ    $64, SI
	SUBQ    $16, CX
	JNZ     dlloop
	VMOVUPS Z1, (DI)
	VMOVUPS Z2, (DX)
	VZEROUPPER

dldone:
	RET

// func normAffineAVX512(y, x, gamma, beta *float32, n int, k *[3]float32):
// y[i] = ((x[i] − mean) − dm)·r·gamma[i] (+ beta[i] unless beta is nil),
// k = {mean, dm, r}; n a multiple of 16.
TEXT ·normAffineAVX512(SB), NOSPLIT, $0-48
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ gamma+16(FP), DX
	MOVQ beta+24(FP), BX
	MOVQ n+32(FP), CX
	MOVQ k+40(FP), AX
	TESTQ CX, CX
	JZ   nadone
	VBROADCASTSS 0(AX), Z0
	VBROADCASTSS 4(AX), Z1
	VBROADCASTSS 8(AX), Z2
	TESTQ BX, BX
	JZ   nanobias

naloop:
	VMOVUPS (SI), Z3
	VSUBPS  Z0, Z3, Z3
	VSUBPS  Z1, Z3, Z3
	VMULPS  Z2, Z3, Z3
	VMULPS  (DX), Z3, Z3
	VADDPS  (BX), Z3, Z3
	VMOVUPS Z3, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DI
	ADDQ    $64, DX
	ADDQ    $64, BX
	SUBQ    $16, CX
	JNZ     naloop
	VZEROUPPER
	RET

nanobias:
	VMOVUPS (SI), Z3
	VSUBPS  Z0, Z3, Z3
	VSUBPS  Z1, Z3, Z3
	VMULPS  Z2, Z3, Z3
	VMULPS  (DX), Z3, Z3
	VMOVUPS Z3, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DI
	ADDQ    $64, DX
	SUBQ    $16, CX
	JNZ     nanobias
	VZEROUPPER

nadone:
	RET

// func scaleAddAVX512(y, acc, w, b, r *float32, n int, xs float32):
// y[i] = float32(acc[i]·float32(xs·w[i])) + b[i] + r[i], each step rounded
// (kilnq's epilogue before the activation); n a multiple of 16.
TEXT ·scaleAddAVX512(SB), NOSPLIT, $0-52
	MOVQ y+0(FP), DI
	MOVQ acc+8(FP), SI
	MOVQ w+16(FP), DX
	MOVQ b+24(FP), BX
	MOVQ r+32(FP), R8
	MOVQ n+40(FP), CX
	TESTQ CX, CX
	JZ   sadone
	VBROADCASTSS xs+48(FP), Z0

saloop:
	VMULPS  (DX), Z0, Z1 // m = xs·w
	VMULPS  (SI), Z1, Z1 // acc·m
	VADDPS  (BX), Z1, Z1 // + b
	VADDPS  (R8), Z1, Z1 // + r
	VMOVUPS Z1, (DI)
	ADDQ    $64, DI
	ADDQ    $64, SI
	ADDQ    $64, DX
	ADDQ    $64, BX
	ADDQ    $64, R8
	SUBQ    $16, CX
	JNZ     saloop
	VZEROUPPER

sadone:
	RET
