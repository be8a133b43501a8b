// kiln's NHWC implicit GEMM for 8-bit inputs on Hopper's warpgroup MMA
// (wgmma.mma_async, sm_90a), compiled by NVRTC after common.cuh and
// nhwc.cuh as its own module: a device or compiler without wgmma keeps
// igemm.cu's kernels. Same tile, cp.async pipeline and epilogue as
// igemm.cu's ign_body (128 pixels × 64 output channels × 128 bytes of the
// reduction per stage, 256 threads), but each stage is laid out as wgmma
// reads it (rows of 128 bytes whose 16-byte chunks are XOR-swizzled by
// row % 8: the 128-byte swizzle of the K-major layout, so the cp.async
// stores of a row stay conflict-free) and the MMAs are two warpgroups'
// m64n64k32 wgmma, A and B from shared memory: int8 (s32 accumulators,
// exact) and E4M3 (f32, Hopper's FP8 rate, which mma.sync does not reach
// on sm_90; the tensor cores' FP8 accumulation is not exact, as for
// igemm.cu's ignf_*).
#define IGW_STAGE ((IG_BM + IG_BN) * IG_SB) // 24 KB, whole 1024-byte swizzle atoms

// the shared-memory matrix descriptor of a K-major operand with 128-byte
// swizzle: start address >> 4, leading offset unused (1), 8-row atoms 1024
// bytes apart, swizzle mode 1 (128 B); a K step inside the 128-byte row
// advances the start address (the swizzle is a function of the address)
__device__ __forceinline__ unsigned long long wg_desc(unsigned addr) {
    return (unsigned long long)((addr & 0x3FFFF) >> 4) | (1ull << 16) | ((unsigned long long)(1024 >> 4) << 32) | (1ull << 62);
}
__device__ __forceinline__ void wg_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void wg_commit() { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }
template <int N> __device__ __forceinline__ void wg_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;" :: "n"(N) : "memory"); }
// shared memory written by cp.async (the generic proxy) is read by wgmma
// (the async proxy): each writing thread fences before the barrier
__device__ __forceinline__ void fence_async_smem() { asm volatile("fence.proxy.async.shared::cta;" ::: "memory"); }
// keeps the compiler from moving accumulator reads or writes across the
// asynchronous MMAs (which it cannot see)
template <typename ACC, int NA> __device__ __forceinline__ void wg_hold(ACC (&d)[NA]) {
#pragma unroll
    for (int i = 0; i < NA; i++) {
        if constexpr (sizeof(ACC) == 4 && int_acc<ACC>::v) asm volatile("" : "+r"(d[i]) :: "memory");
        else asm volatile("" : "+f"(d[i]) :: "memory");
    }
}
// one m64n64k32 wgmma of the warpgroup: d += A(64×32) · B(64×32)ᵀ, or
// d = A·Bᵀ with acc = 0 (wgmma's scale-d predicate: a tile's first MMA
// needs no zeroed accumulators)
__device__ __forceinline__ void wgmma64(int (&d)[32], unsigned long long da, unsigned long long db, int acc = 1) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k32.s32.s8.s8 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p;\n}\n"
        : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3]), "+r"(d[4]), "+r"(d[5]), "+r"(d[6]), "+r"(d[7]), "+r"(d[8]), "+r"(d[9]), "+r"(d[10]), "+r"(d[11]), "+r"(d[12]), "+r"(d[13]), "+r"(d[14]), "+r"(d[15]), "+r"(d[16]), "+r"(d[17]), "+r"(d[18]), "+r"(d[19]), "+r"(d[20]), "+r"(d[21]), "+r"(d[22]), "+r"(d[23]), "+r"(d[24]), "+r"(d[25]), "+r"(d[26]), "+r"(d[27]), "+r"(d[28]), "+r"(d[29]), "+r"(d[30]), "+r"(d[31]) : "l"(da), "l"(db), "r"(acc));
}
__device__ __forceinline__ void wgmma64(float (&d)[32], unsigned long long da, unsigned long long db, int acc = 1) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k32.f32.e4m3.e4m3 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, 1;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]) : "l"(da), "l"(db), "r"(acc));
}

// m64n128k32: d (64 per thread: channel tiles j < 16 of 8) += A(64×32) · B(128×32)ᵀ, for ignp's 128-channel tiles
__device__ __forceinline__ void wgmma128(int (&d)[64], unsigned long long da, unsigned long long db, int acc = 1) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k32.s32.s8.s8 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p;\n}\n"
        : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3]), "+r"(d[4]), "+r"(d[5]), "+r"(d[6]), "+r"(d[7]), "+r"(d[8]), "+r"(d[9]), "+r"(d[10]), "+r"(d[11]), "+r"(d[12]), "+r"(d[13]), "+r"(d[14]), "+r"(d[15]), "+r"(d[16]), "+r"(d[17]), "+r"(d[18]), "+r"(d[19]), "+r"(d[20]), "+r"(d[21]), "+r"(d[22]), "+r"(d[23]), "+r"(d[24]), "+r"(d[25]), "+r"(d[26]), "+r"(d[27]), "+r"(d[28]), "+r"(d[29]), "+r"(d[30]), "+r"(d[31]), "+r"(d[32]), "+r"(d[33]), "+r"(d[34]), "+r"(d[35]), "+r"(d[36]), "+r"(d[37]), "+r"(d[38]), "+r"(d[39]), "+r"(d[40]), "+r"(d[41]), "+r"(d[42]), "+r"(d[43]), "+r"(d[44]), "+r"(d[45]), "+r"(d[46]), "+r"(d[47]), "+r"(d[48]), "+r"(d[49]), "+r"(d[50]), "+r"(d[51]), "+r"(d[52]), "+r"(d[53]), "+r"(d[54]), "+r"(d[55]), "+r"(d[56]), "+r"(d[57]), "+r"(d[58]), "+r"(d[59]), "+r"(d[60]), "+r"(d[61]), "+r"(d[62]), "+r"(d[63]) : "l"(da), "l"(db), "r"(acc));
}
__device__ __forceinline__ void wgmma128(float (&d)[64], unsigned long long da, unsigned long long db, int acc = 1) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k32.f32.e4m3.e4m3 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p, 1, 1;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]) : "l"(da), "l"(db), "r"(acc));
}
// wgmmaN is the m64nBNk32 wgmma of a BN-channel tile
template <int BN, typename ACC> __device__ __forceinline__ void wgmmaN(ACC (&d)[BN / 2], unsigned long long da, unsigned long long db, int acc = 1) {
    if constexpr (BN == 64) wgmma64(d, da, db, acc);
    else wgmma128(d, da, db, acc);
}

// ---- the pieces of ignw_body and ignp_body (wgmmap.cu)

// WRows: the input rows of a tile's pixels m0 + r0 + 32q (q < 4) that
// thread r0 loads: the top-left input pixel's coordinates and address at
// channel 0 (pixels past M get a row that is never in bounds). The
// coordinates of q > 0 follow from q = 0's by adding 32 pixels (two
// divisions per tile instead of eight: the divisions by OW and OH were
// most of a 3×3 tile's index arithmetic).
struct WRows {
    const unsigned char* px[4];
    int ih[4], iw[4];
    bool fast; // the persistent kernels' pixel-row tile (wg_load_pix): px[0] is its A rows' start, wb its B rows'
    // the persistent kernels' B rows of a tile whose channels lie inside
    // Cout: thread (r0, cc)'s first row at w + (n0 + r0)·Kp + cc·16 (null:
    // wg_load's per-row form)
    const unsigned char* wb;
};
__device__ __forceinline__ void wg_rows(WRows& rw, const unsigned char* x, i64 m0, int r0, i64 M, int C, int H, int W, int OH, int OW,
    int sh, int sw, int ph, int pw) {
    const i64 m = m0 + r0;
    int ow = 0, oh = 0;
    i64 n = m;                                // 1×1 stride-1 unpadded convs come as N = pixels (OH = OW = 1)
    const bool pix = OH == 1 && OW == 1;
    if (pix) { // row q is pixel m + 32q: one multiply each, not the general form's 64-bit chain (~28 instructions a row)
#pragma unroll
        for (int q = 0; q < 4; q++) {
            const i64 mq = m + 32 * q;
            const bool ok = mq < M;
            rw.ih[q] = ok ? 0 : -(1 << 29); rw.iw[q] = 0;
            rw.px[q] = ok ? x + mq * C : x;
        }
        return;
    }
    if (m < M) {
        const i64 t = qdiv(m, OW);
        ow = (int)(m - t * OW);
        n = qdiv(t, OH);
        oh = (int)(t - n * OH);
    }
    const int a = pix ? 0 : 32 / OW, b = pix ? 0 : 32 - a * OW; // 32 pixels: a rows and b columns on
#pragma unroll
    for (int q = 0; q < 4; q++) {
        if (q > 0) {
            if (pix) n += 32;
            else {
                ow += b; oh += a;
                if (ow >= OW) { ow -= OW; oh++; }
                while (oh >= OH) { oh -= OH; n++; }
            }
        }
        rw.ih[q] = -(1 << 29); rw.iw[q] = 0; rw.px[q] = x;
        if (m + 32 * q < M) {
            const int ih = oh * sh - ph, iw = ow * sw - pw;
            rw.ih[q] = ih; rw.iw[q] = iw;
            rw.px[q] = x + ((n * H + ih) * (i64)W + iw) * C;
        }
    }
}
// WTap: thread cc's position in the reduction at the current step, its
// 16 bytes at k = kt·128 + cc·16 = (kh·KW + kw)·C + c, advanced 128 bytes
// per step without a division (128 = qc·C + rc).
struct WTap {
    int c, kh, kw, qc, rc;
    // packed: the first step's tap and step constants as c | kh << 8 |
    // kw << 16 | qc << 20 | rc << 24 (k < 128 bounds c, kh, kw ≤ 7, rc ≤
    // 128; qc ≤ 8), computed once per block with init's divisions;
    // init_packed sets them per tile with none (ncu: init's divisions ran
    // per tile in ignq_* on res2's 64-channel 1×1s)
    __device__ __forceinline__ static unsigned packed(int cc, int C, int KW) {
        WTap t;
        t.init(cc, C, KW);
        return (unsigned)t.c | (unsigned)t.kh << 8 | (unsigned)t.kw << 16 | (unsigned)t.qc << 20 | (unsigned)t.rc << 24;
    }
    __device__ __forceinline__ void init_packed(unsigned p) {
        c = p & 0xff; kh = (p >> 8) & 0xff; kw = (p >> 16) & 0xf; qc = (p >> 20) & 0xf; rc = p >> 24;
    }
    // no division where C ≥ 128 (every step's 16 bytes of the first tap
    // then sit in one tap): the persistent kernels call this per tile, so
    // that no first-step state stays live through their epilogues
    __device__ __forceinline__ void init(int cc, int C, int KW) {
        const int k = cc * 16;
        if (C >= IG_SB) {
            c = k; kh = 0; kw = 0;
            qc = C == IG_SB; rc = IG_SB - qc * C;
            return;
        }
        // C a power of two (a kernel-width-expanded stem's 32 bytes) and KW
        // 1 (the same stem): shifts and no division
        const bool p2 = (C & (C - 1)) == 0;
        int lc; // log2(C) where C is a power of two: its highest set bit
        asm("bfind.u32 %0, %1;" : "=r"(lc) : "r"(C));
        const int r = p2 ? k >> lc : k / C;
        c = k - r * C;
        kh = KW == 1 ? r : r / KW; kw = r - kh * KW;
        qc = p2 ? IG_SB >> lc : IG_SB / C; rc = IG_SB - qc * C;
    }
    __device__ __forceinline__ void next(int C, int KW) {
        c += rc;
        int t = qc;
        if (c >= C) { c -= C; t++; }
        kw += t;
        while (kw >= KW) { kw -= KW; kh++; }
    }
};
// wg_load_bbase copies thread (r0, cc)'s B rows r0 + 32q (q < BN/32) of
// step kt from one base per tile, wb = w + (n0 + r0)·Kp + cc·16, for a tile
// whose channels lie inside Cout (ncu, res4's 3×3: the per-row form was half
// the loader); a zero fill's address is w, whose rows 96 on exist (Cout ≥ BN)
template <int BN>
__device__ __forceinline__ void wg_load_bbase(const unsigned char* __restrict__ w, const unsigned char* wb, unsigned bs, int kt,
    bool kok, int cc, int r0, int Kp) {
    const unsigned char* b = kok ? wb + kt * IG_SB : w;
    const unsigned sw = (cc ^ (r0 & 7)) << 4; // rows r0 + 32q share r0's swizzle
    const int rb = 32 * Kp;
#pragma unroll
    for (int q = 0; q < BN / 32; q++) cp16(bs + (r0 + 32 * q) * IG_SB + sw, b + q * rb, kok ? 16 : 0);
}

// wg_load issues thread (r0, cc)'s cp.async copies of reduction step kt
// (at tap tp) into the stage at as: A rows r0 + 32q, B rows r0 + 32q
// (q < BN/32), 16 bytes each, 128-byte swizzled
template <int BN = IG_BN>
__device__ __forceinline__ void wg_load(const unsigned char* __restrict__ x, const unsigned char* __restrict__ w, const WRows& rw,
    const WTap& tp, unsigned as, int kt, int cc, int r0, int n0, int C, int H, int W, int dh, int dw, int Kp, int K, int Cout) {
    const unsigned bs = as + IG_BM * IG_SB;
    const int k = kt * IG_SB + cc * 16;
    const bool kok = k < K;
    if (kt * IG_SB + (cc >> 1) * 32 >= K) return; // a 32-byte K step wholly past K: never read
    const int dy = tp.kh * dh, dx = tp.kw * dw;
    const int off = (dy * W + dx) * C + tp.c;  // from the row's top-left pixel
#pragma unroll
    for (int q = 0; q < 4; q++) {
        const int row = r0 + 32 * q;
        const int ih = rw.ih[q] + dy, iw = rw.iw[q] + dx;
        const bool ok = kok && (unsigned)ih < (unsigned)H && (unsigned)iw < (unsigned)W;
        cp16(as + row * IG_SB + ((cc ^ (row & 7)) << 4), ok ? rw.px[q] + off : x, ok ? 16 : 0);
    }
    if (rw.wb) {
        wg_load_bbase<BN>(w, rw.wb, bs, kt, kok, cc, r0, Kp);
        return;
    }
#pragma unroll
    for (int q = 0; q < BN / 32; q++) {
        const int row = r0 + 32 * q, co = n0 + row;
        bool ok = kok && co < Cout;
        const unsigned char* src = ok ? w + (i64)co * Kp + k : w;
        cp16(bs + row * IG_SB + ((cc ^ (row & 7)) << 4), src, ok ? 16 : 0);
    }
}
// wg_load_pix is wg_load for a tile of pixel rows wholly inside the
// problem (a 1×1 stride-1 unpadded conv launched as N = pixels, m0 + 128 ≤
// M, n0 + BN ≤ Cout: the persistent kernels check per tile): thread (r0,
// cc)'s A rows start at xa = x + (m0 + r0)·C + cc·16 and its B rows at wb =
// w + (n0 + r0)·Kp + cc·16, rows 32 apart are constant offsets, and only
// the reduction's tail is out of bounds. ncu on res2's 1×1 64→256 (ignr):
// the general form took 225 of a tile's 854 instructions per warp (64-bit
// bounds tests and a select per row, the tap's arithmetic).
template <int BN = IG_BN>
__device__ __forceinline__ void wg_load_pix(const unsigned char* __restrict__ x, const unsigned char* __restrict__ w,
    const unsigned char* xa, const unsigned char* wb, unsigned as, int kt, int cc, int r0, int C, int Kp, int K) {
    if (kt * IG_SB + (cc >> 1) * 32 >= K) return; // a 32-byte K step wholly past K: never read
    const bool kok = kt * IG_SB + cc * 16 < K;
    // a zero fill reads nothing, but its address stays a valid one: the
    // tensor's start, whose rows 96 on exist (M ≥ 128)
    const unsigned char* a = kok ? xa + kt * IG_SB : x;
    const unsigned sw = (cc ^ (r0 & 7)) << 4; // rows r0 + 32q share r0's swizzle
    const int ra = 32 * C;                    // 32 rows
#pragma unroll
    for (int q = 0; q < 4; q++) cp16(as + (r0 + 32 * q) * IG_SB + sw, a + q * ra, kok ? 16 : 0);
    wg_load_bbase<BN>(w, wb, as + IG_BM * IG_SB, kt, kok, cc, r0, Kp);
}

// wg_mma_step issues warpgroup wg's MMAs of the stage at as (kbytes of
// the reduction left, so steps past K are skipped) and commits them
// (first: the tile's first step, whose first MMA overwrites d)
template <int BN = IG_BN, typename ACC>
__device__ __forceinline__ void wg_mma_step(ACC (&d)[BN / 2], unsigned as, int wg, int kbytes, bool first = false) {
    const unsigned bs = as + IG_BM * IG_SB, aw = as + wg * 64 * IG_SB;
    wg_hold(d);
    wg_fence();
#pragma unroll
    for (int ks = 0; ks < IG_SB / 32; ks++) {
        if (ks * 32 >= kbytes) break;
        wgmmaN<BN>(d, wg_desc(aw + ks * 32), wg_desc(bs + ks * 32), ks > 0 || !first);
    }
    wg_commit();
}

// ignw_body: F 2 E4M3 (float accumulators), 3 int8 (int); ST stages of
// IGW_STAGE bytes after the dynamic shared memory's first 1024-byte
// boundary.
template <int F, typename ACC, typename OUT, int ST>
__device__ __forceinline__ void ignw_body(const unsigned char* __restrict__ x, const unsigned char* __restrict__ w,
    OUT* __restrict__ y, int N, int C, int H, int W, int OH, int OW, int KW, int sh, int sw, int ph, int pw,
    int dh, int dw, int Kp, int K, int Cout, const float* ms, const float* bias, const void* resid, int rfmt, float zs, int zz,
    int ak, float aa, float ab, float ys, float yr, int zp, float vlo, float vhi) {
    constexpr int KS = IG_SB;                 // reduction elements (bytes) per stage
    extern __shared__ __align__(16) unsigned char smd[];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const i64 M = (i64)N * OH * OW;
    const int nN = (Cout + IG_BN - 1) / IG_BN; // channel tiles fastest, as ign_body
    // one channel tile (a stem's 64 channels): no division per block (ncu on
    // ResNet-50's stem, one tile a block: the block's index arithmetic was
    // most of its ~1120 instructions per warp)
    const i64 m0 = nN == 1 ? (i64)blockIdx.x * IG_BM : (i64)(blockIdx.x / nN) * IG_BM;
    const int n0 = nN == 1 ? 0 : (int)(blockIdx.x % nN) * IG_BN;
    const int cc = tid & 7, r0 = tid >> 3;    // chunk column; rows r0 + 32q
    const unsigned sraw = smem_addr(smd), sbase = (sraw + 1023) & ~1023u;
    WRows rw;
    wg_rows(rw, x, m0, r0, M, C, H, W, OH, OW, sh, sw, ph, pw);
    rw.wb = n0 + IG_BN <= Cout ? w + (i64)(n0 + r0) * Kp + cc * 16 : nullptr;
    WTap tp;
    tp.init(cc, C, KW);
    auto load = [&](int kt, int stage) { // kt = 0, 1, 2, ... in order: tp follows
        wg_load(x, w, rw, tp, sbase + stage * IGW_STAGE, kt, cc, r0, n0, C, H, W, dh, dw, Kp, K, Cout);
        tp.next(C, KW);
    };
    ACC d[32];
#pragma unroll
    for (int i = 0; i < 32; i++) d[i] = 0;
    const int wg = warp >> 2;                 // warpgroup: rows 64·wg .. 64·wg + 63 of the tile
    const int nk = (K + KS - 1) / KS;
    // With 3+ stages one step's MMAs stay in flight while the next step's
    // are issued (wait_group 1): a step's loads then go LA = ST − 2 stages
    // ahead, into the stage whose MMAs every warpgroup finished before the
    // step's barrier. With 2 stages each step waits for its MMAs (LA = 1).
    constexpr int LA = ST >= 3 ? ST - 2 : 1;
    // a residual of codes goes to shared memory after the stages with the
    // first stage's loads (ign_prefetch_codes)
    const unsigned rsm = resid && rfmt >= 3 ? sbase + ST * IGW_STAGE : 0;
    if (rsm) ign_prefetch_codes(rsm, resid, tid, m0, n0, M, Cout);
#pragma unroll
    for (int s = 0; s < LA; s++) {
        if (s < nk) load(s, s);
        cp_commit();
    }
    for (int kt = 0; kt < nk; kt++) {
        cp_wait<LA - 1>();
        fence_async_smem();
        __syncthreads();
        if (kt + LA < nk) load(kt + LA, (kt + LA) % ST);
        cp_commit();
        wg_mma_step(d, sbase + (kt % ST) * IGW_STAGE, wg, K - kt * KS);
        if constexpr (ST >= 3) wg_wait<1>();
        else wg_wait<0>();
        wg_hold(d);
    }
    wg_wait<0>();
    wg_hold(d);
    cp_wait<0>();
    __syncthreads();
    // accumulators (per warp: rows 16·(warp % 4) + gid (+8) of the
    // warpgroup's 64, channel tiles j of 8: 2·tig, 2·tig + 1) → Cs
    ACC* Cs = (ACC*)(smd + (sbase - sraw));
    const int gid = lane >> 2, tig = lane & 3, rr = wg * 64 + (warp & 3) * 16 + gid;
#pragma unroll
    for (int j = 0; j < 8; j++) {
        const int c = j * 8 + tig * 2;
        *(ku2*)(Cs + rr * IGN_CS + c) = ku2{abits(d[4 * j]), abits(d[4 * j + 1])};
        *(ku2*)(Cs + (rr + 8) * IGN_CS + c) = ku2{abits(d[4 * j + 2]), abits(d[4 * j + 3])};
    }
    ign_epilogue_cs<ACC, OUT, true>(Cs, tid, m0, n0, M, Cout, y, ms, bias, resid, rfmt, zs, zz, ak, aa, ab, ys, yr, zp, vlo, vhi, rsm);
}
// ignw_*: 4 stages (97 KB of dynamic shared memory, + 8 KB of residual
// codes), 2 blocks per SM; ignw3_*: 2 stages (49 KB + 8 KB), at most 85
// registers, 3 blocks per SM.
#define IGW(NAME, BLOCKS, ST, F, ACC, OUT)                                                           \
extern "C" __global__ void __launch_bounds__(256, BLOCKS) NAME(const unsigned char* __restrict__ x,  \
    const unsigned char* __restrict__ w, OUT* __restrict__ y, int N, int C, int H, int W, int OH,    \
    int OW, int KW, int sh, int sw, int ph, int pw, int dh, int dw, int Kp, int K, int Cout,          \
    const float* ms, const float* bias, const void* resid, int rfmt, float zs, int zz, int ak, float aa, float ab,     \
    float ys, float yr, int zp, float vlo, float vhi) { pdl_enter();                                                                    \
    ignw_body<F, ACC, OUT, ST>(x, w, y, N, C, H, W, OH, OW, KW, sh, sw, ph, pw, dh, dw, Kp, K, Cout, \
        ms, bias, resid, rfmt, zs, zz, ak, aa, ab, ys, yr, zp, vlo, vhi);                                      \
}
IGW(ignw_i8_f32, 2, 4, 3, int, float)
IGW(ignw_i8_16, 2, 4, 3, int, u16)
IGW(ignw_i8_i8, 2, 4, 3, int, signed char)
IGW(ignw_i8_u8, 2, 4, 3, int, u8q)
IGW(ignw_e4m3_f32, 2, 4, 2, float, float)
IGW(ignw_e4m3_16, 2, 4, 2, float, u16)
IGW(ignw_e4m3_e4m3, 2, 4, 2, float, u8)
IGW(ignw3_i8_f32, 3, 2, 3, int, float)
IGW(ignw3_i8_16, 3, 2, 3, int, u16)
IGW(ignw3_i8_i8, 3, 2, 3, int, signed char)
IGW(ignw3_i8_u8, 3, 2, 3, int, u8q)
IGW(ignw3_e4m3_f32, 3, 2, 2, float, float)
IGW(ignw3_e4m3_16, 3, 2, 2, float, u16)
IGW(ignw3_e4m3_e4m3, 3, 2, 2, float, u8)
