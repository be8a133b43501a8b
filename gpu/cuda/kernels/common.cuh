// Helpers shared by kiln's CUDA sources (kiln.cu, igemm.cu): NVRTC compiles
// each source with this prelude in front (no CUDA headers: the few
// conversions we need are inline PTX).
typedef unsigned short u16;
typedef unsigned char u8;
typedef long long i64;

// pdl_enter starts every kiln kernel (gpu/cuda/pdl.go): the backend may
// launch a kernel as a programmatic dependent of the one before it, which
// lets it start before that one has finished; griddepcontrol.wait holds it
// until the previous grid has completed and its writes are visible, and
// launch_dependents then lets the next kernel's grid be scheduled while
// this one runs. Launched the ordinary way both are no-ops. Nothing may be
// read or written before it (TestKernelsStartWithPDLEnter checks that it is
// each kernel's first statement).
__device__ __forceinline__ void pdl_enter() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

#define GRID_LOOP(i, n) for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (i64)gridDim.x * blockDim.x)

__device__ __forceinline__ float h2f(u16 h) { float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h)); return f; }
__device__ __forceinline__ u16 f2h(float f) { u16 h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h; }
__device__ __forceinline__ float bf2f(u16 h) { return __uint_as_float(((unsigned)h) << 16); }
__device__ __forceinline__ u16 f2bf(float f) { u16 h; asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h; }
// E4M3FN: saturating, round to nearest even (ONNX's saturate=1).
__device__ __forceinline__ u8 f2e4m3(float f) {
    u16 r; asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(r) : "f"(0.0f), "f"(f)); return (u8)(r & 0xff);
}
__device__ __forceinline__ float e4m32f(u8 q) {
    unsigned r; u16 in = q; asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(r) : "h"(in)); return h2f((u16)(r & 0xffff));
}
__device__ __forceinline__ signed char f2i8(float v, int zp, int lo, int hi) {
    float r = rintf(v);
    if (r != r) return (signed char)lo; // as the reference: NaN saturates low
    float q = r + (float)zp;
    q = fminf(fmaxf(q, (float)lo), (float)hi);
    return (signed char)(int)q;
}

// a / b and a % b for non-negative a, b, in 32 bits when both fit (every
// tensor so far): a 64-bit division is a call of about a hundred
// instructions, which dominated the index arithmetic of the elementwise,
// im2col and epilogue kernels.
__device__ __forceinline__ i64 qdiv(i64 a, i64 b) {
    return ((unsigned long long)(a | b) >> 31) ? a / b : (i64)((unsigned)a / (unsigned)b);
}
__device__ __forceinline__ i64 qmod(i64 a, i64 b) { return a - qdiv(a, b) * b; }

// Activations of kiln's fused ops (ops/kiln/activation.go), in double like
// the reference, rounded to float by the caller.
enum { A_NONE, A_RELU, A_CLIP, A_LEAKY, A_SIGMOID, A_TANH, A_GELU, A_GELUTANH, A_HARDSWISH, A_HARDSIGMOID };
// A_FAST | A_NONE or A_FAST | A_CLIP: the fast epilogue of the wgmma NHWC
// kernels (nhwc.cuh qfast; backend/cuda fastepi.go): the host folded 1/ys
// into the scales, biases and residual scale, and the zero point into the
// biases; ReLU and Clip are in the bounds vlo, vhi.
enum { A_FAST = 0x100 };
// erf32 and gelu32 are ops/kiln's Erf32 and Gelu32 (the CPU kernels' and
// kilnq's GELU) step for step, every product, sum and quotient rounded to
// float with the _rn intrinsics, which NVRTC never contracts into FMAs: the
// same bits as the CPU engine.
__device__ __forceinline__ float erf32(float x) {
    if (x != x) return x;
    x = fminf(fmaxf(x, -4.f), 4.f);
    float x2 = __fmul_rn(x, x);
    float p = -2.72614225801306e-10f;
    p = __fadd_rn(__fmul_rn(p, x2), 2.77068142495902e-08f);
    p = __fsub_rn(__fmul_rn(p, x2), 2.10102402082508e-06f);
    p = __fsub_rn(__fmul_rn(p, x2), 5.69250639462346e-05f);
    p = __fsub_rn(__fmul_rn(p, x2), 7.34990630326855e-04f);
    p = __fsub_rn(__fmul_rn(p, x2), 2.95459980854025e-03f);
    p = __fsub_rn(__fmul_rn(p, x2), 1.60960333262415e-02f);
    p = __fmul_rn(p, x);
    float q = -1.45660718464996e-05f;
    q = __fsub_rn(__fmul_rn(q, x2), 2.13374055278905e-04f);
    q = __fsub_rn(__fmul_rn(q, x2), 1.68282697438203e-03f);
    q = __fsub_rn(__fmul_rn(q, x2), 7.37332916720468e-03f);
    q = __fsub_rn(__fmul_rn(q, x2), 1.42647390514189e-02f);
    return __fdiv_rn(p, q);
}
__device__ __forceinline__ float gelu32(float x) {
    float e = erf32(__fmul_rn(x, 0.70710678118654752f)); // x·(√2/2), the constant rounded to float as in Go
    return __fmul_rn(__fmul_rn(0.5f, x), __fadd_rn(1.f, e));
}
// GELU is gelu32 (the CPU engine's float GELU, within 1e-7 + 5e-7·|x| of the
// double one). ReLU, Clip and LeakyRelu are computed in float: their double results are
// floats already (a product of two floats is exact in double, so rounding
// it once gives the float product), and double conversions cost epilogues
// more than their arithmetic.
__device__ __forceinline__ float act_rare_body(float xf, int k, float af, float bf) {
    double x = xf, a = af, b = bf;
    switch (k) {
    case A_GELU: return gelu32(xf);
    case A_SIGMOID: return (float)(1.0 / (1.0 + exp(-x)));
    case A_TANH: return (float)tanh(x);
    case A_GELUTANH: return (float)(0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))));
    case A_HARDSWISH: return (float)(x * fmax(0.0, fmin(1.0, x / 6.0 + 0.5)));
    case A_HARDSIGMOID: return (float)fmax(0.0, fmin(1.0, a * x + b));
    }
    return xf;
}
__device__ __forceinline__ float act(float xf, int k, float af, float bf) {
    switch (k) {
    case A_NONE: return xf;
    case A_RELU: return xf > 0.f ? xf : (xf == xf ? 0.f : xf);
    case A_CLIP: return fminf(fmaxf(xf, af), bf);
    case A_LEAKY: return xf < 0.f ? xf * af : xf;
    }
    return act_rare_body(xf, k, af, bf);
}
// act_rare is the transcendental cases out of line, and act_k<K> one
// activation known at compile time (K = -1: ReLU/Clip/LeakyRelu are not K,
// the rest through act_rare): the NHWC epilogue (igemm.cu) dispatches on
// the activation once per tile instead of once per element, so that its
// unrolled element loop is straight-line code (a switch per element split
// it into dependent basic blocks, and the inlined transcendental cases made
// the kernels several times larger than their hot path).
__device__ __noinline__ float act_rare(float xf, int k, float af, float bf) { return act_rare_body(xf, k, af, bf); }
template <int K> __device__ __forceinline__ float act_k(float x, int k, float a, float b) {
    if constexpr (K == A_NONE) return x;
    else if constexpr (K == A_RELU) return x > 0.f ? x : (x == x ? 0.f : x);
    else if constexpr (K == A_CLIP) return fminf(fmaxf(x, a), b);
    else return k == A_LEAKY ? (x < 0.f ? x * a : x) : act_rare(x, k, a, b);
}

// ---- GEMM epilogue: acc[M][ld] (float or int32) → y in NCHW (HW = spatial
// size; 1 for Gemm/MatMul, whose output is row-major [M][Cout]):
//   y = act(float(acc)·mscale[c] + bias[c] + resid) then, with yscale > 0,
//   quantized. mscale, bias and resid may be null.
// v / s for quantization (s > 0): an exact zero skips the division, whose
// IEEE slow path (a called subroutine, taken for zero dividends) cost the
// INT8 epilogues more than everything else after a ReLU; the result is
// the same (±0 / s = ±0).
__device__ __forceinline__ float qscale(float v, float s) { return v == 0.f ? v : v / s; }
__device__ __forceinline__ void store(float* y, i64 o, float v, float, int) { y[o] = v; }
__device__ __forceinline__ void store(u16* y, i64 o, float v, float, int fmt) { y[o] = fmt == 1 ? f2bf(v) : f2h(v); }
__device__ __forceinline__ void store(signed char* y, i64 o, float v, float ys, int zp) { y[o] = f2i8(qscale(v, ys), zp, -128, 127); }
__device__ __forceinline__ void store(u8* y, i64 o, float v, float ys, int) { y[o] = f2e4m3(qscale(v, ys)); }
struct u8q { u8 v; }; // uint8 codes with a zero point (as opposed to E4M3 bytes)
__device__ __forceinline__ void store(u8q* y, i64 o, float v, float ys, int zp) { y[o].v = (u8)f2i8(qscale(v, ys), zp, 0, 255); }
// accumulator to float; int accumulators of uint8 activations get the
// zero-point correction zc·colsum[c] first (exact in int32)
__device__ __forceinline__ float accf(float a, const int*, int, int) { return a; }
__device__ __forceinline__ float accf(int a, const int* cs, int zc, int c) { return (float)(cs ? a + zc * cs[c] : a); }

// residual reads: rfmt 0 float32, 1 float16, 2 bfloat16 (16-bit engines
// add the residual in the layer's own type); codes (ops/kilnq's z_scale >
// 0): 3 int8, 4 uint8, 5 E4M3FN, 6 E5M2, whose value is DequantizeLinear's
// bit for bit (kilnq.Layer.ResidualValue): float32(float32(code − zz)·zs),
// float32(decode(code)·zs) for float8 (zz 0). The product is __fmul_rn so
// that it is never contracted into the epilogue's following add.
__device__ __forceinline__ float zcode(unsigned code, int rfmt, float zs, int zz) {
    float c;
    switch (rfmt) {
    case 3: c = (float)((int)(signed char)code - zz); break;
    case 4: c = (float)((int)code - zz); break;
    case 5: c = e4m32f((u8)code); break;
    default: c = h2f((u16)(code << 8)); break; // E5M2 is the high byte of an f16
    }
    return __fmul_rn(c, zs);
}
__device__ __forceinline__ float ldres(const void* r, i64 o, int rfmt, float zs, int zz) {
    if (rfmt == 1) return h2f(((const u16*)r)[o]);
    if (rfmt == 2) return bf2f(((const u16*)r)[o]);
    if (rfmt >= 3) return zcode(((const u8*)r)[o], rfmt, zs, zz);
    return ((const float*)r)[o];
}

// 4D layouts: element i of an [N][C][H][W] tensor stored NCHW (nhwc = 0)
// or NHWC (1) → its coordinates, and coordinates → the storage index.
__device__ __forceinline__ void coords4(i64 i, int C, int H, int W, int nhwc, int& n, int& c, int& h, int& w) {
    if (nhwc) {
        c = (int)qmod(i, C); i64 t = qdiv(i, C); w = (int)qmod(t, W); t = qdiv(t, W); h = (int)qmod(t, H); n = (int)qdiv(t, H);
    } else {
        w = (int)qmod(i, W); i64 t = qdiv(i, W); h = (int)qmod(t, H); t = qdiv(t, H); c = (int)qmod(t, C); n = (int)qdiv(t, C);
    }
}
__device__ __forceinline__ i64 index4(int n, int c, int h, int w, int C, int H, int W, int nhwc) {
    return nhwc ? (((i64)n * H + h) * W + w) * C + c : (((i64)n * C + c) * H + h) * W + w;
}

// ---- division-free requantization (the NHWC epilogues, dw_nhwc8_*): the
// host passes yr = RN(1/ys); lowerings that use these take ys in
// [2⁻⁴⁰, 2⁴⁰] only.
__device__ __forceinline__ unsigned e4m3x2_h2(u16 pair) { unsigned r; asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(r) : "h"(pair)); return r; }
// qdivr is qscale(v, ys), IEEE's correctly rounded v / ys, without the
// division's range check and slow-path branch (a basic block per element):
// Markstein's correction q0 + (v − ys·q0)·yr with yr = RN(1/ys) (the host's)
// is the correctly rounded quotient when nothing overflows (checked here on
// 2·10⁸ random pairs: none differ). v is clamped to ±2⁶⁰ (NaN kept) and the
// NHWC lowering takes only ys in [2⁻⁴⁰, 2⁴⁰], so |q| < 2¹⁰⁰; every |v| beyond
// the clamp gives a quotient past every 8-bit code's range either way. An
// exact zero keeps its sign, as qscale does.
//
// The clamp keeps NaN (max.NaN/min.NaN) and the quotient takes v's sign
// (one LOP3): the same bits as the NaN and zero tests it replaces, since a
// correctly rounded quotient by ys > 0 has v's sign, ±0 included, and NaN
// stays NaN (E4M3 has one NaN code per sign).
__device__ __forceinline__ float qdivr(float v, float ys, float yr) {
    float c;
    asm("{ .reg .f32 t; max.NaN.f32 t, %1, 0fDD800000; min.NaN.f32 %0, t, 0f5D800000; }" : "=f"(c) : "f"(v));
    float q0 = __fmul_rn(c, yr);
    float q = __fmaf_rn(__fmaf_rn(-ys, q0, c), yr, q0);
    return __int_as_float((__float_as_int(q) & 0x7fffffff) | (__float_as_int(v) & (int)0x80000000));
}
// qdivr0 is qdivr(ReLU(v)) for E4M3 codes, the ReLU in the clamp: v
// clamped to [+0, 2⁶⁰] (max.NaN/min.NaN keep NaN, as ReLU does), and no
// sign to restore: every v ≤ 0 gives +0 (Markstein's steps turn a −0
// into +0: −ys·−0 + −0 is +0), ReLU's +0, and NaN stays NaN, whose E4M3
// code satfinite conversion makes 0x7F whatever its sign (as after qdivr).
// Four instructions fewer per output than ReLU then qdivr.
__device__ __forceinline__ float qdivr0(float v, float ys, float yr) {
    float c;
    asm("{ .reg .f32 t; max.NaN.f32 t, %1, 0f00000000; min.NaN.f32 %0, t, 0f5D800000; }" : "=f"(c) : "f"(v));
    float q0 = __fmul_rn(c, yr);
    return __fmaf_rn(__fmaf_rn(-ys, q0, c), yr, q0);
}
// qbyte is f2i8's code (rint, + zp, saturated to [lo, hi], NaN → lo) as
// an 8-bit pattern without conversion instructions (FRND and F2I run at
// 1/8 of the FP32 rate): the clamp to [lo − zp, hi − zp] commutes with
// rint (integer bounds), and adding 1.5·2²³ rounds to the nearest integer,
// ties to even, leaving it in the low mantissa bits (|q| < 2²²).
// A NaN q needs no test: fmaxf returns its other operand (IEEE maxNum), so
// the clamp takes NaN to lo − zp and the code to lo.
__device__ __forceinline__ unsigned qbyte(float q, int zp, int lo, int hi) {
    float c = fminf(fmaxf(q, (float)(lo - zp)), (float)(hi - zp));
    int i = __float_as_int(__fadd_rn(c, 12582912.f)) - 0x4B400000 + zp;
    return (unsigned)i & 0xff;
}
// qdivq is qdivr for integer codes, without its NaN and zero cases: a NaN
// v is clamped to −2⁶⁰ (fmaxf) and so gets the lowest code, as f2i8 gives
// NaN; ±0 and every other v give qdivr's quotient or one of the same code.
__device__ __forceinline__ float qdivq(float v, float ys, float yr) {
    float c = fminf(fmaxf(v, -0x1p60f), 0x1p60f);
    float q0 = __fmul_rn(c, yr);
    return __fmaf_rn(__fmaf_rn(-ys, q0, c), yr, q0);
}
// two E4M3 codes from one conversion (a in the low byte)
__device__ __forceinline__ unsigned e4m3x2(float a, float b) {
    u16 r; asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(r) : "f"(b), "f"(a)); return r;
}

// ---- the fast epilogue (A_FAST): a code is round(acc·s' + b' + r·zs')
// clamped, from FFMAs, where the exact one rounds each step and divides
// (qcodew, qdivr): codes one apart where the value lies within a few ulps
// of a rounding tie. qfast: t + 1.5·2²³ rounds t to an integer (ties to
// even) in the low mantissa bits; the host's bounds lo, hi are 1.5·2²³ +
// the lowest and highest codes (ReLU and Clip included), so the clamp is
// the saturation; NaN goes to lo (fmaxf), the lowest code, as f2i8 gives.
// The code is the low byte (pack4, prmt take it).
__device__ __forceinline__ unsigned qfast(float t, float lo, float hi) {
    return __float_as_uint(fminf(fmaxf(__fadd_rn(t, 12582912.f), lo), hi));
}
// clampn is t clamped to [lo, hi] keeping NaN (max.NaN/min.NaN): the fast
// E4M3 epilogue's ReLU and Clip, in code units
__device__ __forceinline__ float clampn(float t, float lo, float hi) {
    float c;
    asm("{ .reg .f32 u; max.NaN.f32 u, %1, %2; min.NaN.f32 %0, u, %3; }" : "=f"(c) : "f"(t), "f"(lo), "f"(hi));
    return c;
}
