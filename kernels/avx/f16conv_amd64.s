//go:build !noasm && amd64

#include "textflag.h"

// Hand-written F16C conversions (AVX-512 forms), n a multiple of 16.

// func f16ToF32AVX512(dst *float32, src *uint16, n int)
TEXT ·f16ToF32AVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	XORQ BX, BX

widen:
	CMPQ      BX, CX
	JGE       widened
	VCVTPH2PS (SI)(BX*2), Z0
	VMOVUPS   Z0, (DI)(BX*4)
	ADDQ      $16, BX
	JMP       widen

widened:
	VZEROUPPER
	RET

// func f32ToF16AVX512(dst *uint16, src *float32, n int)
TEXT ·f32ToF16AVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	XORQ BX, BX

narrow:
	CMPQ      BX, CX
	JGE       narrowed
	VMOVUPS   (SI)(BX*4), Z0
	VCVTPS2PH $0, Z0, (DI)(BX*2) // round half to even
	ADDQ      $16, BX
	JMP       narrow

narrowed:
	VZEROUPPER
	RET
