//go:build !noasm && amd64

#include "textflag.h"

// func f8EpilogueAVX512(acc *float32, codes *byte, n int, p *F8Epi) int
// Hand-written (not generated: sgemm_amd64.s's avo program belongs to the
// FP32/INT8 kernels); n is a multiple of 16. F8Epi: M+0 B+4 YScale+8 Sub+12
// Half+16 Rebias+20 Lo+24 Hi+28 Sh+32 Relu+36 Z+40 PerLane+44 MS+48 BS+56.
TEXT ·f8EpilogueAVX512(SB), NOSPLIT, $0-40
	MOVQ acc+0(FP), SI
	MOVQ codes+8(FP), DI
	MOVQ n+16(FP), CX
	MOVQ p+24(FP), DX
	VBROADCASTSS 0(DX), Z16
	VBROADCASTSS 4(DX), Z17
	VBROADCASTSS 8(DX), Z18
	VBROADCASTSS 12(DX), Z19
	VPBROADCASTD 16(DX), Z20
	VPBROADCASTD 20(DX), Z21
	VPBROADCASTD 24(DX), Z22
	VPBROADCASTD 28(DX), Z23
	MOVL 32(DX), AX
	VMOVD AX, X24
	MOVL 36(DX), R8
	MOVL $0x7fffffff, AX
	VPBROADCASTD AX, Z25
	MOVL $1, AX
	VPBROADCASTD AX, Z26
	MOVL $0x80, AX
	VPBROADCASTD AX, Z27
	VPXORD Z28, Z28, Z28
	VBROADCASTSS 40(DX), Z29
	MOVL 44(DX), R9
	MOVQ 48(DX), R10
	MOVQ 56(DX), R11
	XORQ BX, BX

loop:
	CMPQ BX, CX
	JGE  done
	TESTL   R9, R9
	JZ      broadcast
	VMOVUPS (R10)(BX*4), Z16 // PerLane: M and B of each element
	VMOVUPS (R11)(BX*4), Z17

broadcast:
	VMOVUPS (SI)(BX*4), Z0
	VMULPS  Z16, Z0, Z0     // float32(acc·M)
	VADDPS  Z17, Z0, Z0     // + B
	VADDPS  Z29, Z0, Z0     // + Z (+0: the absent residual, −0 becomes +0)
	TESTL   R8, R8
	JZ      scaled
	VCMPPS  $2, Z28, Z0, K1 // Relu: y <= 0 (false for NaN) becomes +0
	VMOVAPS Z28, K1, Z0

scaled:
	VDIVPS   Z18, Z0, Z0     // v = y / YScale
	VPANDD   Z25, Z0, Z1     // mag
	VPCMPUD  $5, Z23, Z1, K2 // mag >= Hi (or NaN): leave the block to the caller
	KORTESTW K2, K2
	JNZ      done
	VPSRLD   X24, Z1, Z2
	VPANDD   Z26, Z2, Z2
	VPADDD   Z20, Z2, Z2
	VPADDD   Z1, Z2, Z2
	VPSRLD   X24, Z2, Z2
	VPSUBD   Z21, Z2, Z2     // normal: round half even on the bits, rebias
	VMULPS   Z19, Z1, Z3
	VCVTPS2DQ Z3, Z3         // subnormal: magnitude / smallest subnormal, half even (MXCSR)
	VPCMPUD  $1, Z22, Z1, K3 // mag < Lo
	VMOVDQA32 Z3, K3, Z2
	VPSRLD   $24, Z0, Z4
	VPANDD   Z27, Z4, Z4
	VPORD    Z4, Z2, Z2      // sign
	VPMOVDB  Z2, (DI)(BX*1)
	ADDQ     $16, BX
	JMP      loop

done:
	MOVQ BX, ret+32(FP)
	VZEROUPPER
	RET
