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
    static constexpr int RS = BN + 16;                   // code row: BN bytes + 16 (16-byte aligned rows; a warp's pair accesses hit distinct banks)
    static constexpr int RB = IG_BM * RS;                // one tile's codes
    static constexpr int SB = 8 * BN;                    // one tile's BN scales and BN biases
    static constexpr int STAGE = (IG_BM + BN) * IG_SB;   // whole 1024-byte swizzle atoms
};

// IgpTile walks a block's tiles (blockIdx.x, + gridDim.x, ...) as pixel
// and channel tile indices, channel tiles fastest, without a division per
// tile (two at the start)
struct IgpTile {
    int mi, ni, gq, gr, nN;
    __device__ __forceinline__ IgpTile(int nN_) : nN(nN_) {
        mi = blockIdx.x / nN; ni = blockIdx.x - mi * nN;
        gq = gridDim.x / nN; gr = gridDim.x - gq * nN;
    }
    __device__ __forceinline__ void next() {
        mi += gq; ni += gr;
        if (ni >= nN) { ni -= nN; mi++; }
    }
};

// the residual of a persistent epilogue, known per tile so that the
// element loop has no branch: none, int8/uint8 codes (rfmt 3, 4: the
// XOR xr and offset roff of rescodes2 computed once), E4M3 codes, or any
// code format (rescodes2's runtime switch)
enum { RK_NONE, RK_INT, RK_E4M3, RK_ANY };
template <int RK>
__device__ __forceinline__ void ignp_res2(unsigned rc, int rfmt, float zs, int zz, unsigned xr, float roff, float& a, float& b) {
    if constexpr (RK == RK_INT) resint2(rc ^ xr, 0, roff, zs, a, b);
    else if constexpr (RK == RK_E4M3) rese4m3x2((u16)rc, zs, a, b);
    else rescodes2(rc, 0, rfmt, zs, zz, a, b);
}

// ignp_codes: activation AK as ign_rows (act_k), residual RK; cs the
// tile's code rows, sb its BN scales then BN biases (1 and −0, the exact
// identities, where the layer has none: no test per element); rA the
// thread's first row. Each thread writes its channel pairs' codes over
// their residual pairs in cs. Plain C++ shared-memory accesses (no asm
// volatile, which split the unrolled loop into a basic block per pair)
// let the compiler issue the residual loads ahead of the arithmetic.
//
// FAST (A_FAST; AK A_NONE, or A_CLIP for E4M3): scales, biases and zs in
// code units (the host's), so a code is an FFMA for scale and bias, one
// for an integer or E4M3 residual (decoded unscaled), and qfast or one
// conversion: common.cuh's fast epilogue.
template <int AK, int RK, int BN, typename ACC, typename OUT, bool FAST = false>
__device__ __forceinline__ void ignp_codes(ACC (&d)[BN / 2], unsigned char* cs, const float* sb, int rA, int tig, OUT*,
    int rfmt, float zs, int zz, unsigned xr, float roff, int ak, float aa, float ab, float ys, float yr, int zp, float vlo, float vhi) {
    constexpr int RS = igp<BN>::RS;
#pragma unroll
    for (int j = 0; j < BN / 8; j++) {
        const int c = j * 8 + tig * 2;
        const kf2 s = *(const kf2*)(sb + c), b = *(const kf2*)(sb + BN + c);
#pragma unroll
        for (int h = 0; h < 2; h++) {
            u16* at = (u16*)(cs + (rA + 8 * h) * RS + c);
            float t0 = (float)d[4 * j + 2 * h], t1 = (float)d[4 * j + 2 * h + 1];
            if constexpr (FAST) {
                t0 = __fmaf_rn(t0, s.x, b.x);
                t1 = __fmaf_rn(t1, s.y, b.y);
                if constexpr (RK == RK_INT) {
                    const unsigned wd = *at ^ xr;
                    t0 = __fmaf_rn(resint1(wd, 0, roff), zs, t0);
                    t1 = __fmaf_rn(resint1(wd, 1, roff), zs, t1);
                } else if constexpr (RK == RK_E4M3) {
                    const unsigned hh = e4m3x2_h2(*at);
                    t0 = __fmaf_rn(h2f((u16)(hh & 0xffff)), zs, t0);
                    t1 = __fmaf_rn(h2f((u16)(hh >> 16)), zs, t1);
                } else if constexpr (RK == RK_ANY) {
                    float r0, r1;
                    rescodes2(*at, 0, rfmt, zs, zz, r0, r1);
                    t0 = __fadd_rn(t0, r0); t1 = __fadd_rn(t1, r1);
                }
                if constexpr (is_e4m3<OUT>::v) {
                    if constexpr (AK == A_CLIP) { t0 = clampn(t0, vlo, vhi); t1 = clampn(t1, vlo, vhi); }
                    *at = (u16)e4m3x2(t0, t1);
                } else {
                    *at = (u16)prmt(qfast(t0, vlo, vhi), qfast(t1, vlo, vhi), 0x3340u);
                }
                continue;
            }
            // every step rounded on its own (_rn: never contracted into an FMA), as the reference
            t0 = __fadd_rn(__fmul_rn(t0, s.x), b.x);
            t1 = __fadd_rn(__fmul_rn(t1, s.y), b.y);
            if constexpr (RK != RK_NONE) {
                float r0, r1;
                ignp_res2<RK>(*at, rfmt, zs, zz, xr, roff, r0, r1);
                t0 = __fadd_rn(t0, r0); t1 = __fadd_rn(t1, r1);
            }
            unsigned pair;
            if constexpr (e4m3_relu<AK, OUT>::v) pair = e4m3x2(qdivr0(t0, ys, yr), qdivr0(t1, ys, yr)); // ReLU in the clamp
            else if constexpr (is_e4m3<OUT>::v) pair = e4m3x2(qdivr(act_k<AK>(t0, ak, aa, ab), ys, yr), qdivr(act_k<AK>(t1, ak, aa, ab), ys, yr));
            else pair = prmt(qcodew(act_k<AK>(t0, ak, aa, ab), ys, yr, zp, vlo, vhi), qcodew(act_k<AK>(t1, ak, aa, ab), ys, yr, zp, vlo, vhi), 0x3340u);
            *at = (u16)pair;
        }
    }
}

// ignp_store stores the warpgroup's 64 rows of codes from cs (rows m0 +
// row of the output): VB bytes a thread and row (16 where Cout % 16 = 0,
// half the passes of 8), BN/VB threads per row, 128·VB/BN rows per pass.
// The thread's first row is one 32-bit shared address and one global
// pointer, the others at constant offsets, and the rows left an int:
// per-row 64-bit products and precomputed shared addresses (which the
// compiler hoisted out of the tile loop and spilled to local memory,
// reloaded from L2 at every store: 11% of res2's stall samples) are gone.
template <int BN, int VB>
__device__ __forceinline__ void ignp_store(const unsigned char* cs, int t, int wg, i64 m0, int n0, i64 M, int Cout, u8* y) {
    constexpr int RS = igp<BN>::RS, TPR = BN / VB, RPP = 128 / TPR;
    const int col = (t % TPR) * VB, row0 = wg * 64 + t / TPR;
    if (n0 + col >= Cout) return;
    const unsigned src = smem_addr(cs) + row0 * RS + col;
    u8* yp = y + (m0 + row0) * Cout + n0 + col;
    const i64 step = (i64)RPP * Cout;
    const int left = (M - m0 < IG_BM ? (int)(M - m0) : IG_BM) - row0; // rows of this thread's from row0 on
#pragma unroll
    for (int q = 0; q < 64 / RPP; q++) {
        if (RPP * q >= left) break;
        if constexpr (VB == 16) {
            ku4 v;
            asm("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "r"(src + RPP * q * RS));
            *(ku4*)(yp + q * step) = v;
        } else {
            ku2 v;
            asm("ld.shared.v2.u32 {%0, %1}, [%2];" : "=r"(v.x), "=r"(v.y) : "r"(src + RPP * q * RS));
            *(ku2*)(yp + q * step) = v;
        }
    }
}

// ignp_epilogue: ignp_codes, then the warpgroup's 64 rows stored from cs
// (rows m0 + row of the output) by ignp_store
template <int AK, int RK, int BN, bool FAST, typename ACC, typename OUT>
__device__ __forceinline__ void ignp_epilogue(ACC (&d)[BN / 2], unsigned char* cs, const float* sb, int tid, int wg, int rA, int tig,
    i64 m0, int n0, i64 M, int Cout, OUT* __restrict__ y, int rfmt, float zs, int zz, unsigned xr, float roff, int ak, float aa,
    float ab, float ys, float yr, int zp, float vlo, float vhi) {
    ignp_codes<AK, RK, BN, ACC, OUT, FAST>(d, cs, sb, rA, tig, y, rfmt, zs, zz, xr, roff, ak, aa, ab, ys, yr, zp, vlo, vhi);
    asm volatile("bar.sync %0, 128;" :: "r"(1 + wg) : "memory");
    if ((Cout & 15) == 0) ignp_store<BN, 16>(cs, tid & 127, wg, m0, n0, M, Cout, (u8*)y); // rows of cs are 16-byte aligned
    else ignp_store<BN, 8>(cs, tid & 127, wg, m0, n0, M, Cout, (u8*)y);
}

// ignp_epilogue_k dispatches a tile's epilogue on its activation and
// residual kind (uniform per kernel launch: the branch is once per tile)
template <int BN, typename ACC, typename OUT>
__device__ __forceinline__ void ignp_epilogue_k(int rk, ACC (&d)[BN / 2], unsigned char* cs, const float* sb, int tid, int wg, int rA,
    int tig, i64 m0, int n0, i64 M, int Cout, OUT* __restrict__ y, int rfmt, float zs, int zz, unsigned xr, float roff, int ak,
    float aa, float ab, float ys, float yr, int zp, float vlo, float vhi) {
#define IGP_EPI(AK, RK, F) ignp_epilogue<AK, RK, BN, F>(d, cs, sb, tid, wg, rA, tig, m0, n0, M, Cout, y, rfmt, zs, zz, xr, roff, ak, aa, ab, ys, yr, zp, vlo, vhi)
#define IGP_EPI_R(AK, F) switch (rk) { case RK_NONE: IGP_EPI(AK, RK_NONE, F); break; case RK_INT: IGP_EPI(AK, RK_INT, F); break; \
    case RK_E4M3: IGP_EPI(AK, RK_E4M3, F); break; default: IGP_EPI(AK, RK_ANY, F); }
    switch (ak) {
    case A_NONE: IGP_EPI_R(A_NONE, false) break;
    case A_RELU: IGP_EPI_R(A_RELU, false) break;
    case A_CLIP: IGP_EPI_R(A_CLIP, false) break;
    case A_FAST: IGP_EPI_R(A_NONE, true) break;
    case A_FAST | A_CLIP:
        if constexpr (is_e4m3<OUT>::v) { IGP_EPI_R(A_CLIP, true) }
        break;
    default: IGP_EPI_R(-1, false)
    }
#undef IGP_EPI_R
#undef IGP_EPI
}

// ignp_body: ignw_body's arguments plus the tile count; ST stages, then
// two tiles' code buffers and two tiles' scale/bias buffers (the tile being
// finished and the next, whose copies go with its first step). One step's
// loads go ahead (LA = 1): with ST ≥ 3 one step's MMAs stay in flight.
// resid is null or codes (rfmt >= 3): the lowering checks.
//
// RES false (ignr_*: layers without a residual): no code buffers; a
// tile's epilogue stages its codes in the stage its last step's MMAs read,
// which no load targets before every thread has passed the next step's
// barrier, after its epilogue. The shared memory freed holds a third stage.
template <int F, typename ACC, typename OUT, int ST, int BN, bool RES = true>
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
    static_assert(RES || G::RB <= G::STAGE, "a tile's codes fit in a stage");
    if constexpr (!RES) resid = nullptr;
    const unsigned cbuf = sbase + ST * G::STAGE, sbuf = cbuf + (RES ? 2 * G::RB : 0);
    const int nk = (K + IG_SB - 1) / IG_SB;
    const int ntile = (tiles - (int)blockIdx.x + (int)gridDim.x - 1) / (int)gridDim.x;
    WRows rw;
    rw.fast = false;
    rw.wb = nullptr;
    // a 1×1 stride-1 unpadded conv comes as N = pixels, OH = OW = 1 (its
    // rows are C-byte pixel rows, K = C)
    const bool pixrows = OH == 1 && OW == 1 && H == 1 && W == 1 && K == C;
    const unsigned sraw = smem_addr(smd);
    // the loader: the next step to load (tile lt of the block's, step lk, stage ls)
    int lt = 0, lk = 0, ls = 0;
    IgpTile ltile(nN);
    WTap tp; // set at each tile's first step from one packed register (a copy of the first step's tap kept for all tiles cost registers)
    const unsigned tp0 = WTap::packed(cc, C, KW);
    auto load_next = [&]() {
        if (lt < ntile) {
            const i64 m0 = (i64)ltile.mi * IG_BM;
            const int n0 = ltile.ni * BN;
            if (lk == 0) { // the tile's rows, and its epilogue's operands
                // a pixel-row tile inside the problem takes wg_load_pix
                rw.wb = n0 + BN <= Cout ? w + (i64)(n0 + r0) * Kp + cc * 16 : nullptr; // B from one base (wg_load_bbase)
                rw.fast = pixrows && m0 + IG_BM <= M && rw.wb;
                if (rw.fast) rw.px[0] = x + (m0 + r0) * C + cc * 16;
                else {
                    wg_rows(rw, x, m0, r0, M, C, H, W, OH, OW, sh, sw, ph, pw);
                    tp.init_packed(tp0);
                }
                const unsigned cb = cbuf + (lt & 1) * G::RB, sb = sbuf + (lt & 1) * G::SB;
                if (resid && (Cout & 15) == 0) { // 16-byte chunks i = tid + 256k: row i / (BN/16), chunk i % (BN/16)
                    constexpr int CPR = BN / 16;
                    const int col = (tid % CPR) * 16;
                    const u8* rp = (const u8*)resid + (m0 + tid / CPR) * Cout + n0 + col;
                    const bool inside = m0 + IG_BM <= M && n0 + BN <= Cout; // no test per row
#pragma unroll
                    for (int k = 0; k < BN / 32; k++) {
                        const int row = tid / CPR + k * (256 / CPR);
                        const bool ok = inside || (m0 + row < M && n0 + col < Cout);
                        cp16(cb + row * G::RS + col, ok ? rp + (i64)k * (256 / CPR) * Cout : resid, ok ? 16 : 0);
                    }
                } else if (resid) { // rows 8-byte aligned only (Cout % 16 == 8): thread (r0, cc) takes columns cc·8 + 64p of rows r0 + 32q
#pragma unroll
                    for (int q = 0; q < 4; q++) {
                        const int row = r0 + 32 * q;
                        const i64 m = m0 + row;
                        const u8* rrow = (const u8*)resid + m * Cout + n0 + cc * 8;
#pragma unroll
                        for (int p = 0; p < BN / 64; p++) {
                            const bool ok = m < M && n0 + cc * 8 + 64 * p < Cout;
                            cp8(cb + row * G::RS + cc * 8 + 64 * p, ok ? rrow + 64 * p : (const u8*)resid, ok ? 8 : 0);
                        }
                    }
                }
                if (tid < BN / 2) { // BN/4 chunks of 4 scales, BN/4 of 4 biases
                    const bool isb = tid >= BN / 4;
                    const float* src = isb ? bias : ms;
                    const int i = tid % (BN / 4), co = n0 + 4 * i;
                    // sb made opaque here, so that the compiler computes dst
                    // per tile instead of hoisting it out of the tile loop
                    // into a register it then spilled (ignq_*: reloaded from
                    // local memory, an L2 round trip, at every tile)
                    unsigned sbo = sb;
                    asm volatile("" : "+r"(sbo));
                    const unsigned dst = sbo + (isb ? 4 * BN : 0) + 16 * i;
                    if (src) cp16(dst, co < Cout ? (const void*)(src + co) : (const void*)x, co < Cout ? 16 : 0);
                    else { // the exact identities: ×1, + −0
                        const unsigned v = isb ? 0x80000000u : 0x3F800000u;
                        *(ku4*)(smd + (dst - sraw)) = ku4{v, v, v, v};
                    }
                }
            }
            if (rw.fast) wg_load_pix<BN>(x, w, rw.px[0], rw.wb, sbase + ls * G::STAGE, lk, cc, r0, C, Kp, K);
            else {
                wg_load<BN>(x, w, rw, tp, sbase + ls * G::STAGE, lk, cc, r0, n0, C, H, W, dh, dw, Kp, K, Cout);
                tp.next(C, KW);
            }
        }
        if (++lk == nk) { lk = 0; lt++; ltile.next(); }
        if (++ls == ST) ls = 0;
    };
    ACC d[BN / 2];
#pragma unroll
    for (int i = 0; i < BN / 2; i++) d[i] = 0;
    const int gid = lane >> 2, tig = lane & 3, rA = wg * 64 + (warp & 3) * 16 + gid;
    // the residual's kind (ignp_epilogue) and its integer decoding constants
    const int rk = !resid ? RK_NONE : rfmt == 3 || rfmt == 4 ? RK_INT : rfmt == 5 ? RK_E4M3 : RK_ANY;
    const unsigned xr = rfmt == 3 ? 0x80808080u : 0u;
    const float roff = (float)(12582912 + (rfmt == 3 ? 128 : 0) + zz); // exact: |zz| < 2⁸
    load_next();
    cp_commit();
    int cs = 0; // the stage of the step being computed
    IgpTile ctile(nN);
    for (int t = 0; t < ntile; t++, ctile.next()) {
        const i64 m0 = (i64)ctile.mi * IG_BM;
        const int n0 = ctile.ni * BN;
        for (int kt = 0; kt < nk; kt++) {
            cp_wait<0>();
            fence_async_smem();
            __syncthreads();
            load_next(); // the next step, possibly the next tile's first
            cp_commit();
            wg_mma_step<BN>(d, sbase + cs * G::STAGE, wg, K - kt * IG_SB, kt == 0); // the tile's first MMA overwrites d
            if constexpr (ST >= 3) wg_wait<1>();
            else wg_wait<0>();
            wg_hold(d);
            if (++cs == ST) cs = 0;
        }
        wg_wait<0>();
        wg_hold(d);
        unsigned char* cb = RES ? smd + (cbuf - sraw) + (t & 1) * G::RB : smd + (sbase - sraw) + (cs + ST - 1) % ST * G::STAGE;
        const float* sb = (const float*)(smd + (sbuf - sraw) + (t & 1) * G::SB);
        ignp_epilogue_k<BN>(rk, d, cb, sb, tid, wg, rA, tig, m0, n0, M, Cout, y, rfmt, zs, zz, xr, roff, ak, aa, ab, ys, yr, zp, vlo, vhi);
    }
    cp_wait<0>();
}
// ignp_*: 3 stages (72 KB + 19 KB of codes, scales and biases), 2 blocks
// per SM; ignq_*: 128-channel tiles, 2 stages (64 KB + 36 KB), 2 blocks per
// SM; ignr_*: 128-channel tiles without a residual, 3 stages (96 KB + 2 KB),
// 2 blocks per SM. 8-bit outputs only. (A 3-blocks form, 2 stages under an 85-register
// cap, spilled and, for E4M3 with Clip on mobilenetv2's first layer, raised
// CUDA_ERROR_ILLEGAL_INSTRUCTION on the H200, 2026-11-26: dropped.)
#define IGP(NAME, BLOCKS, ST, BN, F, ACC, OUT, RES)                                                  \
extern "C" __global__ void __launch_bounds__(256, BLOCKS) NAME(const unsigned char* __restrict__ x,  \
    const unsigned char* __restrict__ w, OUT* __restrict__ y, int N, int C, int H, int W, int OH,    \
    int OW, int KW, int sh, int sw, int ph, int pw, int dh, int dw, int Kp, int K, int Cout,          \
    const float* ms, const float* bias, const void* resid, int rfmt, float zs, int zz, int ak, float aa, float ab, \
    float ys, float yr, int zp, float vlo, float vhi, int tiles) { pdl_enter();                                   \
    ignp_body<F, ACC, OUT, ST, BN, RES>(x, w, y, N, C, H, W, OH, OW, KW, sh, sw, ph, pw, dh, dw, Kp, K, Cout, \
        ms, bias, resid, rfmt, zs, zz, ak, aa, ab, ys, yr, zp, vlo, vhi, tiles);                     \
}
IGP(ignp_i8_i8, 2, 3, 64, 3, int, signed char, true)
IGP(ignp_i8_u8, 2, 3, 64, 3, int, u8q, true)
IGP(ignp_e4m3_e4m3, 2, 3, 64, 2, float, u8, true)
IGP(ignq_i8_i8, 2, 2, 128, 3, int, signed char, true)
IGP(ignq_i8_u8, 2, 2, 128, 3, int, u8q, true)
IGP(ignq_e4m3_e4m3, 2, 2, 128, 2, float, u8, true)
IGP(ignr_i8_i8, 2, 3, 128, 3, int, signed char, false)
IGP(ignr_i8_u8, 2, 3, 128, 3, int, u8q, false)
IGP(ignr_e4m3_e4m3, 2, 3, 128, 2, float, u8, false)
