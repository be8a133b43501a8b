// kiln's persistent NHWC implicit GEMM on wgmma for 8-bit outputs (ignp_*,
// compiled after wgmma.cu in its module): ignw_body's tile, stages, loads
// and MMAs, but each block loops over tiles (blockIdx.x, + gridDim.x, ...)
// as one stream of reduction steps, so the next tile's first loads are in
// flight while a tile's epilogue runs; ignw_body's loads wait behind its
// own epilogue, and on 1×1 layers (one or two steps per tile) that wait
// was most of a tile's time.
//
// The epilogue works on the accumulators where wgmma leaves them (each
// thread: rows rA and rA + 8, channel pairs 8j + 2·tig), with the tile's
// scales and biases and its residual codes copied into shared memory
// with the tile's first step, and writes each pair's two codes back over
// its residual pair in a [IG_BM][IGP_RS] byte tile; the warpgroup then
// stores its 64 rows from there, 8 bytes per thread and row. Shared memory
// no longer holds the accumulators (ignw_body's 36 KB Cs), so the stages
// stay free for the next tile. Same arithmetic as ign_rows, element by
// element: the codes are identical.
//
// BN is the tile's channels: 64 (m64n64k32 wgmma, as ignw_body) or 128
// (m64n128k32: the A tile, gathered from the input, serves twice the
// channels per byte loaded, and each MMA does twice the work per A read).
template <int BN> struct igp {
    static constexpr int RS = BN + 8;                    // code row: BN bytes + 8 (a warp's pair accesses hit distinct banks)
    static constexpr int RB = IG_BM * RS;                // one tile's codes
    static constexpr int SB = 8 * BN;                    // one tile's BN scales and BN biases
    static constexpr int STAGE = (IG_BM + BN) * IG_SB;   // whole 1024-byte swizzle atoms
};

// ignp_tile is the block's lti-th tile's pixel and channel origins
template <int BN> __device__ __forceinline__ void ignp_tile(int lti, int nN, i64& m0, int& n0) {
    const int t = blockIdx.x + lti * gridDim.x;
    m0 = (i64)(t / nN) * IG_BM;
    n0 = (t % nN) * BN;
}

// ignp_epilogue: activation AK as ign_rows (act_k); cb, sb the tile's
// code and scale/bias buffers; rA the thread's first row
template <int AK, int BN, typename ACC, typename OUT>
__device__ __forceinline__ void ignp_epilogue(ACC (&d)[BN / 2], unsigned cb, unsigned sb, int tid, int wg, int rA, int tig, i64 m0,
    int n0, i64 M, int Cout, OUT* __restrict__ y, bool hs, bool hb, bool hr, int rfmt, float zs, int zz, int ak, float aa,
    float ab, float ys, float yr, int zp, float vlo, float vhi) {
    constexpr int RS = igp<BN>::RS;
#pragma unroll
    for (int j = 0; j < BN / 8; j++) {
        const int c = j * 8 + tig * 2;
        float s0 = 1.f, s1 = 1.f, b0 = 0.f, b1 = 0.f;
        if (hs) asm volatile("ld.shared.v2.f32 {%0, %1}, [%2];" : "=f"(s0), "=f"(s1) : "r"(sb + 4 * c));
        if (hb) asm volatile("ld.shared.v2.f32 {%0, %1}, [%2];" : "=f"(b0), "=f"(b1) : "r"(sb + 4 * BN + 4 * c));
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const unsigned at = cb + (rA + 8 * h) * RS + c;
            float t0 = int_acc<ACC>::v ? (float)d[4 * j + 2 * h] : (float)d[4 * j + 2 * h];
            float t1 = int_acc<ACC>::v ? (float)d[4 * j + 2 * h + 1] : (float)d[4 * j + 2 * h + 1];
            // every step rounded on its own (_rn: never contracted into an FMA), as the reference
            if (hs) { t0 = __fmul_rn(t0, s0); t1 = __fmul_rn(t1, s1); }
            if (hb) { t0 = __fadd_rn(t0, b0); t1 = __fadd_rn(t1, b1); }
            if (hr) {
                unsigned short rc;
                asm volatile("ld.shared.u16 %0, [%1];" : "=h"(rc) : "r"(at));
                float r0, r1;
                rescodes2(rc, 0, rfmt, zs, zz, r0, r1);
                t0 = __fadd_rn(t0, r0); t1 = __fadd_rn(t1, r1);
            }
            unsigned pair;
            if constexpr (e4m3_relu<AK, OUT>::v) pair = e4m3x2(qdivr0(t0, ys, yr), qdivr0(t1, ys, yr)); // ReLU in the clamp
            else if constexpr (is_e4m3<OUT>::v) pair = e4m3x2(qdivr(act_k<AK>(t0, ak, aa, ab), ys, yr), qdivr(act_k<AK>(t1, ak, aa, ab), ys, yr));
            else pair = prmt(qcodew(act_k<AK>(t0, ak, aa, ab), ys, yr, zp, vlo, vhi), qcodew(act_k<AK>(t1, ak, aa, ab), ys, yr, zp, vlo, vhi), 0x3340u);
            asm volatile("st.shared.u16 [%0], %1;" :: "r"(at), "h"((unsigned short)pair) : "memory");
        }
    }
    // the warpgroup's 64 rows: 8 bytes per thread and row, BN/8 threads
    // per row, 1024/BN rows per pass
    asm volatile("bar.sync %0, 128;" :: "r"(1 + wg) : "memory");
    constexpr int TPR = BN / 8, RPP = 128 / TPR;
    const int t = tid & 127, col = (t % TPR) * 8;
    if (n0 + col >= Cout) return;
#pragma unroll
    for (int q = 0; q < 64 / RPP; q++) {
        const int row = wg * 64 + t / TPR + RPP * q;
        const i64 m = m0 + row;
        if (m >= M) break;
        ku2 v;
        asm volatile("ld.shared.v2.u32 {%0, %1}, [%2];" : "=r"(v.x), "=r"(v.y) : "r"(cb + row * RS + col));
        *(ku2*)((u8*)y + m * Cout + n0 + col) = v;
    }
}

// ignp_body: ignw_body's arguments plus the tile count; ST stages, then
// two tiles' code buffers and two tiles' scale/bias buffers (the tile being
// finished and the next, whose copies go with its first step). One step's
// loads go ahead (LA = 1): with ST ≥ 3 one step's MMAs stay in flight.
// resid is null or codes (rfmt >= 3): the lowering checks.
template <int F, typename ACC, typename OUT, int ST, int BN>
__device__ __forceinline__ void ignp_body(const unsigned char* __restrict__ x, const unsigned char* __restrict__ w,
    OUT* __restrict__ y, int N, int C, int H, int W, int OH, int OW, int KW, int sh, int sw, int ph, int pw,
    int dh, int dw, int Kp, int K, int Cout, const float* ms, const float* bias, const void* resid, int rfmt, float zs, int zz,
    int ak, float aa, float ab, float ys, float yr, int zp, float vlo, float vhi, int tiles) {
    extern __shared__ __align__(16) unsigned char smd[];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wg = warp >> 2;
    const i64 M = (i64)N * OH * OW;
    using G = igp<BN>;
    const int nN = (Cout + BN - 1) / BN;
    const int cc = tid & 7, r0 = tid >> 3;
    const unsigned sbase = (smem_addr(smd) + 1023) & ~1023u;
    const unsigned cbuf = sbase + ST * G::STAGE, sbuf = cbuf + 2 * G::RB;
    const int nk = (K + IG_SB - 1) / IG_SB;
    const int ntile = (tiles - (int)blockIdx.x + (int)gridDim.x - 1) / (int)gridDim.x;
    WRows rw;
    // the loader: the next step to load (tile lt, step lk, stage ls)
    int lt = 0, lk = 0, ls = 0;
    auto load_next = [&]() {
        if (lt < ntile) {
            i64 m0; int n0;
            ignp_tile<BN>(lt, nN, m0, n0);
            if (lk == 0) { // the tile's rows, and its epilogue's operands
                wg_rows(rw, m0, r0, M, H, W, OH, OW, sh, sw, ph, pw);
                const unsigned cb = cbuf + (lt & 1) * G::RB, sb = sbuf + (lt & 1) * G::SB;
                if (resid) { // 8-byte chunks: thread (r0, cc) takes columns cc·8 + 64p of rows r0 + 32q
#pragma unroll
                    for (int p = 0; p < BN / 64; p++) {
                        const int co = n0 + cc * 8 + 64 * p;
#pragma unroll
                        for (int q = 0; q < 4; q++) {
                            const int row = r0 + 32 * q;
                            const i64 m = m0 + row;
                            const bool ok = m < M && co < Cout;
                            cp8(cb + row * G::RS + cc * 8 + 64 * p, ok ? (const u8*)resid + m * Cout + co : (const u8*)resid, ok ? 8 : 0);
                        }
                    }
                }
                if (tid < BN / 2) { // BN/4 chunks of 4 scales, BN/4 of 4 biases
                    const bool isb = tid >= BN / 4;
                    const float* src = isb ? bias : ms;
                    const int i = tid % (BN / 4), co = n0 + 4 * i;
                    const bool ok = src && co < Cout;
                    cp16(sb + (isb ? 4 * BN : 0) + 16 * i, ok ? (const void*)(src + co) : (const void*)x, ok ? 16 : 0);
                }
            }
            wg_load<BN>(x, w, rw, sbase + ls * G::STAGE, lk, cc, r0, n0, C, H, W, KW, dh, dw, Kp, K, Cout);
        }
        if (++lk == nk) { lk = 0; lt++; }
        if (++ls == ST) ls = 0;
    };
    ACC d[BN / 2];
#pragma unroll
    for (int i = 0; i < BN / 2; i++) d[i] = 0;
    const int gid = lane >> 2, tig = lane & 3, rA = wg * 64 + (warp & 3) * 16 + gid;
    load_next();
    cp_commit();
    int cs = 0; // the stage of the step being computed
    for (int t = 0; t < ntile; t++) {
        i64 m0; int n0;
        ignp_tile<BN>(t, nN, m0, n0);
        for (int kt = 0; kt < nk; kt++) {
            cp_wait<0>();
            fence_async_smem();
            __syncthreads();
            load_next(); // the next step, possibly the next tile's first
            cp_commit();
            wg_mma_step<BN>(d, sbase + cs * G::STAGE, wg, K - kt * IG_SB);
            if constexpr (ST >= 3) wg_wait<1>();
            else wg_wait<0>();
            wg_hold(d);
            if (++cs == ST) cs = 0;
        }
        wg_wait<0>();
        wg_hold(d);
        const unsigned cb = cbuf + (t & 1) * G::RB, sb = sbuf + (t & 1) * G::SB;
        const bool hs = ms != 0, hb = bias != 0, hr = resid != 0;
        switch (ak) { // the activation once per tile (act_k)
        case A_NONE: ignp_epilogue<A_NONE, BN>(d, cb, sb, tid, wg, rA, tig, m0, n0, M, Cout, y, hs, hb, hr, rfmt, zs, zz, ak, aa, ab, ys, yr, zp, vlo, vhi); break;
        case A_RELU: ignp_epilogue<A_RELU, BN>(d, cb, sb, tid, wg, rA, tig, m0, n0, M, Cout, y, hs, hb, hr, rfmt, zs, zz, ak, aa, ab, ys, yr, zp, vlo, vhi); break;
        case A_CLIP: ignp_epilogue<A_CLIP, BN>(d, cb, sb, tid, wg, rA, tig, m0, n0, M, Cout, y, hs, hb, hr, rfmt, zs, zz, ak, aa, ab, ys, yr, zp, vlo, vhi); break;
        default: ignp_epilogue<-1, BN>(d, cb, sb, tid, wg, rA, tig, m0, n0, M, Cout, y, hs, hb, hr, rfmt, zs, zz, ak, aa, ab, ys, yr, zp, vlo, vhi);
        }
#pragma unroll
        for (int i = 0; i < BN / 2; i++) d[i] = 0;
    }
    cp_wait<0>();
}
// ignp_*: 3 stages (72 KB + 19 KB of codes, scales and biases), 2 blocks
// per SM; ignq_*: 128-channel tiles, 2 stages (64 KB + 36 KB), 2 blocks per
// SM. 8-bit outputs only. (A 3-blocks form, 2 stages under an 85-register
// cap, spilled and, for E4M3 with Clip on mobilenetv2's first layer, raised
// CUDA_ERROR_ILLEGAL_INSTRUCTION on the H200, 2026-11-26: dropped.)
#define IGP(NAME, BLOCKS, ST, BN, F, ACC, OUT)                                                       \
extern "C" __global__ void __launch_bounds__(256, BLOCKS) NAME(const unsigned char* __restrict__ x,  \
    const unsigned char* __restrict__ w, OUT* __restrict__ y, int N, int C, int H, int W, int OH,    \
    int OW, int KW, int sh, int sw, int ph, int pw, int dh, int dw, int Kp, int K, int Cout,          \
    const float* ms, const float* bias, const void* resid, int rfmt, float zs, int zz, int ak, float aa, float ab, \
    float ys, float yr, int zp, float vlo, float vhi, int tiles) {                                   \
    ignp_body<F, ACC, OUT, ST, BN>(x, w, y, N, C, H, W, OH, OW, KW, sh, sw, ph, pw, dh, dw, Kp, K, Cout, \
        ms, bias, resid, rfmt, zs, zz, ak, aa, ab, ys, yr, zp, vlo, vhi, tiles);                     \
}
IGP(ignp_i8_i8, 2, 3, 64, 3, int, signed char)
IGP(ignp_i8_u8, 2, 3, 64, 3, int, u8q)
IGP(ignp_e4m3_e4m3, 2, 3, 64, 2, float, u8)
IGP(ignq_i8_i8, 2, 2, 128, 3, int, signed char)
IGP(ignq_i8_u8, 2, 2, 128, 3, int, u8q)
IGP(ignq_e4m3_e4m3, 2, 2, 128, 2, float, u8)
