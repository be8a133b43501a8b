// kiln's implicit-GEMM convolution, compiled by NVRTC after common.cuh as
// its own module: a device whose NVRTC rejects it keeps every other kernel.

struct __align__(16) ki4 { int x, y, z, w; };
struct __align__(16) ku4 { unsigned x, y, z, w; };

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

template <int F> __device__ __forceinline__ void mma16(float* d, const unsigned* a, const unsigned* b) {
    if constexpr (F == 1)
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
    const void* resid, int rfmt, int ak, float aa, float ab, float ys, int zp, const int* cs, int zc, int xz) {
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
                for (int j = 0; j < 4; j++) mma16<F>(acc[i][j], a[i], b[j]);
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
        if (resid) v = v + ldres(resid, o, rfmt);
        v = act(v, ak, aa, ab);
        store(y, o, v, ys, zp);
    }
}
#define IGEMM(NAME, F, ACC, OUT)                                                                     \
extern "C" __global__ void __launch_bounds__(256, 2) NAME(const void* __restrict__ x,                  \
    const void* __restrict__ w, const ki4* __restrict__ ktab, OUT* __restrict__ y, int N, int C,    \
    int H, int W, int OH, int OW, int sh, int sw, int ph, int pw, int Kp, int K, int Cout,           \
    int groups, const float* ms, const float* bias, const void* resid, int rfmt, int ak, float aa,   \
    float ab, float ys, int zp, const int* cs, int zc, int xz) {                                     \
    igemm_body<F, ACC, OUT>(x, w, ktab, y, N, C, H, W, OH, OW, sh, sw, ph, pw, Kp, K, Cout, groups,   \
        ms, bias, resid, rfmt, ak, aa, ab, ys, zp, cs, zc, xz);                                      \
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
