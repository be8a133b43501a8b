// kiln's CUDA kernels, compiled at run time by NVRTC after common.cuh.
// Every entry point is extern "C" and grid-strided: launch any grid, every
// element is visited once.

// ---- im2col: NCHW x → cols[Mp][Kp], m = (n, oh, ow), k = (c, kh, kw); zero
// padding outside the image and in the padded rows/columns. One byte-size
// variant per element width (zero bits are zero in every format).
#define IM2COL(NAME, T)                                                                              \
extern "C" __global__ void NAME(const T* __restrict__ x, T* __restrict__ cols, int N, int C, int H,  \
    int W, int KH, int KW, int OH, int OW, int sh, int sw, int ph, int pw, int dh, int dw, int Kp,   \
    i64 Mp) { pdl_enter();                                                                                        \
    i64 M = (i64)N * OH * OW; int K = C * KH * KW;                                                   \
    GRID_LOOP(i, Mp * Kp) {                                                                          \
        i64 m = qdiv(i, Kp); int k = (int)(i - m * Kp); \
        T v = 0;                                                                                     \
        if (m < M && k < K) {                                                                        \
            int ow = (int)(qmod(m, OW)); i64 t = qdiv(m, OW); int oh = (int)(qmod(t, OH)); int n = (int)(qdiv(t, OH)); \
            int kw = k % KW; int t2 = k / KW; int kh = t2 % KH; int c = t2 / KH;                     \
            int ih = oh * sh - ph + kh * dh, iw = ow * sw - pw + kw * dw;                            \
            if (ih >= 0 && ih < H && iw >= 0 && iw < W) v = x[(((i64)n * C + c) * H + ih) * W + iw]; \
        }                                                                                            \
        cols[i] = v;                                                                                 \
    }                                                                                                \
}
// 8-bit activations with a zero point xz (ONNX Runtime's asymmetric form):
// padding holds xz, which contributes nothing once the epilogue adds
// zc·Σw with zc = −xz; uint8 codes (flip) also become int8 codes x − 128
// for the IMMA GEMM, and zc = 128 − xz.
extern "C" __global__ void im2col_zp(const u8* __restrict__ x, u8* __restrict__ cols, int N, int C, int H,
    int W, int KH, int KW, int OH, int OW, int sh, int sw, int ph, int pw, int dh, int dw, int Kp,
    i64 Mp, int xz, int flip) { pdl_enter();
    i64 M = (i64)N * OH * OW; int K = C * KH * KW;
    GRID_LOOP(i, Mp * Kp) {
        i64 m = qdiv(i, Kp); int k = (int)(i - m * Kp);
        u8 v = (u8)xz;
        if (m < M && k < K) {
            int ow = (int)(qmod(m, OW)); i64 t = qdiv(m, OW); int oh = (int)(qmod(t, OH)); int n = (int)(qdiv(t, OH));
            int kw = k % KW; int t2 = k / KW; int kh = t2 % KH; int c = t2 / KH;
            int ih = oh * sh - ph + kh * dh, iw = ow * sw - pw + kw * dw;
            if (ih >= 0 && ih < H && iw >= 0 && iw < W) v = x[(((i64)n * C + c) * H + ih) * W + iw];
        }
        cols[i] = flip ? v ^ 0x80 : v;
    }
}
IM2COL(im2col_b4, unsigned)
IM2COL(im2col_b2, u16)
IM2COL(im2col_b1, u8)

// im2col per image, transposed: cols[n][k][p] with k = (c, kh, kw), p =
// (oh, ow), zero outside the image: the B operand of the NCHW conv GEMM
// (cuda.ConvGemm), whose output Y_n[c][p] is NCHW already.
#define IM2COLT(NAME, T)                                                                             \
extern "C" __global__ void NAME(const T* __restrict__ x, T* __restrict__ cols, int N, int C, int H,  \
    int W, int KH, int KW, int OH, int OW, int sh, int sw, int ph, int pw, int dh, int dw) { pdl_enter();         \
    int K = C * KH * KW; i64 P = (i64)OH * OW;                                                       \
    GRID_LOOP(i, (i64)N * K * P) {                                                                   \
        i64 t = qdiv(i, P); int p = (int)(i - t * P); int k = (int)(qmod(t, K)); int n = (int)(qdiv(t, K)); \
        int ow = p % OW, oh = p / OW;                                                                \
        int kw = k % KW; int t2 = k / KW; int kh = t2 % KH; int c = t2 / KH;                         \
        int ih = oh * sh - ph + kh * dh, iw = ow * sw - pw + kw * dw;                                \
        T v = 0;                                                                                     \
        if (ih >= 0 && ih < H && iw >= 0 && iw < W) v = x[(((i64)n * C + c) * H + ih) * W + iw];     \
        cols[i] = v;                                                                                 \
    }                                                                                                \
}
IM2COLT(im2colt_b4, unsigned)
IM2COLT(im2colt_b2, u16)

template <typename ACC, typename OUT>
__device__ __forceinline__ void epi_one(const ACC* acc, i64 ai, OUT* y, i64 o, int c, const float* ms,
    const float* bias, const void* resid, int rfmt, float zs, int zz, int ak, float aa, float ab, float ys, int zp, const int* cs, int zc) {
    float v = accf(acc[ai], cs, zc, c);
    if (ms) v = v * ms[c];
    if (bias) v = v + bias[c];
    if (resid) v = v + ldres(resid, o, rfmt, zs, zz);
    v = act(v, ak, aa, ab);
    store(y, o, v, ys, zp);
}

#define EPI(NAME, ACC, OUT)                                                                          \
extern "C" __global__ void NAME(const ACC* __restrict__ acc, int ld, OUT* __restrict__ y, i64 M,    \
    int Cout, int HW, const float* ms, const float* bias, const void* resid, int rfmt, float zs, int zz, int ak,      \
    float aa, float ab, float ys, int zp, const int* cs, int zc) { pdl_enter();                                   \
    if (HW == 1) {                                                                                   \
        GRID_LOOP(i, M * Cout) {                                                                     \
            i64 m = qdiv(i, Cout); int c = (int)(i - m * Cout); \
            epi_one(acc, m * ld + c, y, i, c, ms, bias, resid, rfmt, zs, zz, ak, aa, ab, ys, zp, cs, zc);    \
        }                                                                                            \
        return;                                                                                      \
    }                                                                                                \
    /* tile 32 m × 32 c through shared memory: coalesced reads along c, writes along hw */           \
    __shared__ float tile[32][33];                                                                   \
    i64 mt = (M + 31) / 32; int ct = (Cout + 31) / 32;                                               \
    for (i64 t = blockIdx.x; t < mt * ct; t += gridDim.x) {                                          \
        i64 m0 = (t / ct) * 32; int c0 = (int)(t % ct) * 32;                                         \
        int tx = threadIdx.x & 31, ty = threadIdx.x >> 5;                                            \
        for (int r = ty; r < 32; r += blockDim.x >> 5) {                                             \
            i64 m = m0 + r; int c = c0 + tx;                                                         \
            tile[r][tx] = (m < M && c < Cout) ? accf(acc[m * ld + c], cs, zc, c) : 0.f;              \
        }                                                                                            \
        __syncthreads();                                                                             \
        for (int r = ty; r < 32; r += blockDim.x >> 5) {                                             \
            int c = c0 + r; i64 m = m0 + tx;                                                         \
            if (m < M && c < Cout) {                                                                 \
                i64 n = qdiv(m, HW); int hw = (int)(m - n * HW); \
                i64 o = (n * Cout + c) * HW + hw;                                                    \
                float v = tile[tx][r];                                                               \
                if (ms) v = v * ms[c];                                                               \
                if (bias) v = v + bias[c];                                                           \
                if (resid) v = v + ldres(resid, o, rfmt, zs, zz);                                            \
                v = act(v, ak, aa, ab);                                                              \
                store(y, o, v, ys, zp);                                                              \
            }                                                                                        \
        }                                                                                            \
        __syncthreads();                                                                             \
    }                                                                                                \
}
EPI(epi_f32_f32, float, float)
EPI(epi_f32_16, float, u16)
EPI(epi_f32_i8, float, signed char)
EPI(epi_f32_e4m3, float, u8)
EPI(epi_i32_f32, int, float)
EPI(epi_i32_16, int, u16)
EPI(epi_i32_i8, int, signed char)
EPI(epi_i32_e4m3, int, u8)
EPI(epi_i32_u8, int, u8q)

// ---- direct convolution for small reductions (K = C/groups·KH·KW ≤ 32,
// e.g. a network's first layer, depthwise layers): one thread per output element in NCHW order, the
// epilogue fused, no im2col or accumulator buffers. Weights are the GEMM
// packing [Np][Kp] in the input's format. fmt: 0 f32, 1 f16, 2 bf16,
// 3 int8, 4 uint8, 5 e4m3; integer formats accumulate exactly in int32 with
// the zero point xz subtracted (padding contributes nothing).
__device__ __forceinline__ float ldf(const void* p, i64 i, int fmt) {
    switch (fmt) {
    case 1: return h2f(((const u16*)p)[i]);
    case 2: return bf2f(((const u16*)p)[i]);
    case 5: return e4m32f(((const u8*)p)[i]);
    }
    return ((const float*)p)[i];
}
__device__ __forceinline__ int ldi(const void* p, i64 i, int fmt) {
    return fmt == 4 ? (int)((const u8*)p)[i] : (int)((const signed char*)p)[i];
}
#define DCONV(NAME, OUT)                                                                             \
extern "C" __global__ void NAME(const void* __restrict__ x, const void* __restrict__ w,             \
    OUT* __restrict__ y, int N, int C, int H, int W, int OH, int OW, int KH, int KW, int sh, int sw, \
    int ph, int pw, int dh, int dw, int Kp, int Cout, const float* ms, const float* bias,           \
    const void* resid, int rfmt, float zs, int zz, int ak, float aa, float ab, float ys, int zp, int xz, int fmt,     \
    int groups, int xn, int yn) { pdl_enter();                                                                    \
    int Cg = C / groups, Og = Cout / groups; /* channels per group */                                \
    GRID_LOOP(o, (i64)N * Cout * OH * OW) {                                                          \
        int n, co, oh, ow; coords4(o, Cout, OH, OW, yn, n, co, oh, ow);                              \
        int c0 = (co / Og) * Cg;                                                                     \
        float facc = 0; int iacc = 0; int k = 0;                                                     \
        for (int c = 0; c < Cg; c++) for (int kh = 0; kh < KH; kh++) for (int kw = 0; kw < KW; kw++, k++) { \
            int ih = oh * sh - ph + kh * dh, iw = ow * sw - pw + kw * dw;                            \
            if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;                                    \
            i64 xi = index4(n, c0 + c, ih, iw, C, H, W, xn), wi = (i64)co * Kp + k;                  \
            if (fmt == 3 || fmt == 4) iacc += (ldi(x, xi, fmt) - xz) * (int)((const signed char*)w)[wi]; \
            else facc += ldf(x, xi, fmt) * ldf(w, wi, fmt == 0 ? 0 : fmt);                           \
        }                                                                                            \
        float v = (fmt == 3 || fmt == 4) ? (float)iacc : facc;                                       \
        if (ms) v = v * ms[co];                                                                      \
        if (bias) v = v + bias[co];                                                                  \
        if (resid) v = v + ldres(resid, o, rfmt, zs, zz);                                                    \
        v = act(v, ak, aa, ab);                                                                      \
        store(y, o, v, ys, zp);                                                                      \
    }                                                                                                \
}
DCONV(dconv_f32, float)
DCONV(dconv_16, u16)
DCONV(dconv_i8, signed char)
DCONV(dconv_u8, u8q)
DCONV(dconv_e4m3, u8)

// ---- elementwise
extern "C" __global__ void act_f32(const float* x, float* y, i64 n, int ak, float aa, float ab) { pdl_enter();
    GRID_LOOP(i, n) y[i] = act(x[i], ak, aa, ab);
}
extern "C" __global__ void act_f16(const u16* x, u16* y, i64 n, int ak, float aa, float ab, int bf) { pdl_enter();
    GRID_LOOP(i, n) { float v = bf ? bf2f(x[i]) : h2f(x[i]); v = act(v, ak, aa, ab); y[i] = bf ? f2bf(v) : f2h(v); }
}
extern "C" __global__ void relu_i8(const signed char* x, signed char* y, i64 n) { pdl_enter();
    GRID_LOOP(i, n) { signed char v = x[i]; y[i] = v > 0 ? v : 0; }
}

// Binary ops with numpy broadcasting over up to 6 dims (outer first); sa/sb
// are element strides of a and b per output dim (0 where broadcast).
enum { B_ADD, B_SUB, B_MUL, B_DIV, B_MAX, B_MIN };
// element format F: 0 float32, 1 float16, 2 bfloat16 (math in float32,
// one rounding to the 16-bit format, as the CPU reference)
template <int F> __device__ __forceinline__ float bin_ld(const void* p, i64 i) {
    if constexpr (F == 0) return ((const float*)p)[i];
    else if constexpr (F == 1) return h2f(((const u16*)p)[i]);
    else return bf2f(((const u16*)p)[i]);
}
template <int F> __device__ __forceinline__ void bin_st(void* p, i64 i, float v) {
    if constexpr (F == 0) ((float*)p)[i] = v;
    else if constexpr (F == 1) ((u16*)p)[i] = f2h(v);
    else ((u16*)p)[i] = f2bf(v);
}
#define BINARY(NAME, F)                                                                               \
extern "C" __global__ void NAME(const void* a, const void* b, void* y, i64 n, int op,                \
    int d0, int d1, int d2, int d3, int d4, int d5,                                                   \
    i64 a0, i64 a1, i64 a2, i64 a3, i64 a4, i64 a5, i64 b0, i64 b1, i64 b2, i64 b3, i64 b4, i64 b5) { pdl_enter(); \
    int d[6] = {d0, d1, d2, d3, d4, d5};                                                              \
    i64 sa[6] = {a0, a1, a2, a3, a4, a5}, sb[6] = {b0, b1, b2, b3, b4, b5};                           \
    GRID_LOOP(i, n) {                                                                                 \
        i64 r = i, ia = 0, ib = 0;                                                                    \
        _Pragma("unroll") for (int k = 5; k >= 0; k--) { i64 q = r % d[k]; r /= d[k]; ia += q * sa[k]; ib += q * sb[k]; } \
        float x = bin_ld<F>(a, ia), z = bin_ld<F>(b, ib), v;                                          \
        switch (op) {                                                                                 \
        case B_ADD: v = x + z; break;                                                                 \
        case B_SUB: v = x - z; break;                                                                 \
        case B_MUL: v = x * z; break;                                                                 \
        case B_DIV: v = x / z; break;                                                                 \
        case B_MAX: v = fmaxf(x, z); break;                                                           \
        default: v = fminf(x, z); break;                                                              \
        }                                                                                             \
        bin_st<F>(y, i, v);                                                                           \
    }                                                                                                 \
}
BINARY(binary_f32, 0)
BINARY(binary_f16, 1)
BINARY(binary_bf16, 2)

// ---- pooling (NCHW). Max ignores padding; average divides by the window
// inside the image unless countPad.
#define MAXPOOL(NAME, T, LOWEST)                                                                     \
extern "C" __global__ void NAME(const T* x, T* y, int N, int C, int H, int W, int OH, int OW,       \
    int KH, int KW, int sh, int sw, int ph, int pw, int dh, int dw, int xn, int yn) { pdl_enter();               \
    GRID_LOOP(i, (i64)N * C * OH * OW) {                                                             \
        int n, c, oh, ow; coords4(i, C, OH, OW, yn, n, c, oh, ow); T m = LOWEST;                     \
        for (int kh = 0; kh < KH; kh++) { int ih = oh * sh - ph + kh * dh; if (ih < 0 || ih >= H) continue; \
            for (int kw = 0; kw < KW; kw++) { int iw = ow * sw - pw + kw * dw; if (iw < 0 || iw >= W) continue; \
                T v = x[index4(n, c, ih, iw, C, H, W, xn)]; if (v > m || v != v) m = v; } }         \
        y[i] = m;                                                                                    \
    }                                                                                                \
}
MAXPOOL(maxpool_f32, float, -__int_as_float(0x7f800000))
MAXPOOL(maxpool_i8, signed char, -128)
MAXPOOL(maxpool_u8, u8, 0)
extern "C" __global__ void maxpool_f16(const u16* x, u16* y, int N, int C, int H, int W, int OH, int OW,
    int KH, int KW, int sh, int sw, int ph, int pw, int dh, int dw, int bf, int xn, int yn) { pdl_enter();
    GRID_LOOP(i, (i64)N * C * OH * OW) {
        int n, c, oh, ow; coords4(i, C, OH, OW, yn, n, c, oh, ow);
        float m = -__int_as_float(0x7f800000); u16 mb = bf ? 0xff80 : 0xfc00;
        for (int kh = 0; kh < KH; kh++) { int ih = oh * sh - ph + kh * dh; if (ih < 0 || ih >= H) continue;
            for (int kw = 0; kw < KW; kw++) { int iw = ow * sw - pw + kw * dw; if (iw < 0 || iw >= W) continue;
                u16 b = x[index4(n, c, ih, iw, C, H, W, xn)]; float v = bf ? bf2f(b) : h2f(b); if (v > m || v != v) { m = v; mb = b; } } }
        y[i] = mb;
    }
}

// E4M3 codes do not order as bytes: compare their values (NaN wins, as in
// the float kernels).
extern "C" __global__ void maxpool_e4m3(const u8* x, u8* y, int N, int C, int H, int W, int OH, int OW,
    int KH, int KW, int sh, int sw, int ph, int pw, int dh, int dw, int xn, int yn) { pdl_enter();
    GRID_LOOP(i, (i64)N * C * OH * OW) {
        int n, c, oh, ow; coords4(i, C, OH, OW, yn, n, c, oh, ow);
        float m = -__int_as_float(0x7f800000); u8 mb = 0xfe;
        for (int kh = 0; kh < KH; kh++) { int ih = oh * sh - ph + kh * dh; if (ih < 0 || ih >= H) continue;
            for (int kw = 0; kw < KW; kw++) { int iw = ow * sw - pw + kw * dw; if (iw < 0 || iw >= W) continue;
                u8 b = x[index4(n, c, ih, iw, C, H, W, xn)]; float v = e4m32f(b); if (v > m || v != v) { m = v; mb = b; } } }
        y[i] = mb;
    }
}

// Average pooling of float32 (fmt 0), float16 (1) or bfloat16 (2), summed
// in float.
__device__ __forceinline__ float ld3(const void* p, i64 i, int fmt) {
    return fmt == 0 ? ((const float*)p)[i] : fmt == 1 ? h2f(((const u16*)p)[i]) : bf2f(((const u16*)p)[i]);
}
__device__ __forceinline__ void st3(void* p, i64 i, float v, int fmt) {
    if (fmt == 0) ((float*)p)[i] = v; else ((u16*)p)[i] = fmt == 1 ? f2h(v) : f2bf(v);
}
// Bias and activation in place over NCHW y (after the NCHW conv GEMM),
// fmt 0 float32, 1 float16, 2 bfloat16.
extern "C" __global__ void bias_act_nchw(void* y, i64 n, int C, int HW, const float* bias, int ak, float aa,
    float ab, int fmt) { pdl_enter();
    GRID_LOOP(i, n) {
        float v = ld3(y, i, fmt);
        if (bias) v += bias[qmod(qdiv(i, HW), C)];
        st3(y, i, act(v, ak, aa, ab), fmt);
    }
}
// The 16-bit case when HW % 8 == 0: 8 elements of one channel per thread,
// one 16-byte load and store.
struct __align__(16) v16 { unsigned w[4]; };
extern "C" __global__ void bias_act_nchw16x8(v16* y, i64 n8, int C, int HW8, const float* bias, int ak,
    float aa, float ab, int bf) { pdl_enter();
    GRID_LOOP(i, n8) {
        float b = bias ? bias[qmod(qdiv(i, HW8), C)] : 0.f;
        v16 v = y[i];
#pragma unroll
        for (int q = 0; q < 4; q++) {
            u16 lo = (u16)(v.w[q] & 0xffff), hi = (u16)(v.w[q] >> 16);
            float a0 = (bf ? bf2f(lo) : h2f(lo)) + b, a1 = (bf ? bf2f(hi) : h2f(hi)) + b;
            a0 = act(a0, ak, aa, ab); a1 = act(a1, ak, aa, ab);
            v.w[q] = (unsigned)(bf ? f2bf(a0) : f2h(a0)) | ((unsigned)(bf ? f2bf(a1) : f2h(a1)) << 16);
        }
        y[i] = v;
    }
}
extern "C" __global__ void avgpool_any(const void* x, void* y, int N, int C, int H, int W, int OH,
    int OW, int KH, int KW, int sh, int sw, int ph, int pw, int countPad, int fmt, int xn, int yn) { pdl_enter();
    GRID_LOOP(i, (i64)N * C * OH * OW) {
        int n, c, oh, ow; coords4(i, C, OH, OW, yn, n, c, oh, ow);
        float s = 0; int cnt = 0;
        for (int kh = 0; kh < KH; kh++) { int ih = oh * sh - ph + kh; if (ih < 0 || ih >= H) continue;
            for (int kw = 0; kw < KW; kw++) { int iw = ow * sw - pw + kw; if (iw < 0 || iw >= W) continue;
                s += ld3(x, index4(n, c, ih, iw, C, H, W, xn), fmt); cnt++; } }
        st3(y, i, s / (float)(countPad ? KH * KW : cnt), fmt);
    }
}
// Global average pooling of NHWC x into [N][C]: one thread per (n, c), the
// warp's loads run along channels. fmt as ld3.
extern "C" __global__ void gavgpool_nhwc(const void* x, void* y, i64 NC, int C, int HW, int fmt) { pdl_enter();
    GRID_LOOP(i, NC) {
        i64 n = qdiv(i, C); int c = (int)(i - n * C);
        float s = 0;
        for (int j = 0; j < HW; j++) s += ld3(x, (n * HW + j) * C + c, fmt);
        st3(y, i, s / (float)HW, fmt);
    }
}
// Layout change of an [N][C][HW] tensor of 1-, 2- or 4-byte elements:
// toNHWC 1 writes [N][HW][C], 0 reads it back to [N][C][HW].
#define RELAYOUT(NAME, T)                                                                            \
extern "C" __global__ void NAME(const T* __restrict__ x, T* __restrict__ y, int N, int C, int HW, int toNHWC) { pdl_enter(); \
    GRID_LOOP(i, (i64)N * C * HW) {                                                                  \
        if (toNHWC) { int c = (int)qmod(i, C); i64 t = qdiv(i, C); int p = (int)qmod(t, HW); i64 n = qdiv(t, HW); \
            y[i] = x[(n * C + c) * HW + p]; }                                                        \
        else { int p = (int)qmod(i, HW); i64 t = qdiv(i, HW); int c = (int)qmod(t, C); i64 n = qdiv(t, C); \
            y[i] = x[(n * HW + p) * C + c]; }                                                        \
    }                                                                                                \
}
RELAYOUT(relayout_b1, u8)
RELAYOUT(relayout_b2, u16)
RELAYOUT(relayout_b4, unsigned)
// One block per (n,c) row: mean over HW, 16-bit floats (bf: bfloat16).
extern "C" __global__ void gavgpool_16(const u16* x, u16* y, i64 NC, int HW, int bf) { pdl_enter();
    __shared__ float red[32];
    for (i64 r = blockIdx.x; r < NC; r += gridDim.x) {
        float s = 0;
        for (int j = threadIdx.x; j < HW; j += blockDim.x) s += bf ? bf2f(x[r * HW + j]) : h2f(x[r * HW + j]);
        for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffff, s, o);
        if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = s;
        __syncthreads();
        if (threadIdx.x < 32) {
            s = threadIdx.x < (blockDim.x >> 5) ? red[threadIdx.x] : 0;
            for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffff, s, o);
            if (threadIdx.x == 0) y[r] = bf ? f2bf(s / (float)HW) : f2h(s / (float)HW);
        }
        __syncthreads();
    }
}

extern "C" __global__ void avgpool_f32(const float* x, float* y, int N, int C, int H, int W, int OH,
    int OW, int KH, int KW, int sh, int sw, int ph, int pw, int countPad) { pdl_enter();
    GRID_LOOP(i, (i64)N * C * OH * OW) {
        int ow = (int)(qmod(i, OW)); i64 t = qdiv(i, OW); int oh = (int)(qmod(t, OH)); i64 nc = qdiv(t, OH);
        const float* p = x + nc * H * W; float s = 0; int cnt = 0;
        for (int kh = 0; kh < KH; kh++) { int ih = oh * sh - ph + kh; if (ih < 0 || ih >= H) continue;
            for (int kw = 0; kw < KW; kw++) { int iw = ow * sw - pw + kw; if (iw < 0 || iw >= W) continue;
                s += p[ih * W + iw]; cnt++; } }
        y[i] = s / (float)(countPad ? KH * KW : cnt);
    }
}

// One block per (n,c) row: mean over HW.
extern "C" __global__ void gavgpool_f32(const float* x, float* y, i64 NC, int HW) { pdl_enter();
    __shared__ float red[32];
    for (i64 r = blockIdx.x; r < NC; r += gridDim.x) {
        float s = 0;
        for (int j = threadIdx.x; j < HW; j += blockDim.x) s += x[r * HW + j];
        for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffff, s, o);
        if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = s;
        __syncthreads();
        if (threadIdx.x < 32) {
            s = threadIdx.x < (blockDim.x >> 5) ? red[threadIdx.x] : 0;
            for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffff, s, o);
            if (threadIdx.x == 0) y[r] = s / (float)HW;
        }
        __syncthreads();
    }
}

// ---- row reductions over the last axis: one block per row.
__device__ float block_sum(float v, float* red) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffff, v, o);
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
    __syncthreads();
    v = threadIdx.x < (blockDim.x >> 5) ? red[threadIdx.x] : 0;
    if (threadIdx.x < 32) for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffff, v, o);
    if (threadIdx.x == 0) red[0] = v;
    __syncthreads();
    v = red[0];
    __syncthreads();
    return v;
}
__device__ float block_max(float v, float* red) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffff, v, o));
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
    __syncthreads();
    v = threadIdx.x < (blockDim.x >> 5) ? red[threadIdx.x] : -__int_as_float(0x7f800000);
    if (threadIdx.x < 32) for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffff, v, o));
    if (threadIdx.x == 0) red[0] = v;
    __syncthreads();
    v = red[0];
    __syncthreads();
    return v;
}
extern "C" __global__ void softmax_f32(const float* x, float* y, i64 rows, int cols) { pdl_enter();
    __shared__ float red[32];
    for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const float* p = x + r * cols; float* q = y + r * cols;
        float m = -__int_as_float(0x7f800000);
        for (int j = threadIdx.x; j < cols; j += blockDim.x) m = fmaxf(m, p[j]);
        m = block_max(m, red);
        float s = 0;
        for (int j = threadIdx.x; j < cols; j += blockDim.x) s += expf(p[j] - m);
        s = block_sum(s, red);
        for (int j = threadIdx.x; j < cols; j += blockDim.x) q[j] = expf(p[j] - m) / s;
    }
}
extern "C" __global__ void layernorm_f32(const float* x, const float* g, const float* b, float* y,
    i64 rows, int cols, float eps) { pdl_enter();
    __shared__ float red[32];
    for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const float* p = x + r * cols; float* q = y + r * cols;
        float s = 0;
        for (int j = threadIdx.x; j < cols; j += blockDim.x) s += p[j];
        float mean = block_sum(s, red) / cols;
        float v = 0;
        for (int j = threadIdx.x; j < cols; j += blockDim.x) { float d = p[j] - mean; v += d * d; }
        float inv = rsqrtf(block_sum(v, red) / cols + eps);
        for (int j = threadIdx.x; j < cols; j += blockDim.x) {
            float o = (p[j] - mean) * inv * (g ? g[j] : 1.f);
            q[j] = b ? o + b[j] : o;
        }
    }
}

// ---- quantize / dequantize (ONNX QuantizeLinear/DequantizeLinear, per
// tensor or per axis: channel = (i / inner) % nscale).
extern "C" __global__ void quant_f32_i8(const float* x, signed char* y, i64 n, const float* s, int nscale,
    i64 inner, const signed char* zp) { pdl_enter();
    GRID_LOOP(i, n) { int c = (int)(qmod(qdiv(i, inner), nscale)); y[i] = f2i8(qscale(x[i], s[c]), zp ? zp[c] : 0, -128, 127); }
}
extern "C" __global__ void quant_f32_u8(const float* x, u8* y, i64 n, const float* s, int nscale,
    i64 inner, const u8* zp) { pdl_enter();
    GRID_LOOP(i, n) { int c = (int)(qmod(qdiv(i, inner), nscale)); y[i] = (u8)f2i8(qscale(x[i], s[c]), zp ? zp[c] : 0, 0, 255); }
}
extern "C" __global__ void dequant_u8_f32(const u8* x, float* y, i64 n, const float* s, int nscale,
    i64 inner, const u8* zp) { pdl_enter();
    GRID_LOOP(i, n) { int c = (int)(qmod(qdiv(i, inner), nscale)); y[i] = (float)((int)x[i] - (zp ? (int)zp[c] : 0)) * s[c]; }
}
extern "C" __global__ void quant_f32_e4m3(const float* x, u8* y, i64 n, const float* s, int nscale, i64 inner) { pdl_enter();
    GRID_LOOP(i, n) { int c = (int)(qmod(qdiv(i, inner), nscale)); y[i] = f2e4m3(qscale(x[i], s[c])); }
}
extern "C" __global__ void dequant_i8_f32(const signed char* x, float* y, i64 n, const float* s, int nscale,
    i64 inner, const signed char* zp) { pdl_enter();
    GRID_LOOP(i, n) { int c = (int)(qmod(qdiv(i, inner), nscale)); y[i] = (float)((int)x[i] - (zp ? (int)zp[c] : 0)) * s[c]; }
}
extern "C" __global__ void dequant_e4m3_f32(const u8* x, float* y, i64 n, const float* s, int nscale, i64 inner) { pdl_enter();
    GRID_LOOP(i, n) { int c = (int)(qmod(qdiv(i, inner), nscale)); y[i] = e4m32f(x[i]) * s[c]; }
}
// Casts between float32 and the 16-bit floats (bf != 0: bfloat16).
extern "C" __global__ void cast_f32_16(const float* x, u16* y, i64 n, int bf) { pdl_enter();
    GRID_LOOP(i, n) y[i] = bf ? f2bf(x[i]) : f2h(x[i]);
}
extern "C" __global__ void cast_16_f32(const u16* x, float* y, i64 n, int bf) { pdl_enter();
    GRID_LOOP(i, n) y[i] = bf ? bf2f(x[i]) : h2f(x[i]);
}

// ---- channels-last helpers (backend/cuda/layout.go, nhwc.go)
struct __align__(16) w4 { unsigned x, y, z, w; };
struct __align__(8) w2 { unsigned x, y; };

// NCHW [N][C][HW] → NHWC with the channels zero-padded to Cp (a first
// layer's 3 channels become one 16-byte chunk for the NHWC implicit GEMM).
#define PADNHWC(NAME, T)                                                                             \
extern "C" __global__ void NAME(const T* __restrict__ x, T* __restrict__ y, int N, int C, int HW, int Cp) { pdl_enter(); \
    GRID_LOOP(i, (i64)N * HW * Cp) {                                                                 \
        int c = (int)qmod(i, Cp); i64 t = qdiv(i, Cp); int p = (int)qmod(t, HW); i64 n = qdiv(t, HW); \
        y[i] = c < C ? x[(n * C + c) * HW + p] : (T)0;                                               \
    }                                                                                                \
}
PADNHWC(pad_nhwc_b1, u8)
PADNHWC(pad_nhwc_b2, u16)

// Max pooling of NHWC x into NHWC y, 8 channels per thread (C % 8 == 0):
// one 16-byte (16-bit types) or 8-byte (8-bit) load per window tap.
// fmt: 0 f16, 1 bf16, 2 int8, 3 uint8, 4 E4M3. Same NaN rule as the NCHW kernels.
__device__ __forceinline__ float mpv16(unsigned w, int hi, int bf) {
    u16 b = (u16)(hi ? w >> 16 : w & 0xffff);
    return bf ? bf2f(b) : h2f(b);
}
extern "C" __global__ void maxpool_nhwc8(const void* __restrict__ x, void* __restrict__ y, int N, int C, int H,
    int W, int OH, int OW, int KH, int KW, int sh, int sw, int ph, int pw, int dh, int dw, int fmt) { pdl_enter();
    const int C8 = C / 8;
    GRID_LOOP(i, (i64)N * OH * OW * C8) {
        int c8 = (int)qmod(i, C8); i64 t = qdiv(i, C8); int ow = (int)qmod(t, OW); t = qdiv(t, OW);
        int oh = (int)qmod(t, OH); i64 n = qdiv(t, OH);
        if (fmt <= 1) {
            float m[8]; unsigned short mb[8];
#pragma unroll
            for (int j = 0; j < 8; j++) { m[j] = -__int_as_float(0x7f800000); mb[j] = fmt ? 0xff80 : 0xfc00; }
            for (int kh = 0; kh < KH; kh++) { int ih = oh * sh - ph + kh * dh; if (ih < 0 || ih >= H) continue;
                for (int kw = 0; kw < KW; kw++) { int iw = ow * sw - pw + kw * dw; if (iw < 0 || iw >= W) continue;
                    w4 v = ((const w4*)x)[((n * H + ih) * W + iw) * C8 + c8];
                    const unsigned wd[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
                    for (int j = 0; j < 8; j++) {
                        float f = mpv16(wd[j >> 1], j & 1, fmt);
                        if (f > m[j] || f != f) { m[j] = f; mb[j] = (u16)((j & 1) ? wd[j >> 1] >> 16 : wd[j >> 1] & 0xffff); }
                    } } }
            w4 o;
            o.x = mb[0] | ((unsigned)mb[1] << 16); o.y = mb[2] | ((unsigned)mb[3] << 16);
            o.z = mb[4] | ((unsigned)mb[5] << 16); o.w = mb[6] | ((unsigned)mb[7] << 16);
            ((w4*)y)[i] = o;
        } else {
            if (fmt == 4) { // E4M3: compare values (NaN wins), keep codes
                float m[8]; u8 mb[8];
#pragma unroll
                for (int j = 0; j < 8; j++) { m[j] = -__int_as_float(0x7f800000); mb[j] = 0xfe; }
                for (int kh = 0; kh < KH; kh++) { int ih = oh * sh - ph + kh * dh; if (ih < 0 || ih >= H) continue;
                    for (int kw = 0; kw < KW; kw++) { int iw = ow * sw - pw + kw * dw; if (iw < 0 || iw >= W) continue;
                        w2 v = ((const w2*)x)[((n * H + ih) * W + iw) * C8 + c8];
#pragma unroll
                        for (int j = 0; j < 8; j++) {
                            u8 b = (u8)(((j < 4 ? v.x : v.y) >> (8 * (j & 3))) & 0xff);
                            float f = e4m32f(b);
                            if (f > m[j] || f != f) { m[j] = f; mb[j] = b; }
                        } } }
                w2 o; o.x = 0; o.y = 0;
#pragma unroll
                for (int j = 0; j < 8; j++) { if (j < 4) o.x |= (unsigned)mb[j] << (8 * j); else o.y |= (unsigned)mb[j] << (8 * (j - 4)); }
                ((w2*)y)[i] = o;
                continue;
            }
#if __CUDA_ARCH__ >= 900
            // int8/uint8 codes as four lanes of 16-bit pairs: PRMT widens a
            // word's even and odd bytes (sign- or zero-extended), and
            // Hopper's max.s16x2/u16x2 takes two maxima per instruction
            // (the byte-by-byte loop made this pool instruction-bound at a
            // quarter of DRAM bandwidth)
            const bool sg = fmt == 2;
            const unsigned se = sg ? 0xA280u : 0x4240u, so = sg ? 0xB391u : 0x4341u, lo = sg ? 0xFF80FF80u : 0u;
            unsigned me0 = lo, mo0 = lo, me1 = lo, mo1 = lo;
            auto tap = [&](w2 v) {
                unsigned e0, o0, e1, o1; // prmt itself: a selector nibble's msb sign-extends (CUDA documents __byte_perm with 3-bit selectors)
                asm("prmt.b32 %0, %1, 0, %2;" : "=r"(e0) : "r"(v.x), "r"(se)); asm("prmt.b32 %0, %1, 0, %2;" : "=r"(o0) : "r"(v.x), "r"(so));
                asm("prmt.b32 %0, %1, 0, %2;" : "=r"(e1) : "r"(v.y), "r"(se)); asm("prmt.b32 %0, %1, 0, %2;" : "=r"(o1) : "r"(v.y), "r"(so));
                if (sg) {
                    asm("max.s16x2 %0, %0, %1;" : "+r"(me0) : "r"(e0)); asm("max.s16x2 %0, %0, %1;" : "+r"(mo0) : "r"(o0));
                    asm("max.s16x2 %0, %0, %1;" : "+r"(me1) : "r"(e1)); asm("max.s16x2 %0, %0, %1;" : "+r"(mo1) : "r"(o1));
                } else {
                    asm("max.u16x2 %0, %0, %1;" : "+r"(me0) : "r"(e0)); asm("max.u16x2 %0, %0, %1;" : "+r"(mo0) : "r"(o0));
                    asm("max.u16x2 %0, %0, %1;" : "+r"(me1) : "r"(e1)); asm("max.u16x2 %0, %0, %1;" : "+r"(mo1) : "r"(o1));
                }
            };
            if (KH == 3 && KW == 3) { // the CNNs' pool: all nine loads issued before the first maximum
                const unsigned nb = sg ? 0x80808080u : 0u; // a tap outside the image: the lowest code
                w2 v[9];
#pragma unroll
                for (int t = 0; t < 9; t++) {
                    const int ih = oh * sh - ph + (t / 3) * dh, iw = ow * sw - pw + (t % 3) * dw;
                    v[t] = (unsigned)ih < (unsigned)H && (unsigned)iw < (unsigned)W ? ((const w2*)x)[((n * H + ih) * W + iw) * C8 + c8] : w2{nb, nb};
                }
#pragma unroll
                for (int t = 0; t < 9; t++) tap(v[t]);
            } else {
                for (int kh = 0; kh < KH; kh++) { int ih = oh * sh - ph + kh * dh; if (ih < 0 || ih >= H) continue;
                    for (int kw = 0; kw < KW; kw++) { int iw = ow * sw - pw + kw * dw; if (iw < 0 || iw >= W) continue;
                        tap(((const w2*)x)[((n * H + ih) * W + iw) * C8 + c8]); } }
            }
            w2 o; o.x = __byte_perm(me0, mo0, 0x6240u); o.y = __byte_perm(me1, mo1, 0x6240u);
            ((w2*)y)[i] = o;
#else
            int m[8];
#pragma unroll
            for (int j = 0; j < 8; j++) m[j] = fmt == 2 ? -128 : 0;
            for (int kh = 0; kh < KH; kh++) { int ih = oh * sh - ph + kh * dh; if (ih < 0 || ih >= H) continue;
                for (int kw = 0; kw < KW; kw++) { int iw = ow * sw - pw + kw * dw; if (iw < 0 || iw >= W) continue;
                    w2 v = ((const w2*)x)[((n * H + ih) * W + iw) * C8 + c8];
#pragma unroll
                    for (int j = 0; j < 8; j++) {
                        unsigned b = ((j < 4 ? v.x : v.y) >> (8 * (j & 3))) & 0xff;
                        int e = fmt == 2 ? (int)(signed char)b : (int)b;
                        m[j] = e > m[j] ? e : m[j];
                    } } }
            w2 o; o.x = 0; o.y = 0;
#pragma unroll
            for (int j = 0; j < 8; j++) {
                unsigned b = (unsigned)m[j] & 0xff;
                if (j < 4) o.x |= b << (8 * j); else o.y |= b << (8 * (j - 4));
            }
            ((w2*)y)[i] = o;
#endif
        }
    }
}

// 3×3 max pooling of int8 (sg 1) or uint8 (sg 0) NHWC codes, 16 channels a
// thread (C % 16 == 0): maxpool_nhwc8's packed maxima on 16-byte loads, half
// the threads and index arithmetic a byte (ResNet-50's pool after the stem:
// 205 MB in 0.13 ms with 8 channels a thread, against a DRAM floor of ~0.07).
extern "C" __global__ void maxpool3_nhwc16(const w4* __restrict__ x, w4* __restrict__ y, int N, int C, int H, int W, int OH,
    int OW, int sh, int sw, int ph, int pw, int dh, int dw, int sg) { pdl_enter();
    const int C16 = C / 16;
    GRID_LOOP(i, (i64)N * OH * OW * C16) {
        const int c16 = (int)qmod(i, C16); i64 t = qdiv(i, C16); const int ow = (int)qmod(t, OW); t = qdiv(t, OW);
        const int oh = (int)qmod(t, OH); const i64 n = qdiv(t, OH);
        const unsigned nb = sg ? 0x80808080u : 0u; // a tap outside the image: the lowest code
        w4 v[9];
#pragma unroll
        for (int k = 0; k < 9; k++) { // all nine loads before the first maximum
            const int ih = oh * sh - ph + (k / 3) * dh, iw = ow * sw - pw + (k % 3) * dw;
            v[k] = (unsigned)ih < (unsigned)H && (unsigned)iw < (unsigned)W ? x[((n * H + ih) * W + iw) * C16 + c16] : w4{nb, nb, nb, nb};
        }
#if __CUDA_ARCH__ >= 900
        // each word's even and odd bytes widened to 16-bit pairs (PRMT; a
        // selector nibble's msb sign-extends), two maxima an instruction
        const unsigned se = sg ? 0xA280u : 0x4240u, so = sg ? 0xB391u : 0x4341u, lo = sg ? 0xFF80FF80u : 0u;
        unsigned me[4] = {lo, lo, lo, lo}, mo[4] = {lo, lo, lo, lo};
#pragma unroll
        for (int k = 0; k < 9; k++) {
            const unsigned wd[4] = {v[k].x, v[k].y, v[k].z, v[k].w};
#pragma unroll
            for (int q = 0; q < 4; q++) {
                unsigned e, o;
                asm("prmt.b32 %0, %1, 0, %2;" : "=r"(e) : "r"(wd[q]), "r"(se));
                asm("prmt.b32 %0, %1, 0, %2;" : "=r"(o) : "r"(wd[q]), "r"(so));
                if (sg) {
                    asm("max.s16x2 %0, %0, %1;" : "+r"(me[q]) : "r"(e)); asm("max.s16x2 %0, %0, %1;" : "+r"(mo[q]) : "r"(o));
                } else {
                    asm("max.u16x2 %0, %0, %1;" : "+r"(me[q]) : "r"(e)); asm("max.u16x2 %0, %0, %1;" : "+r"(mo[q]) : "r"(o));
                }
            }
        }
        y[i] = w4{__byte_perm(me[0], mo[0], 0x6240u), __byte_perm(me[1], mo[1], 0x6240u), __byte_perm(me[2], mo[2], 0x6240u),
            __byte_perm(me[3], mo[3], 0x6240u)};
#else
        unsigned o[4];
#pragma unroll
        for (int q = 0; q < 4; q++) {
            unsigned r = 0;
#pragma unroll
            for (int b = 0; b < 4; b++) {
                int m = sg ? -128 : 0;
#pragma unroll
                for (int k = 0; k < 9; k++) {
                    const unsigned wd = q == 0 ? v[k].x : q == 1 ? v[k].y : q == 2 ? v[k].z : v[k].w;
                    const unsigned bt = (wd >> (8 * b)) & 0xff;
                    const int e = sg ? (int)(signed char)bt : (int)bt;
                    m = e > m ? e : m;
                }
                r |= ((unsigned)m & 0xff) << (8 * b);
            }
            o[q] = r;
        }
        y[i] = w4{o[0], o[1], o[2], o[3]};
#endif
    }
}

// Global average pooling of NHWC x [N][HW][C] into [N][C], bandwidth-bound
// (gavgpool_nhwc above is one thread per (n, c), 49 dependent loads for a
// 7×7 plane): a thread reads 16-byte vectors of channels (4 float32 or 8
// float16/bfloat16; the caller checks that C fills whole vectors, CV of
// them a pixel). Blocks of 32 × GP_G threads: threadIdx.x picks one of the
// block's 32 vectors, threadIdx.y one of GP_G pixel groups (pixels y,
// y + GP_G, …) with its own partial sums, independent loads; the groups'
// sums meet in shared memory. Grid: x over the channel blocks, y over the
// images (a loop: N may exceed gridDim.y). Sums in float, divided by HW
// (stored as st3, fmt as ld3).
#define GP_G 8
template <int FMT> __device__ __forceinline__ void gpool_add(float* s, const w4& v) {
    const unsigned wd[4] = {v.x, v.y, v.z, v.w};
    if (FMT == 0) {
#pragma unroll
        for (int j = 0; j < 4; j++) s[j] += __uint_as_float(wd[j]);
    } else {
#pragma unroll
        for (int j = 0; j < 8; j++) {
            u16 b = (u16)((j & 1) ? wd[j >> 1] >> 16 : wd[j >> 1] & 0xffff);
            s[j] += FMT == 1 ? h2f(b) : bf2f(b);
        }
    }
}
// The format is a template argument, picked once per launch, so that the
// partial sums stay in registers.
template <int FMT> __device__ __forceinline__ void gpool_run(const w4* __restrict__ x, void* __restrict__ y, int N,
    int CV, int HW, float (*red)[8][32]) {
    const int per = FMT == 0 ? 4 : 8, tx = threadIdx.x, ty = threadIdx.y, cv = blockIdx.x * 32 + tx;
    for (int n = blockIdx.y; n < N; n += gridDim.y) {
        float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        if (cv < CV) {
            const w4* p = x + (i64)n * HW * CV + cv;
            // 4 of the group's pixels a step, their loads issued before their
            // sums (a runtime-bounded loop is not unrolled), so that several
            // are in flight
            for (int q0 = ty; q0 < HW; q0 += 4 * GP_G) {
                w4 v[4];
#pragma unroll
                for (int u = 0; u < 4; u++)
                    if (q0 + u * GP_G < HW) v[u] = p[(i64)(q0 + u * GP_G) * CV];
#pragma unroll
                for (int u = 0; u < 4; u++)
                    if (q0 + u * GP_G < HW) gpool_add<FMT>(s, v[u]);
            }
        }
#pragma unroll
        for (int j = 0; j < per; j++) red[ty][j][tx] = s[j];
        __syncthreads();
        // thread (tx, ty) finishes lane ty of vector tx (GP_G >= 8 lanes)
        if (cv < CV && ty < per) {
            float t = 0;
#pragma unroll
            for (int g = 0; g < GP_G; g++) t += red[g][ty][tx];
            st3(y, (i64)n * CV * per + (i64)cv * per + ty, t / (float)HW, FMT);
        }
        __syncthreads();
    }
}
extern "C" __global__ void __launch_bounds__(256) gpool_nhwc(const w4* __restrict__ x, void* __restrict__ y, int N,
    int CV, int HW, int fmt) { pdl_enter();
    __shared__ float red[GP_G][8][32]; // [pixel group][lane of the vector][vector]: conflict-free
    if (fmt == 0) gpool_run<0>(x, y, N, CV, HW, red);
    else if (fmt == 1) gpool_run<1>(x, y, N, CV, HW, red);
    else gpool_run<2>(x, y, N, CV, HW, red);
}

// Per-tensor QuantizeLinear to int8, 4 elements per thread (n % 4 == 0):
// one 16-byte load, one 4-byte store; the same arithmetic as quant_f32_i8.
extern "C" __global__ void quant_f32_i8_x4(const w4* __restrict__ x, unsigned* __restrict__ y, i64 n4,
    const float* s, const signed char* zp) { pdl_enter();
    const float sc = s[0];
    const int z = zp ? zp[0] : 0;
    GRID_LOOP(i, n4) {
        w4 v = x[i];
        const unsigned wd[4] = {v.x, v.y, v.z, v.w};
        unsigned o = 0;
#pragma unroll
        for (int j = 0; j < 4; j++) o |= ((unsigned)(u8)f2i8(qscale(__uint_as_float(wd[j]), sc), z, -128, 127)) << (8 * j);
        y[i] = o;
    }
}

// 8 outputs at o (o % 8 == 0) with store's conversions, vector stores.
template <typename OUT> __device__ __forceinline__ void st8(OUT* y, i64 o, const float* v, float ys, int zp) {
    OUT t[8];
#pragma unroll
    for (int j = 0; j < 8; j++) store(t, j, v[j], ys, zp);
    if constexpr (sizeof(OUT) == 1) {
        w2 q; q.x = 0; q.y = 0;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            q.x |= (unsigned)*(const u8*)&t[j] << (8 * j);
            q.y |= (unsigned)*(const u8*)&t[j + 4] << (8 * j);
        }
        *(w2*)((u8*)y + o) = q;
    } else if constexpr (sizeof(OUT) == 2) {
        w4 q;
        q.x = (unsigned)t[0] | ((unsigned)t[1] << 16); q.y = (unsigned)t[2] | ((unsigned)t[3] << 16);
        q.z = (unsigned)t[4] | ((unsigned)t[5] << 16); q.w = (unsigned)t[6] | ((unsigned)t[7] << 16);
        *(w4*)(y + o) = q;
    } else {
#pragma unroll
        for (int j = 0; j < 8; j++) y[o + j] = v[j];
    }
}

// st8 with the division-free requantization (common.cuh: yr = RN(1/ys),
// ys in [2⁻⁴⁰, 2⁴⁰]): the same codes as store's division and f2i8/f2e4m3,
// without the division's slow-path branch and the conversion instructions.
__device__ __forceinline__ void st8r(signed char* y, i64 o, const float* v, float ys, float yr, int zp) {
    unsigned w0 = 0, w1 = 0;
#pragma unroll
    for (int j = 0; j < 4; j++) {
        w0 |= qbyte(qdivq(v[j], ys, yr), zp, -128, 127) << (8 * j);
        w1 |= qbyte(qdivq(v[j + 4], ys, yr), zp, -128, 127) << (8 * j);
    }
    *(w2*)((u8*)y + o) = w2{w0, w1};
}
__device__ __forceinline__ void st8r(u8q* y, i64 o, const float* v, float ys, float yr, int zp) {
    unsigned w0 = 0, w1 = 0;
#pragma unroll
    for (int j = 0; j < 4; j++) {
        w0 |= qbyte(qdivq(v[j], ys, yr), zp, 0, 255) << (8 * j);
        w1 |= qbyte(qdivq(v[j + 4], ys, yr), zp, 0, 255) << (8 * j);
    }
    *(w2*)((u8*)y + o) = w2{w0, w1};
}
__device__ __forceinline__ void st8r(u8* y, i64 o, const float* v, float ys, float yr, int) { // E4M3, two per conversion
    unsigned w[4];
#pragma unroll
    for (int j = 0; j < 4; j++) w[j] = e4m3x2(qdivr(v[2 * j], ys, yr), qdivr(v[2 * j + 1], ys, yr));
    *(w2*)(y + o) = w2{w[0] | (w[1] << 16), w[2] | (w[3] << 16)};
}
template <typename OUT> __device__ __forceinline__ void st8r(OUT* y, i64 o, const float* v, float ys, float, int zp) { st8(y, o, v, ys, zp); }

// Depthwise convolution (groups == C == Cout) on NHWC x into NHWC y, 8
// channels per thread (C % 8 == 0): one 16-byte (16-bit floats, fmt 1/2)
// or 8-byte (int8/uint8, fmt 3/4, zero point xz subtracted; E4M3, fmt 5,
// products in float as dconv_*) load of x and
// of the weights per tap, accumulated in the order dconv_* uses (taps kh,
// kw), then dconv's epilogue. wt is the weights tap-major, [KH·KW][C], in
// the input's format (16-bit floats or int8). yr != 0: 8-bit outputs are
// requantized by st8r (the host passes RN(1/ys) for ys in [2⁻⁴⁰, 2⁴⁰]).
// E4M3 inputs and weights are decoded two per conversion.
#define DWNHWC(NAME, OUT)                                                                            \
extern "C" __global__ void NAME(const void* __restrict__ x, const void* __restrict__ wt,            \
    OUT* __restrict__ y, int N, int C, int H, int W, int OH, int OW, int KH, int KW, int sh, int sw, \
    int ph, int pw, int dh, int dw, const float* ms, const float* bias, const void* resid,           \
    int rfmt, float zs, int zz, int ak, float aa, float ab, float ys, int zp, int xz, int fmt, float yr) { pdl_enter();             \
    const int C8 = C / 8;                                                                            \
    GRID_LOOP(i, (i64)N * OH * OW * C8) {                                                            \
        int c8 = (int)qmod(i, C8); i64 t = qdiv(i, C8); int ow = (int)qmod(t, OW); t = qdiv(t, OW);  \
        int oh = (int)qmod(t, OH); i64 n = qdiv(t, OH); int c0 = c8 * 8;                             \
        float fa[8]; int ia[8];                                                                      \
        _Pragma("unroll") for (int j = 0; j < 8; j++) { fa[j] = 0; ia[j] = 0; }                      \
        for (int kh = 0; kh < KH; kh++) { int ih = oh * sh - ph + kh * dh; if (ih < 0 || ih >= H) continue; \
            for (int kw = 0; kw < KW; kw++) { int iw = ow * sw - pw + kw * dw; if (iw < 0 || iw >= W) continue; \
                i64 k = kh * KW + kw, xi = ((n * H + ih) * W + iw) * C + c0;                         \
                if (fmt <= 2) {                                                                      \
                    w4 v = *(const w4*)((const u16*)x + xi), q = *(const w4*)((const u16*)wt + k * C + c0); \
                    const unsigned wd[4] = {v.x, v.y, v.z, v.w}, qd[4] = {q.x, q.y, q.z, q.w};      \
                    _Pragma("unroll") for (int j = 0; j < 8; j++) {                                  \
                        u16 b = (u16)((j & 1) ? wd[j >> 1] >> 16 : wd[j >> 1] & 0xffff);            \
                        u16 e = (u16)((j & 1) ? qd[j >> 1] >> 16 : qd[j >> 1] & 0xffff);            \
                        fa[j] += (fmt == 2 ? bf2f(b) : h2f(b)) * (fmt == 2 ? bf2f(e) : h2f(e));      \
                    }                                                                                \
                } else if (fmt == 5) {                                                               \
                    w2 v = *(const w2*)((const u8*)x + xi), q = *(const w2*)((const u8*)wt + k * C + c0); \
                    _Pragma("unroll") for (int p = 0; p < 4; p++) {                                  \
                        unsigned hb = e4m3x2_h2((u16)(((p < 2 ? v.x : v.y) >> (16 * (p & 1))) & 0xffff)); \
                        unsigned he = e4m3x2_h2((u16)(((p < 2 ? q.x : q.y) >> (16 * (p & 1))) & 0xffff)); \
                        fa[2 * p] += h2f((u16)(hb & 0xffff)) * h2f((u16)(he & 0xffff));              \
                        fa[2 * p + 1] += h2f((u16)(hb >> 16)) * h2f((u16)(he >> 16));                \
                    }                                                                                \
                } else {                                                                             \
                    w2 v = *(const w2*)((const u8*)x + xi), q = *(const w2*)((const u8*)wt + k * C + c0); \
                    _Pragma("unroll") for (int j = 0; j < 8; j++) {                                  \
                        unsigned b = ((j < 4 ? v.x : v.y) >> (8 * (j & 3))) & 0xff;                  \
                        unsigned e = ((j < 4 ? q.x : q.y) >> (8 * (j & 3))) & 0xff;                  \
                        int xv = fmt == 3 ? (int)(signed char)b : (int)b;                            \
                        ia[j] += (xv - xz) * (int)(signed char)e;                                    \
                    }                                                                                \
                } } }                                                                                \
        i64 o = i * 8;                                                                               \
        float v[8], rv[8];                                                                           \
        _Pragma("unroll") for (int j = 0; j < 8; j++) {                                              \
            int co = c0 + j;                                                                         \
            float a = (fmt == 3 || fmt == 4) ? (float)ia[j] : fa[j];                                 \
            if (ms) a = a * ms[co];                                                                  \
            if (bias) a = a + bias[co];                                                              \
            if (resid) a = a + ldres(resid, o + j, rfmt, zs, zz);                                            \
            v[j] = act(a, ak, aa, ab);                                                               \
        }                                                                                            \
        if (yr != 0.f) st8r(y, o, v, ys, yr, zp);                                                     \
        else st8(y, o, v, ys, zp);                                                                   \
    }                                                                                                \
}
DWNHWC(dw_nhwc8_f32, float)
DWNHWC(dw_nhwc8_16, u16)
DWNHWC(dw_nhwc8_i8, signed char)
DWNHWC(dw_nhwc8_u8, u8q)
DWNHWC(dw_nhwc8_e4m3, u8)

// Per-tensor QuantizeLinear to E4M3, 4 elements per thread (n % 4 == 0),
// the same arithmetic as quant_f32_e4m3.
extern "C" __global__ void quant_f32_e4m3_x4(const w4* __restrict__ x, unsigned* __restrict__ y, i64 n4, const float* s) { pdl_enter();
    const float sc = s[0];
    GRID_LOOP(i, n4) {
        w4 v = x[i];
        const unsigned wd[4] = {v.x, v.y, v.z, v.w};
        unsigned o = 0;
#pragma unroll
        for (int j = 0; j < 4; j++) o |= (unsigned)f2e4m3(qscale(__uint_as_float(wd[j]), sc)) << (8 * j);
        y[i] = o;
    }
}

// NHWC [NHW][C] → NHWC with the channels zero-padded to Cp.
#define PADNHWC2(NAME, T)                                                                            \
extern "C" __global__ void NAME(const T* __restrict__ x, T* __restrict__ y, i64 NHW, int C, int Cp) { pdl_enter(); \
    GRID_LOOP(i, NHW * Cp) {                                                                         \
        int c = (int)qmod(i, Cp); i64 p = qdiv(i, Cp);                                               \
        y[i] = c < C ? x[p * C + c] : (T)0;                                                          \
    }                                                                                                \
}
PADNHWC2(padc_nhwc_b1, u8)
PADNHWC2(padc_nhwc_b2, u16)

// copy_b16: a device-to-device copy of n bytes, 16 at a time (both
// pointers 16-byte aligned: the caller checks), the tail byte by byte.
// Reshape/Flatten steps copy through it: cuMemcpyDtoDAsync took ~20 µs of
// GPU time for ResNet-50's 512 KB Flatten at batch 256.
extern "C" __global__ void copy_b16(const w4* __restrict__ x, w4* __restrict__ y, i64 n) { pdl_enter();
    const i64 n16 = n / 16;
    GRID_LOOP(i, n16) y[i] = x[i];
    GRID_LOOP(i, n - n16 * 16) ((u8*)y)[n16 * 16 + i] = ((const u8*)x)[n16 * 16 + i];
}

// copy2d_*: rows × w elements of 1, 4 or 16 bytes from x (rows packed) into
// y, whose rows are p elements apart: Concat copies each input into its
// slot of the output's rows so (ops.go, concatCopies).
#define COPY2D(NAME, T) \
extern "C" __global__ void NAME(const T* __restrict__ x, T* __restrict__ y, i64 rows, i64 w, i64 p) { pdl_enter(); \
    GRID_LOOP(i, rows * w) { const i64 r = i / w; y[r * p + (i - r * w)] = x[i]; } }
COPY2D(copy2d_b1, u8)
COPY2D(copy2d_b4, unsigned)
COPY2D(copy2d_b16, w4)

// transpose_b*: y = x with its axes permuted (Transpose), elements of 1, 2,
// 4 or 8 bytes: output element i (over the six output dims d, outer first,
// padded with 1) reads x at Σ coordinate·s, s being the permuted input
// strides (ops.go, transposeArgs).
#define TRANSPOSE(NAME, T) \
extern "C" __global__ void NAME(const T* __restrict__ x, T* __restrict__ y, i64 n, \
    int d0, int d1, int d2, int d3, int d4, int d5, i64 s0, i64 s1, i64 s2, i64 s3, i64 s4, i64 s5) { pdl_enter(); \
    const int d[6] = {d0, d1, d2, d3, d4, d5}; \
    const i64 s[6] = {s0, s1, s2, s3, s4, s5}; \
    GRID_LOOP(i, n) { \
        i64 r = i, o = 0; \
        _Pragma("unroll") for (int k = 5; k >= 0; k--) { const i64 q = r % d[k]; r /= d[k]; o += q * s[k]; } \
        y[i] = x[o]; } }
TRANSPOSE(transpose_b1, u8)
TRANSPOSE(transpose_b2, unsigned short)
TRANSPOSE(transpose_b4, unsigned)
TRANSPOSE(transpose_b8, unsigned long long)

// Kernel-width expansion of a layer with few input channels (a network's
// first layer) for the NHWC implicit GEMM: y is [N][H][OW][CX] with
// y[n][ih][ow][kw·C + c] = x(n, c, ih, ow·sw − pw + kw·dw), zero outside the
// image and for kw·C + c ≥ KW·C, so that the KH×KW convolution of x is a
// KH×1 convolution of y with CX channels (stride sh×1, padding ph×0): each
// 16-byte chunk of the reduction then holds several taps' channels instead
// of one pixel's C channels padded to a chunk (ResNet-50's 7×7 stem on
// 8-bit codes: K = 7·32 = 224 instead of 7·7·16 = 784). x is NCHW (nhwc 0)
// or NHWC with C channels. A thread writes one 16-byte chunk of a row (CX
// fills whole chunks: nhwcChannels): the row's coordinates once, each
// element's offset in 32 bits from the row's start (four elements a thread,
// each with 64-bit index products, before session 9; the change left
// ResNet-50's stem at 0.40 ms on the H200: its cost is the convolution).
template <typename T>
__device__ __forceinline__ void kwexpand(const T* __restrict__ x, T* __restrict__ y, int N, int C, int H, int W, int OW,
    int KW, int sw, int pw, int dw, int CX, int nhwc) {
    constexpr int E = 16 / sizeof(T); // elements a chunk
    const int CXE = CX / E;
    const int cs = nhwc ? 1 : H * W, ws = nhwc ? C : 1; // a channel's and a column's stride
    GRID_LOOP(i, (i64)N * H * OW * CXE) {
        const int j = (int)qmod(i, CXE) * E; i64 t = qdiv(i, CXE); const int ow = (int)qmod(t, OW); t = qdiv(t, OW);
        const int ih = (int)qmod(t, H); const i64 n = qdiv(t, H);
        const T* row = x + (nhwc ? (n * H + ih) * (i64)W * C : (n * C * (i64)H + ih) * W); // (n, c = 0, ih, iw = 0)
        int kw = j / C, c = j - kw * C;
        const int iw0 = ow * sw - pw;
        unsigned v[E];
#pragma unroll
        for (int e = 0; e < E; e++) {
            const int iw = iw0 + kw * dw;
            v[e] = kw < KW && (unsigned)iw < (unsigned)W ? (unsigned)row[c * cs + iw * ws] : 0u;
            if (++c == C) { c = 0; kw++; }
        }
        w4 o;
        if constexpr (sizeof(T) == 1) {
            o.x = v[0] | v[1] << 8 | v[2] << 16 | v[3] << 24; o.y = v[4] | v[5] << 8 | v[6] << 16 | v[7] << 24;
            o.z = v[8] | v[9] << 8 | v[10] << 16 | v[11] << 24; o.w = v[12] | v[13] << 8 | v[14] << 16 | v[15] << 24;
        } else {
            o.x = v[0] | v[1] << 16; o.y = v[2] | v[3] << 16; o.z = v[4] | v[5] << 16; o.w = v[6] | v[7] << 16;
        }
        ((w4*)y)[i] = o;
    }
}
#define KWEXPAND(NAME, T)                                                                            \
extern "C" __global__ void NAME(const T* __restrict__ x, T* __restrict__ y, int N, int C, int H, int W, int OW, \
    int KW, int sw, int pw, int dw, int CX, int nhwc) { pdl_enter();                                              \
    kwexpand<T>(x, y, N, C, H, W, OW, KW, sw, pw, dw, CX, nhwc);                                     \
}
KWEXPAND(kwexpand_b1, u8)
KWEXPAND(kwexpand_b2, u16)
