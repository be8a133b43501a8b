// kiln's implicit-GEMM convolution, compiled by NVRTC after common.cuh and
// nhwc.cuh as its own module: a device whose NVRTC rejects it keeps every
// other kernel.

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

// F 2 here is E4M3 bytes straight into mma.sync (m16n8k32, the s8
// fragment layout; ign_body's ignf_* kernels). On sm_90 the compiler emits
// twice the MMA instructions of the s8 kernel for it (cuobjdump: 64 vs 32
// per step; 2026-11-26), and the long-K layers run ~1.5× slower than int8:
// the f16 rate, not the FP8 one, which only wgmma has on Hopper
// (wgmma.cu). Its f32 accumulation is not exact (a K = 32 product differs
// from the float-rounded exact sum in 56% of random cases), so those
// kernels are a timed tactic of their own beside the exact widening ones
// (ign8_body).
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
    float ab, float ys, int zp, const int* cs, int zc, int xz, int yn) { pdl_enter();                             \
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
    int ak, float aa, float ab, float ys, float yr, int zp, float vlo, float vhi) {
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
    ign_epilogue(acc, smd, tid, wm, wn, gid, tig, m0, n0, M, Cout, y, ms, bias, resid, rfmt, zs, zz, ak, aa, ab, ys, yr, zp, vlo, vhi);
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
    float ys, float yr, int zp, float vlo, float vhi) { pdl_enter();                                                                            \
    ign_body<F, ACC, OUT, ST>(x, w, y, N, C, H, W, OH, OW, KW, sh, sw, ph, pw, dh, dw, Kp, K, Cout,  \
        ms, bias, resid, rfmt, zs, zz, ak, aa, ab, ys, yr, zp, vlo, vhi);                                                  \
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
    int ak, float aa, float ab, float ys, float yr, int zp, float vlo, float vhi) {
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
    ign_epilogue(acc, smd, tid, wm, wn, gid, tig, m0, n0, M, Cout, y, ms, bias, resid, rfmt, zs, zz, ak, aa, ab, ys, yr, zp, vlo, vhi);
}
#define IGN8(NAME, BLOCKS, OUT)                                                                      \
extern "C" __global__ void __launch_bounds__(256, BLOCKS) NAME(const unsigned char* __restrict__ x,  \
    const unsigned char* __restrict__ w, OUT* __restrict__ y, int N, int C, int H, int W, int OH,    \
    int OW, int KW, int sh, int sw, int ph, int pw, int dh, int dw, int Kp, int K, int Cout,          \
    const float* ms, const float* bias, const void* resid, int rfmt, float zs, int zz, int ak, float aa, float ab,     \
    float ys, float yr, int zp, float vlo, float vhi) { pdl_enter();                                                                            \
    ign8_body<OUT>(x, w, y, N, C, H, W, OH, OW, KW, sh, sw, ph, pw, dh, dw, Kp, K, Cout, ms, bias,    \
        resid, rfmt, zs, zz, ak, aa, ab, ys, yr, zp, vlo, vhi);                                                            \
}
IGN8(ign_e4m3_f32, 2, float)
IGN8(ign_e4m3_16, 2, u16)
IGN8(ign_e4m3_e4m3, 2, u8)
IGN8(ign3_e4m3_f32, 3, float)
IGN8(ign3_e4m3_16, 3, u16)
IGN8(ign3_e4m3_e4m3, 3, u8)
