// kiln's implicit-GEMM convolution, compiled by NVRTC after common.cuh as
// its own module: a device whose NVRTC rejects it keeps every other kernel.

struct __align__(16) ki4 { int x, y, z, w; };
struct __align__(16) ku4 { unsigned x, y, z, w; };
struct __align__(8) ku2 { unsigned x, y; };

// ---- implicit-GEMM convolution on the tensor cores (mma.sync): the
// im2col tile is gathered from the NCHW input straight into shared memory,
// the accumulators stay in registers and the epilogue (scales, bias,
// residual, activation, requantization) writes NCHW, so no im2col buffer,
// no accumulator round trip and no second pass. Block tile: 128 output
// pixels × 64 output channels of one group, 128 bytes of the reduction per
// step (64 16-bit or 128 8-bit elements, gathered and stored a 32-bit word
// at a time), 256 threads as 4×2 warps of 32×32, two blocks per SM.
// The next step's loads are issued before the current step's MMAs.
// Input formats F: 0 f16, 1 bf16, 2 E4M3 (widened to f16 in shared memory:
// exact, products exact in the f32 accumulator), 3 int8, 4 uint8 (as int8
// x ^ 0x80, zero point handled as in im2col_zp). ktab[k] = {c, kh·dh,
// kw·dw, 0} for the group-local reduction index k (c = -1 past K).
#define IG_BM 128
#define IG_BN 64
#define IG_SB 128        // bytes of the reduction per step and row
#define IG_RB 132        // shared row: IG_SB + 4 (33 words: the gathered stores do not conflict)
#define IG_CS (IG_BM + 4) // staging row of the epilogue (floats or ints)

__device__ __forceinline__ unsigned e4m3x2_h2(u16 pair) { unsigned r; asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(r) : "h"(pair)); return r; }

// F 2 here is E4M3 bytes straight into the tensor cores (m16n8k32, the s8
// fragment layout; ign_body's ignf_* kernels): Hopper's FP8 MMA runs at the
// int8 rate (1.28 PFLOP/s measured with mma.sync on the H100, f16 0.65) but
// its f32 accumulation is not exact (a K = 32 product differs from the
// float-rounded exact sum in 56% of random cases), so those kernels are a
// timed tactic of their own beside the exact widening ones (ign8_body).
template <int F> __device__ __forceinline__ void mma16(float* d, const unsigned* a, const unsigned* b) {
    if constexpr (F == 2)
        asm volatile("mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
            : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    else if constexpr (F == 1)
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
            : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    else
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
            : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
template <int F> __device__ __forceinline__ void mma16(int* d, const unsigned* a, const unsigned* b) {
    asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
        : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3]) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

template <int F, typename ACC, typename OUT>
__device__ __forceinline__ void igemm_body(const void* __restrict__ xv, const void* __restrict__ wv,
    const ki4* __restrict__ ktab, OUT* __restrict__ y, int N, int C, int H, int W, int OH, int OW, int sh,
    int sw, int ph, int pw, int Kp, int K, int Cout, int groups, const float* ms, const float* bias,
    const void* resid, int rfmt, float zs, int zz, int ak, float aa, float ab, float ys, int zp, const int* cs, int zc, int xz,
    int yn) {
    constexpr bool I8 = F >= 3;
    constexpr int EPW = I8 ? 4 : 2;           // elements per 32-bit word in shared memory
    constexpr int KS = IG_SB / (4 / EPW);     // reduction elements per step (IG_SB bytes of shared row)
    constexpr int NW = IG_SB / 4 / 2;         // A words each thread gathers per step (two threads a row)
    constexpr int GB = F <= 1 ? 2 : 1;        // bytes of an element in global memory
    constexpr int CPR = KS * GB / 16;         // 16-byte weight chunks per row and step
    constexpr int NB = IG_BN * CPR / 256;     // weight chunks per thread and step
    __shared__ __align__(16) unsigned char sm[IG_BN * IG_CS * 4];
    unsigned char* As = sm;                   // [IG_BM][IG_RB]
    unsigned char* Bs = sm + IG_BM * IG_RB;   // [IG_BN][IG_RB]
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int g = blockIdx.z, Cg = C / groups, Og = Cout / groups;
    const i64 M = (i64)N * OH * OW, OHW = (i64)OH * OW, HWin = (i64)H * W;
    const i64 m0 = (i64)blockIdx.x * IG_BM;
    const int n0 = blockIdx.y * IG_BN;
    // the output pixel whose im2col row this thread gathers (words ak0,
    // ak0 + 2, ... of the row)
    const int am = tid & (IG_BM - 1), ak0 = tid >> 7;
    const i64 m = m0 + am;
    const bool mok = m < M;
    int ih0 = 0, iw0 = 0;
    i64 xb = 0;
    if (mok) {
        int ow = (int)(qmod(m, OW)); i64 t = qdiv(m, OW); int oh = (int)(qmod(t, OH)); int n = (int)(qdiv(t, OH));
        ih0 = oh * sh - ph; iw0 = ow * sw - pw; xb = ((i64)n * C + (i64)g * Cg) * HWin;
    }
    const unsigned padv = F == 4 ? (unsigned)((xz ^ 0x80) & 0xff) : F == 3 ? (unsigned)(xz & 0xff) : 0u;
    unsigned ra[NW];
    ku4 rb[NB];
    auto load = [&](int k0) {
#pragma unroll
        for (int j = 0; j < NW; j++) {
            unsigned word = 0;
#pragma unroll
            for (int q = 0; q < EPW; q++) {
                ki4 e = ktab[k0 + (ak0 + 2 * j) * EPW + q];
                unsigned v = padv;
                if (mok && e.x >= 0) {
                    int ih = ih0 + e.y, iw = iw0 + e.z;
                    if ((unsigned)ih < (unsigned)H && (unsigned)iw < (unsigned)W) {
                        i64 xi = xb + (i64)e.x * HWin + (i64)ih * W + iw;
                        if constexpr (F <= 1) v = ((const u16*)xv)[xi];
                        else if constexpr (F == 2) v = e4m3x2_h2(((const u8*)xv)[xi]) & 0xffff;
                        else if constexpr (F == 3) v = ((const u8*)xv)[xi];
                        else v = ((const u8*)xv)[xi] ^ 0x80;
                    }
                }
                word |= v << (q * (32 / EPW));
            }
            ra[j] = word;
        }
#pragma unroll
        for (int q = 0; q < NB; q++) {
            int id = tid + 256 * q, br = id / CPR, bc = id % CPR;
            int kb = k0 + bc * (16 / GB);
            rb[q] = ku4{0, 0, 0, 0};
            if (n0 + br < Og && kb < Kp)
                rb[q] = *(const ku4*)((const unsigned char*)wv + ((i64)(g * Og + n0 + br) * Kp + kb) * GB);
        }
    };
    auto stash = [&]() {
#pragma unroll
        for (int j = 0; j < NW; j++) *(unsigned*)(As + am * IG_RB + (ak0 + 2 * j) * 4) = ra[j];
#pragma unroll
        for (int q = 0; q < NB; q++) {
            int id = tid + 256 * q, br = id / CPR, bc = id % CPR;
            unsigned* d = (unsigned*)(Bs + br * IG_RB + bc * 16 * (F == 2 ? 2 : 1));
            if constexpr (F == 2) { // 16 E4M3 weights → 16 halves
                const unsigned wd[4] = {rb[q].x, rb[q].y, rb[q].z, rb[q].w};
#pragma unroll
                for (int r = 0; r < 8; r++) d[r] = e4m3x2_h2((u16)(wd[r >> 1] >> ((r & 1) * 16)));
            } else {
                d[0] = rb[q].x; d[1] = rb[q].y; d[2] = rb[q].z; d[3] = rb[q].w;
            }
        }
    };
    ACC acc[2][4][4];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
            for (int q = 0; q < 4; q++) acc[i][j][q] = 0;
    const int wm = (warp & 3) * 32, wn = (warp >> 2) * 32, gid = lane >> 2, tig = lane & 3;
    const int nk = (K + KS - 1) / KS;
    load(0);
    for (int kt = 0; kt < nk; kt++) {
        __syncthreads();
        stash();
        __syncthreads();
        if (kt + 1 < nk) load((kt + 1) * KS);
#pragma unroll
        for (int ks = 0; ks < IG_SB / 32; ks++) { // MMA steps of 32 bytes of K
            unsigned a[2][4], b[4][2];
#pragma unroll
            for (int i = 0; i < 2; i++) {
                const unsigned char* p = As + (wm + i * 16 + gid) * IG_RB + ks * 32 + tig * 4;
                a[i][0] = *(const unsigned*)p;
                a[i][1] = *(const unsigned*)(p + 8 * IG_RB);
                a[i][2] = *(const unsigned*)(p + 16);
                a[i][3] = *(const unsigned*)(p + 8 * IG_RB + 16);
            }
#pragma unroll
            for (int j = 0; j < 4; j++) {
                const unsigned char* p = Bs + (wn + j * 8 + gid) * IG_RB + ks * 32 + tig * 4;
                b[j][0] = *(const unsigned*)p;
                b[j][1] = *(const unsigned*)(p + 16);
            }
#pragma unroll
            for (int i = 0; i < 2; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) mma16<F == 2 ? 0 : F>(acc[i][j], a[i], b[j]); // E4M3 is f16 in shared memory here
        }
    }
    __syncthreads();
    ACC* Cs = (ACC*)sm; // [IG_BN][IG_CS]: channel-major, so that the stores below run along hw
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) {
            int r = wm + i * 16 + gid, c = wn + j * 8 + tig * 2;
            Cs[c * IG_CS + r] = acc[i][j][0];
            Cs[(c + 1) * IG_CS + r] = acc[i][j][1];
            Cs[c * IG_CS + r + 8] = acc[i][j][2];
            Cs[(c + 1) * IG_CS + r + 8] = acc[i][j][3];
        }
    __syncthreads();
    // every pass of this loop has the same pixel (idx % IG_BM == am): its
    // image and offset are computed once
    if (yn) { // NHWC output: consecutive threads take consecutive channels of a pixel
        for (int idx = tid; idx < IG_BM * IG_BN; idx += blockDim.x) {
            int ml = idx / IG_BN, nl = idx % IG_BN, co = n0 + nl;
            i64 mm = m0 + ml;
            if (mm >= M || co >= Og) continue;
            int c = g * Og + co;
            i64 o = mm * Cout + c;
            float v = accf(Cs[nl * IG_CS + ml], cs, zc, c);
            if (ms) v = v * ms[c];
            if (bias) v = v + bias[c];
            if (resid) v = v + ldres(resid, o, rfmt, zs, zz);
            v = act(v, ak, aa, ab);
            store(y, o, v, ys, zp);
        }
        return;
    }
    const i64 nimg = qdiv(m, OHW), obase = nimg * Cout * OHW + (m - nimg * OHW);
    for (int idx = tid; idx < IG_BM * IG_BN; idx += blockDim.x) {
        int nl = idx / IG_BM, ml = idx % IG_BM;
        int co = n0 + nl;
        if (!mok || co >= Og) continue;
        int c = g * Og + co;
        i64 o = obase + (i64)c * OHW;
        float v = accf(Cs[nl * IG_CS + ml], cs, zc, c);
        if (ms) v = v * ms[c];
        if (bias) v = v + bias[c];
        if (resid) v = v + ldres(resid, o, rfmt, zs, zz);
        v = act(v, ak, aa, ab);
        store(y, o, v, ys, zp);
    }
}
#define IGEMM(NAME, F, ACC, OUT)                                                                     \
extern "C" __global__ void __launch_bounds__(256, 2) NAME(const void* __restrict__ x,                  \
    const void* __restrict__ w, const ki4* __restrict__ ktab, OUT* __restrict__ y, int N, int C,    \
    int H, int W, int OH, int OW, int sh, int sw, int ph, int pw, int Kp, int K, int Cout,           \
    int groups, const float* ms, const float* bias, const void* resid, int rfmt, float zs, int zz, int ak, float aa,   \
    float ab, float ys, int zp, const int* cs, int zc, int xz, int yn) {                             \
    igemm_body<F, ACC, OUT>(x, w, ktab, y, N, C, H, W, OH, OW, sh, sw, ph, pw, Kp, K, Cout, groups,   \
        ms, bias, resid, rfmt, zs, zz, ak, aa, ab, ys, zp, cs, zc, xz, yn);                                  \
}
IGEMM(ig_f16_f32, 0, float, float)
IGEMM(ig_f16_16, 0, float, u16)
IGEMM(ig_bf16_f32, 1, float, float)
IGEMM(ig_bf16_16, 1, float, u16)
IGEMM(ig_e4m3_f32, 2, float, float)
IGEMM(ig_e4m3_16, 2, float, u16)
IGEMM(ig_e4m3_e4m3, 2, float, u8)
IGEMM(ig_i8_f32, 3, int, float)
IGEMM(ig_i8_16, 3, int, u16)
IGEMM(ig_i8_i8, 3, int, signed char)
IGEMM(ig_i8_u8, 3, int, u8q)
IGEMM(ig_u8_f32, 4, int, float)
IGEMM(ig_u8_16, 4, int, u16)
IGEMM(ig_u8_i8, 4, int, signed char)
IGEMM(ig_u8_u8, 4, int, u8q)

// ---- NHWC implicit-GEMM convolution (channels-last activations, one
// group). x is [N][H][W][C] with C a multiple of a 16-byte chunk (8 16-bit
// or 16 8-bit elements), w is [Np][Kp] with the reduction ordered (kh, kw,
// c), so every 16-byte chunk of the im2col row is 16 contiguous bytes of
// one input pixel: the tiles are copied with cp.async (zero-filled outside
// the image and past K) through a 3-stage pipeline, one barrier per step.
// Same block tile and MMA code as above (128 pixels × 64 channels × 128
// bytes per step, 4×2 warps of 32×32); the epilogue writes y as [M][Cout]
// (NHWC), 8 channels (one vector) per thread and pass, with the residual
// read the same way. F: 0 f16, 1 bf16, 2 E4M3 (FP8 MMA: ignf_*), 3 int8 (symmetric: no zero point).
// Dynamic shared memory: IGN_ST * IGN_STAGE bytes.
#define IGN_RB 144                          // shared row: 128 bytes + 16 (16-byte aligned, conflict-free fragment reads)
#define IGN_ST 3                            // pipeline stages
#define IGN_STAGE ((IG_BM + IG_BN) * IGN_RB)
#define IGN_CS (IG_BN + 8)                  // epilogue staging row (ACC elements): 8-byte fragment stores conflict-free

__device__ __forceinline__ unsigned smem_addr(const void* p) {
    unsigned r;
    asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(r) : "l"(p));
    return r;
}
// 16 bytes global → shared, asynchronously; n = 0 writes zeros (src unread)
__device__ __forceinline__ void cp16(unsigned dst, const void* src, int n) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" :: "r"(dst), "l"(src), "r"(n) : "memory");
}
__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int N> __device__ __forceinline__ void cp_wait() { asm volatile("cp.async.wait_group %0;" :: "n"(N) : "memory"); }
// four 8×8 b16 tiles from shared memory: lanes 8q..8q+7 address tile q's rows
__device__ __forceinline__ void ldsm4(unsigned* r, unsigned addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
        : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr) : "memory");
}

// 8 residual values at o (o % 8 == 0), as ldres reads one (codes: 8 bytes)
__device__ __forceinline__ void ldres8(const void* r, i64 o, int rfmt, float zs, int zz, float* v) {
    if (rfmt == 0) {
        const ku4* p = (const ku4*)((const float*)r + o);
        ku4 a = p[0], b = p[1];
        v[0] = __uint_as_float(a.x); v[1] = __uint_as_float(a.y); v[2] = __uint_as_float(a.z); v[3] = __uint_as_float(a.w);
        v[4] = __uint_as_float(b.x); v[5] = __uint_as_float(b.y); v[6] = __uint_as_float(b.z); v[7] = __uint_as_float(b.w);
        return;
    }
    if (rfmt >= 3) { // 8 codes, one 8-byte load, the format tested once (zcode's arithmetic)
        ku2 q = *(const ku2*)((const u8*)r + o);
        unsigned b[8];
#pragma unroll
        for (int j = 0; j < 8; j++) b[j] = ((j < 4 ? q.x : q.y) >> (8 * (j & 3))) & 0xff;
        // (code − zz) to float without I2F: |code − zz| < 2²², so 1.5·2²³ + it is exact
        if (rfmt == 3) {
#pragma unroll
            for (int j = 0; j < 8; j++) v[j] = __fmul_rn(__fsub_rn(__int_as_float(0x4B400000 + (int)(signed char)b[j] - zz), 12582912.f), zs);
        } else if (rfmt == 4) {
#pragma unroll
            for (int j = 0; j < 8; j++) v[j] = __fmul_rn(__fsub_rn(__int_as_float(0x4B400000 + (int)b[j] - zz), 12582912.f), zs);
        } else if (rfmt == 5) { // E4M3: two codes per conversion
#pragma unroll
            for (int j = 0; j < 8; j += 2) {
                unsigned h = e4m3x2_h2((u16)(b[j] | (b[j + 1] << 8)));
                v[j] = __fmul_rn(h2f((u16)(h & 0xffff)), zs);
                v[j + 1] = __fmul_rn(h2f((u16)(h >> 16)), zs);
            }
        } else { // E5M2: the high byte of an f16
#pragma unroll
            for (int j = 0; j < 8; j++) v[j] = __fmul_rn(h2f((u16)(b[j] << 8)), zs);
        }
        return;
    }
    ku4 q = *(const ku4*)((const u16*)r + o);
    const unsigned wd[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
    for (int j = 0; j < 4; j++) {
        u16 lo = (u16)(wd[j] & 0xffff), hi = (u16)(wd[j] >> 16);
        v[2 * j] = rfmt == 1 ? h2f(lo) : bf2f(lo);
        v[2 * j + 1] = rfmt == 1 ? h2f(hi) : bf2f(hi);
    }
}
// 8 outputs at o (o % 8 == 0) with store's conversions, one or two vector stores
// (codes are computed as values, never through the address of a local
// array, which could put it in local memory)
template <typename T> struct is_e4m3 { static constexpr bool v = false; };
template <> struct is_e4m3<u8> { static constexpr bool v = true; };
template <typename T> struct int_acc { static constexpr bool v = false; };
template <> struct int_acc<int> { static constexpr bool v = true; };

// qdivr is qscale(v, ys), IEEE's correctly rounded v / ys, without the
// division's range check and slow-path branch (a basic block per element):
// Markstein's correction q0 + (v − ys·q0)·yr with yr = RN(1/ys) (the host's)
// is the correctly rounded quotient when nothing overflows (checked here on
// 2·10⁸ random pairs: none differ). v is clamped to ±2⁶⁰ (NaN kept) and the
// NHWC lowering takes only ys in [2⁻⁴⁰, 2⁴⁰], so |q| < 2¹⁰⁰; every |v| beyond
// the clamp gives a quotient past every 8-bit code's range either way. An
// exact zero keeps its sign, as qscale does.
__device__ __forceinline__ float qdivr(float v, float ys, float yr) {
    float c = fminf(fmaxf(v, -0x1p60f), 0x1p60f);
    c = v != v ? v : c;
    float q0 = __fmul_rn(c, yr);
    float q = __fmaf_rn(__fmaf_rn(-ys, q0, c), yr, q0);
    return v == 0.f ? v : q;
}
// qbyte is f2i8's code (rint, + zp, saturated to [lo, hi], NaN → lo) as
// an 8-bit pattern without conversion instructions (FRND and F2I run at
// 1/8 of the FP32 rate): the clamp to [lo − zp, hi − zp] commutes with
// rint (integer bounds), and adding 1.5·2²³ rounds to the nearest integer,
// ties to even, leaving it in the low mantissa bits (|q| < 2²²).
__device__ __forceinline__ unsigned qbyte(float q, int zp, int lo, int hi) {
    float c = fminf(fmaxf(q, (float)(lo - zp)), (float)(hi - zp));
    int i = __float_as_int(__fadd_rn(c, 12582912.f)) - 0x4B400000 + zp;
    return (unsigned)(q != q ? lo : i) & 0xff;
}
__device__ __forceinline__ unsigned qcode(signed char*, float v, float ys, float yr, int zp) { return qbyte(qdivr(v, ys, yr), zp, -128, 127); }
__device__ __forceinline__ unsigned qcode(u8q*, float v, float ys, float yr, int zp) { return qbyte(qdivr(v, ys, yr), zp, 0, 255); }
__device__ __forceinline__ unsigned qcode(u8*, float v, float ys, float yr, int) { return f2e4m3(qdivr(v, ys, yr)); }
__device__ __forceinline__ unsigned qcode(u16*, float v, float, float, int fmt) { return fmt == 1 ? f2bf(v) : f2h(v); }
// two E4M3 codes from one conversion (a in the low byte)
__device__ __forceinline__ unsigned e4m3x2(float a, float b) {
    u16 r; asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(r) : "f"(b), "f"(a)); return r;
}
template <typename OUT> __device__ __forceinline__ void store8(OUT* y, i64 o, const float* v, float ys, float yr, int zp) {
    if constexpr (is_e4m3<OUT>::v) {
        unsigned w[4];
#pragma unroll
        for (int j = 0; j < 4; j++) w[j] = e4m3x2(qdivr(v[2 * j], ys, yr), qdivr(v[2 * j + 1], ys, yr));
        *(ku2*)((u8*)y + o) = ku2{w[0] | (w[1] << 16), w[2] | (w[3] << 16)};
    } else if constexpr (sizeof(OUT) == 1) {
        unsigned w0 = 0, w1 = 0;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            w0 |= qcode(y, v[j], ys, yr, zp) << (8 * j);
            w1 |= qcode(y, v[j + 4], ys, yr, zp) << (8 * j);
        }
        *(ku2*)((u8*)y + o) = ku2{w0, w1};
    } else if constexpr (sizeof(OUT) == 2) {
        ku4 q;
        q.x = qcode(y, v[0], ys, yr, zp) | (qcode(y, v[1], ys, yr, zp) << 16);
        q.y = qcode(y, v[2], ys, yr, zp) | (qcode(y, v[3], ys, yr, zp) << 16);
        q.z = qcode(y, v[4], ys, yr, zp) | (qcode(y, v[5], ys, yr, zp) << 16);
        q.w = qcode(y, v[6], ys, yr, zp) | (qcode(y, v[7], ys, yr, zp) << 16);
        *(ku4*)(y + o) = q;
    } else {
        ku4* p = (ku4*)(y + o);
        p[0] = ku4{__float_as_uint(v[0]), __float_as_uint(v[1]), __float_as_uint(v[2]), __float_as_uint(v[3])};
        p[1] = ku4{__float_as_uint(v[4]), __float_as_uint(v[5]), __float_as_uint(v[6]), __float_as_uint(v[7])};
    }
}


// ign_rows is ign_epilogue's element loop for activation AK (act_k): each
// thread's IG_BM·IG_BN/8/256 rows of 8 channels, straight-line code.
template <int AK, typename ACC, typename OUT>
__device__ __forceinline__ void ign_rows(const ACC* Cs, int tid, int cg, int co, i64 m0, i64 M, int Cout, OUT* __restrict__ y,
    bool hs, bool hb, bool hr, const float* sc, const float* bi, float (*rvs)[8], int ak, float aa, float ab, float ys,
    float yr, int zp) {
#pragma unroll
    for (int q = 0; q < IG_BM * IG_BN / 8 / 256; q++) {
        int row = (tid + 256 * q) / (IG_BN / 8);
        i64 m = m0 + row;
        if (m >= M) continue;
        i64 o = m * Cout + co;
        float v[8];
        const ki4 c0 = *(const ki4*)(Cs + row * IGN_CS + cg), c1 = *(const ki4*)(Cs + row * IGN_CS + cg + 4); // two 16-byte reads
        const int cw[8] = {c0.x, c0.y, c0.z, c0.w, c1.x, c1.y, c1.z, c1.w};
#pragma unroll
        for (int j = 0; j < 8; j++) {
            float t = int_acc<ACC>::v ? (float)cw[j] : __int_as_float(cw[j]);
            if (hs) t = t * sc[j];
            if (hb) t = t + bi[j];
            if (hr) t = t + rvs[q][j];
            v[j] = act_k<AK>(t, ak, aa, ab);
        }
        store8(y, o, v, ys, yr, zp);
    }
}

__device__ __forceinline__ unsigned abits(int v) { return (unsigned)v; }
__device__ __forceinline__ unsigned abits(float v) { return __float_as_uint(v); }

// ign_epilogue is the NHWC implicit GEMMs' epilogue: the 128×64 tile's
// accumulators (mma fragment layout) through shared memory, pixel-major,
// then 8 channels per thread along the output row: scale, bias, residual,
// activation, store (16-byte vectors).
template <typename ACC, typename OUT>
__device__ __forceinline__ void ign_epilogue(ACC (&acc)[2][4][4], unsigned char* smd, int tid, int wm, int wn, int gid,
    int tig, i64 m0, int n0, i64 M, int Cout, OUT* __restrict__ y, const float* ms, const float* bias, const void* resid,
    int rfmt, float zs, int zz, int ak, float aa, float ab, float ys, float yr, int zp) {
    ACC* Cs = (ACC*)smd; // [IG_BM][IGN_CS]: pixel-major, so that the stores below run along channels
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) {
            // a fragment's two adjacent channels in one 8-byte store (c
            // even); rows 72 words apart put a half-warp's 16 stores on 32
            // distinct banks
            int r = wm + i * 16 + gid, c = wn + j * 8 + tig * 2;
            *(ku2*)(Cs + r * IGN_CS + c) = ku2{abits(acc[i][j][0]), abits(acc[i][j][1])};
            *(ku2*)(Cs + (r + 8) * IGN_CS + c) = ku2{abits(acc[i][j][2]), abits(acc[i][j][3])};
        }
    __syncthreads();
    // Cout % 8 == 0 (the lowering checks): a group of 8 channels is whole
    // or absent. Every pass of a thread has the same 8 channels (gi % 8 ==
    // tid % 8): their scales and biases are loaded once.
    const int cg = (tid % (IG_BN / 8)) * 8, co = n0 + cg;
    if (co >= Cout) return;
    float sc[8], bi[8];
#pragma unroll
    for (int j = 0; j < 8; j++) {
        sc[j] = ms ? ms[co + j] : 1.f;
        bi[j] = bias ? bias[co + j] : 0.f;
    }
    // every row's residual is loaded before the first store: the stores
    // may alias them for the compiler, which would otherwise serialize four
    // DRAM round trips per thread
    constexpr int NQ = IG_BM * IG_BN / 8 / 256;
    float rvs[NQ][8];
    if (resid) {
#pragma unroll
        for (int q = 0; q < NQ; q++) {
            i64 m = m0 + (tid + 256 * q) / (IG_BN / 8);
            if (m < M) ldres8(resid, m * Cout + co, rfmt, zs, zz, rvs[q]);
        }
    }
    switch (ak) { // the activation once per tile (act_k)
    case A_NONE: ign_rows<A_NONE, ACC>(Cs, tid, cg, co, m0, M, Cout, y, ms != 0, bias != 0, resid != 0, sc, bi, rvs, ak, aa, ab, ys, yr, zp); break;
    case A_RELU: ign_rows<A_RELU, ACC>(Cs, tid, cg, co, m0, M, Cout, y, ms != 0, bias != 0, resid != 0, sc, bi, rvs, ak, aa, ab, ys, yr, zp); break;
    case A_CLIP: ign_rows<A_CLIP, ACC>(Cs, tid, cg, co, m0, M, Cout, y, ms != 0, bias != 0, resid != 0, sc, bi, rvs, ak, aa, ab, ys, yr, zp); break;
    default: ign_rows<-1, ACC>(Cs, tid, cg, co, m0, M, Cout, y, ms != 0, bias != 0, resid != 0, sc, bi, rvs, ak, aa, ab, ys, yr, zp);
    }
}

// ign_mma_step is one pipeline step's MMAs of the NHWC bodies: the warp's
// 32×32 slice of the 128×64 tile over the stage's 128 bytes of reduction,
// in 32-byte MMA steps (m16n8k16 16-bit, m16n8k32 8-bit); the steps at or
// past kbytes (the bytes of the reduction left: a short K, the last step of
// a K that is not a multiple of 128 bytes) hold only zeros and are skipped.
// Fragments by ldmatrix.x4 (four 8×16-byte tiles each): A's a0..a3 are rows
// 0-7/8-15 × bytes 0-15/16-31 of the warp's 16-row slice; B's pair of n8
// tiles j, j+1 likewise.
template <int F, typename ACC>
__device__ __forceinline__ void ign_mma_step(ACC (&acc)[2][4][4], unsigned as, unsigned bs, int wm, int wn, int lane, int kbytes) {
    const int la_row = (lane & 7) + ((lane >> 3) & 1) * 8, la_col = (lane >> 4) * 16;
    const int lb_row = (lane & 7) + ((lane >> 4) & 1) * 8, lb_col = ((lane >> 3) & 1) * 16;
#pragma unroll
    for (int ks = 0; ks < IG_SB / 32; ks++) {
        if (ks * 32 >= kbytes) break;
        unsigned a[2][4], b[4][2];
#pragma unroll
        for (int i = 0; i < 2; i++)
            ldsm4(a[i], as + (wm + i * 16 + la_row) * IGN_RB + ks * 32 + la_col);
#pragma unroll
        for (int jj = 0; jj < 2; jj++) {
            unsigned r[4];
            ldsm4(r, bs + (wn + jj * 16 + lb_row) * IGN_RB + ks * 32 + lb_col);
            b[2 * jj][0] = r[0]; b[2 * jj][1] = r[1]; b[2 * jj + 1][0] = r[2]; b[2 * jj + 1][1] = r[3];
        }
#pragma unroll
        for (int i = 0; i < 2; i++)
#pragma unroll
            for (int j = 0; j < 4; j++) mma16<F>(acc[i][j], a[i], b[j]);
    }
}

template <int F, typename ACC, typename OUT, int ST>
__device__ __forceinline__ void ign_body(const unsigned char* __restrict__ x, const unsigned char* __restrict__ w,
    OUT* __restrict__ y, int N, int C, int H, int W, int OH, int OW, int KW, int sh, int sw, int ph, int pw,
    int dh, int dw, int Kp, int K, int Cout, const float* ms, const float* bias, const void* resid, int rfmt, float zs, int zz,
    int ak, float aa, float ab, float ys, float yr, int zp) {
    constexpr int GB = F <= 1 ? 2 : 1;        // bytes of an element
    constexpr int EPC = 16 / GB;              // elements per 16-byte chunk
    constexpr int KS = IG_SB / GB;            // reduction elements per step
    extern __shared__ __align__(16) unsigned char smd[];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const i64 M = (i64)N * OH * OW;
    // 1D grid, channel tiles fastest: the blocks running together share
    // their input pixels, which are then read from DRAM once (layers whose
    // activations exceed the L2 would otherwise re-read them per tile)
    const int nN = (Cout + IG_BN - 1) / IG_BN;
    const i64 m0 = (i64)(blockIdx.x / nN) * IG_BM;
    const int n0 = (int)(blockIdx.x % nN) * IG_BN;
    const int cc = tid & 7, r0 = tid >> 3;    // chunk column; rows r0 + 32q
    const unsigned sbase = smem_addr(smd);
    int aih[4], aiw[4];
    i64 abase[4];
#pragma unroll
    for (int q = 0; q < 4; q++) {
        i64 m = m0 + r0 + 32 * q;
        aih[q] = -(1 << 29); aiw[q] = 0; abase[q] = 0;
        if (m < M) {
            if (OH == 1 && OW == 1) { // 1×1 stride-1 unpadded convs come as N = pixels, H = W = OH = OW = 1
                aih[q] = -ph; aiw[q] = -pw; abase[q] = m * H * W;
            } else {
                int ow = (int)qmod(m, OW); i64 t = qdiv(m, OW); int oh = (int)qmod(t, OH); i64 n = qdiv(t, OH);
                aih[q] = oh * sh - ph; aiw[q] = ow * sw - pw; abase[q] = n * H * W;
            }
        }
    }
    auto load = [&](int kt, int stage) {
        const unsigned as = sbase + stage * IGN_STAGE, bs = as + IG_BM * IGN_RB;
        const int k = kt * KS + cc * EPC;
        const bool kok = k < K;
        // a chunk whose 32-byte MMA step lies wholly past K is never read
        // (the MMA loop skips that step): no copy, not even a zero fill
        if (kt * KS + (cc >> 1) * (32 / GB) >= K) return;
        int r = 0, c = k, kh = 0, kw = 0;
        if (K != C) { // more than one tap: the tap and channel of k (1×1: r = 0, c = k)
            r = kok ? k / C : 0; c = k - r * C; kh = r / KW; kw = r - kh * KW;
        }
        const int dy = kh * dh, dx = kw * dw;
#pragma unroll
        for (int q = 0; q < 4; q++) {
            int ih = aih[q] + dy, iw = aiw[q] + dx;
            bool ok = kok && (unsigned)ih < (unsigned)H && (unsigned)iw < (unsigned)W;
            const unsigned char* src = ok ? x + ((abase[q] + (i64)ih * W + iw) * C + c) * GB : x;
            cp16(as + (r0 + 32 * q) * IGN_RB + cc * 16, src, ok ? 16 : 0);
        }
#pragma unroll
        for (int q = 0; q < 2; q++) {
            int row = r0 + 32 * q, co = n0 + row;
            bool ok = kok && co < Cout;
            const unsigned char* src = ok ? w + ((i64)co * Kp + k) * GB : w;
            cp16(bs + row * IGN_RB + cc * 16, src, ok ? 16 : 0);
        }
    };
    ACC acc[2][4][4];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
            for (int q = 0; q < 4; q++) acc[i][j][q] = 0;
    const int wm = (warp & 3) * 32, wn = (warp >> 2) * 32, gid = lane >> 2, tig = lane & 3;
    const int nk = (K + KS - 1) / KS;
#pragma unroll
    for (int s = 0; s < ST - 1; s++) {
        if (s < nk) load(s, s);
        cp_commit();
    }
    for (int kt = 0; kt < nk; kt++) {
        cp_wait<ST - 2>();
        __syncthreads();
        if (kt + ST - 1 < nk) load(kt + ST - 1, (kt + ST - 1) % ST);
        cp_commit();
        const unsigned as = sbase + (kt % ST) * IGN_STAGE, bs = as + IG_BM * IGN_RB;
        ign_mma_step<F>(acc, as, bs, wm, wn, lane, (K - kt * KS) * GB);
    }
    cp_wait<0>();
    __syncthreads();
    ign_epilogue(acc, smd, tid, wm, wn, gid, tig, m0, n0, M, Cout, y, ms, bias, resid, rfmt, zs, zz, ak, aa, ab, ys, yr, zp);
}
// ign_*: 3 stages, 2 blocks per SM (83 KB of shared memory each); ign3_*:
// 2 stages (55 KB) and at most 85 registers, so that 3 blocks share an SM
// (more warps to hide the epilogue's and the loads' latency on short
// reductions). The builder times both.
#define IGN(NAME, BLOCKS, ST, F, ACC, OUT)                                                           \
extern "C" __global__ void __launch_bounds__(256, BLOCKS) NAME(const unsigned char* __restrict__ x,  \
    const unsigned char* __restrict__ w, OUT* __restrict__ y, int N, int C, int H, int W, int OH,    \
    int OW, int KW, int sh, int sw, int ph, int pw, int dh, int dw, int Kp, int K, int Cout,          \
    const float* ms, const float* bias, const void* resid, int rfmt, float zs, int zz, int ak, float aa, float ab,     \
    float ys, float yr, int zp) {                                                                            \
    ign_body<F, ACC, OUT, ST>(x, w, y, N, C, H, W, OH, OW, KW, sh, sw, ph, pw, dh, dw, Kp, K, Cout,  \
        ms, bias, resid, rfmt, zs, zz, ak, aa, ab, ys, yr, zp);                                                  \
}
IGN(ign_f16_f32, 2, 3, 0, float, float)
IGN(ign_f16_16, 2, 3, 0, float, u16)
IGN(ign_bf16_f32, 2, 3, 1, float, float)
IGN(ign_bf16_16, 2, 3, 1, float, u16)
IGN(ign_i8_f32, 2, 3, 3, int, float)
IGN(ign_i8_16, 2, 3, 3, int, u16)
IGN(ign_i8_i8, 2, 3, 3, int, signed char)
IGN(ign_i8_u8, 2, 3, 3, int, u8q)
IGN(ign3_f16_f32, 3, 2, 0, float, float)
IGN(ign3_f16_16, 3, 2, 0, float, u16)
IGN(ign3_bf16_f32, 3, 2, 1, float, float)
IGN(ign3_bf16_16, 3, 2, 1, float, u16)
IGN(ign3_i8_f32, 3, 2, 3, int, float)
IGN(ign3_i8_16, 3, 2, 3, int, u16)
IGN(ign3_i8_i8, 3, 2, 3, int, signed char)
IGN(ign3_i8_u8, 3, 2, 3, int, u8q)
// E4M3 on the FP8 tensor cores (see mma16): ignf_* 3 stages, ign3f_* 2
IGN(ignf_e4m3_f32, 2, 3, 2, float, float)
IGN(ignf_e4m3_16, 2, 3, 2, float, u16)
IGN(ignf_e4m3_e4m3, 2, 3, 2, float, u8)
IGN(ign3f_e4m3_f32, 3, 2, 2, float, float)
IGN(ign3f_e4m3_16, 3, 2, 2, float, u16)
IGN(ign3f_e4m3_e4m3, 3, 2, 2, float, u8)

// ---- NHWC implicit GEMM for E4M3 inputs: the tiles go through registers,
// widened to f16 (exact) on the way into shared memory, 2 stages (the
// next step's 16-byte loads are in flight during the current step's
// MMAs); 64 reduction elements per step (128 bytes of f16 per row); the
// MMA and epilogue are ign_body's. C % 16 == 0 (16 E4M3 per chunk).
template <typename OUT>
__device__ __forceinline__ void ign8_body(const unsigned char* __restrict__ x, const unsigned char* __restrict__ w,
    OUT* __restrict__ y, int N, int C, int H, int W, int OH, int OW, int KW, int sh, int sw, int ph, int pw,
    int dh, int dw, int Kp, int K, int Cout, const float* ms, const float* bias, const void* resid, int rfmt, float zs, int zz,
    int ak, float aa, float ab, float ys, float yr, int zp) {
    constexpr int KS = 64;                    // reduction elements per step
    extern __shared__ __align__(16) unsigned char smd[];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const i64 M = (i64)N * OH * OW;
    const int nN = (Cout + IG_BN - 1) / IG_BN;
    const i64 m0 = (i64)(blockIdx.x / nN) * IG_BM;
    const int n0 = (int)(blockIdx.x % nN) * IG_BN;
    const int cc = tid & 3, r0 = tid >> 2;    // 16-byte global chunk column; A rows r0 + 64q, B row r0
    const unsigned sbase = smem_addr(smd);
    int aih[2], aiw[2];
    i64 abase[2];
#pragma unroll
    for (int q = 0; q < 2; q++) {
        i64 m = m0 + r0 + 64 * q;
        aih[q] = -(1 << 29); aiw[q] = 0; abase[q] = 0;
        if (m < M) {
            if (OH == 1 && OW == 1) { // 1×1 stride-1 unpadded convs come as N = pixels (ign_body)
                aih[q] = -ph; aiw[q] = -pw; abase[q] = m * H * W;
            } else {
                int ow = (int)qmod(m, OW); i64 t = qdiv(m, OW); int oh = (int)qmod(t, OH); i64 n = qdiv(t, OH);
                aih[q] = oh * sh - ph; aiw[q] = ow * sw - pw; abase[q] = n * H * W;
            }
        }
    }
    ku4 ra[2], rb;
    auto load = [&](int kt) {
        const int k = kt * KS + cc * 16;
        const bool kok = k < K;
        int r = 0, c = k, kh = 0, kw = 0;
        if (K != C) { // more than one tap (1×1: r = 0, c = k)
            r = kok ? k / C : 0; c = k - r * C; kh = r / KW; kw = r - kh * KW;
        }
#pragma unroll
        for (int q = 0; q < 2; q++) {
            int ih = aih[q] + kh * dh, iw = aiw[q] + kw * dw;
            ra[q] = ku4{0, 0, 0, 0};
            if (kok && (unsigned)ih < (unsigned)H && (unsigned)iw < (unsigned)W)
                ra[q] = *(const ku4*)(x + (abase[q] + (i64)ih * W + iw) * C + c);
        }
        const int co = n0 + r0;
        rb = ku4{0, 0, 0, 0};
        if (kok && co < Cout) rb = *(const ku4*)(w + (i64)co * Kp + k);
    };
    auto widen = [&](unsigned char* dst, ku4 v) { // 16 E4M3 → 16 f16, two 16-byte stores
        const unsigned wd[4] = {v.x, v.y, v.z, v.w};
        unsigned h[8];
#pragma unroll
        for (int i = 0; i < 8; i++) h[i] = e4m3x2_h2((u16)(wd[i >> 1] >> ((i & 1) * 16)));
        *(ku4*)dst = ku4{h[0], h[1], h[2], h[3]};
        *(ku4*)(dst + 16) = ku4{h[4], h[5], h[6], h[7]};
    };
    auto stash = [&](int stage) {
        unsigned char* As = smd + stage * IGN_STAGE;
        unsigned char* Bs = As + IG_BM * IGN_RB;
#pragma unroll
        for (int q = 0; q < 2; q++) widen(As + (r0 + 64 * q) * IGN_RB + cc * 32, ra[q]);
        widen(Bs + r0 * IGN_RB + cc * 32, rb);
    };
    float acc[2][4][4];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
            for (int q = 0; q < 4; q++) acc[i][j][q] = 0;
    const int wm = (warp & 3) * 32, wn = (warp >> 2) * 32, gid = lane >> 2, tig = lane & 3;
    const int nk = (K + KS - 1) / KS;
    load(0);
    stash(0);
    __syncthreads();
    for (int kt = 0; kt < nk; kt++) {
        if (kt + 1 < nk) load(kt + 1);
        const unsigned as = sbase + (kt & 1) * IGN_STAGE, bs = as + IG_BM * IGN_RB;
        ign_mma_step<0>(acc, as, bs, wm, wn, lane, (K - kt * KS) * 2); // f16 in shared memory
        if (kt + 1 < nk) stash((kt + 1) & 1);
        __syncthreads();
    }
    ign_epilogue(acc, smd, tid, wm, wn, gid, tig, m0, n0, M, Cout, y, ms, bias, resid, rfmt, zs, zz, ak, aa, ab, ys, yr, zp);
}
#define IGN8(NAME, BLOCKS, OUT)                                                                      \
extern "C" __global__ void __launch_bounds__(256, BLOCKS) NAME(const unsigned char* __restrict__ x,  \
    const unsigned char* __restrict__ w, OUT* __restrict__ y, int N, int C, int H, int W, int OH,    \
    int OW, int KW, int sh, int sw, int ph, int pw, int dh, int dw, int Kp, int K, int Cout,          \
    const float* ms, const float* bias, const void* resid, int rfmt, float zs, int zz, int ak, float aa, float ab,     \
    float ys, float yr, int zp) {                                                                            \
    ign8_body<OUT>(x, w, y, N, C, H, W, OH, OW, KW, sh, sw, ph, pw, dh, dw, Kp, K, Cout, ms, bias,    \
        resid, rfmt, zs, zz, ak, aa, ab, ys, yr, zp);                                                            \
}
IGN8(ign_e4m3_f32, 2, float)
IGN8(ign_e4m3_16, 2, u16)
IGN8(ign_e4m3_e4m3, 2, u8)
IGN8(ign3_e4m3_f32, 3, float)
IGN8(ign3_e4m3_16, 3, u16)
IGN8(ign3_e4m3_e4m3, 3, u8)
