// Helpers of the NHWC implicit-GEMM kernels (igemm.cu's ign_*, wgmma.cu's
// ignw_*): tile geometry, cp.async and ldmatrix wrappers, the epilogue
// (ign_epilogue) with its residual reads, requantization and stores.
// NVRTC compiles each of those modules as common.cuh + this + its source.

struct __align__(16) ki4 { int x, y, z, w; };
struct __align__(16) ku4 { unsigned x, y, z, w; };
struct __align__(8) ku2 { unsigned x, y; };
struct __align__(8) kf2 { float x, y; };

#define IG_BM 128
#define IG_BN 64
#define IG_SB 128        // bytes of the reduction per step and row
#define IG_RB 132        // shared row: IG_SB + 4 (33 words: the gathered stores do not conflict)
#define IG_CS (IG_BM + 4) // staging row of the epilogue (floats or ints)


#define IGN_RB 144                          // shared row: 128 bytes + 16 (16-byte aligned, conflict-free fragment reads)
#define IGN_ST 3                            // pipeline stages
#define IGN_STAGE ((IG_BM + IG_BN) * IGN_RB)
#define IGN_CS (IG_BN + 8)                  // epilogue staging row (ACC elements): 8-byte fragment stores conflict-free
// the epilogue's rows and channels of thread tid (ign_epilogue_cs): rows
// tid / 8 + 32q (q < IGN_NQ), channels (tid % 8)·8 .. + 7 of the tile
#define IGN_NQ (IG_BM * IG_BN / 8 / 256)

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

// 8 bytes global → shared, asynchronously (cp.async.ca takes 4, 8 or 16;
// .cg only 16); n = 0 writes zeros (src unread)
__device__ __forceinline__ void cp8(unsigned dst, const void* src, int n) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;" :: "r"(dst), "l"(src), "r"(n) : "memory");
}
// PRMT: bytes of {b, a} picked by sel's nibbles (__byte_perm, so that a
// constant sel stays an immediate)
__device__ __forceinline__ unsigned prmt(unsigned a, unsigned b, unsigned sel) { return __byte_perm(a, b, sel); }
// two residual codes (rfmt >= 3), bytes lo and lo + 1 of word → their
// values a, b, as zcode computes them. Integer codes: a byte moved by PRMT
// into the low mantissa of 1.5·2²³ is 1.5·2²³ + byte exactly (int8 codes
// biased by 128 with an XOR), and subtracting 1.5·2²³ + bias + zz leaves
// the small integer code − zz exactly: one PRMT and one FADD per code
// instead of a byte extraction's shift, mask and sign extension.
// resint2: the integer case, wd the word with int8 codes already biased
// (XOR 0x80808080) and off = 1.5·2²³ + bias + zz
// (resint1: one code's code − zz, unscaled; the fast epilogue scales it in an FFMA)
__device__ __forceinline__ float resint1(unsigned wd, int lo, float off) {
    return __fsub_rn(__uint_as_float(prmt(wd, 0x4B400000u, 0x7650u | lo)), off);
}
__device__ __forceinline__ void resint2(unsigned wd, int lo, float off, float zs, float& a, float& b) {
    a = __fmul_rn(resint1(wd, lo, off), zs);
    b = __fmul_rn(resint1(wd, lo + 1, off), zs);
}
// rese4m3x2: the E4M3 case, both codes of pair in one conversion
__device__ __forceinline__ void rese4m3x2(u16 pair, float zs, float& a, float& b) {
    const unsigned h = e4m3x2_h2(pair);
    a = __fmul_rn(h2f((u16)(h & 0xffff)), zs);
    b = __fmul_rn(h2f((u16)(h >> 16)), zs);
}
__device__ __forceinline__ void rescodes2(unsigned word, int lo, int rfmt, float zs, int zz, float& a, float& b) {
    if (rfmt <= 4) {
        const float off = (float)(12582912 + (rfmt == 3 ? 128 : 0) + zz); // exact: |zz| < 2⁸
        resint2(rfmt == 3 ? word ^ 0x80808080u : word, lo, off, zs, a, b);
    } else if (rfmt == 5) {
        rese4m3x2((u16)(word >> (8 * lo)), zs, a, b);
    } else { // E5M2: the high byte of an f16
        a = __fmul_rn(h2f((u16)(((word >> (8 * lo)) & 0xff) << 8)), zs);
        b = __fmul_rn(h2f((u16)(((word >> (8 * lo + 8)) & 0xff) << 8)), zs);
    }
}
// 8 residual codes (one 8-byte word q) → their values (rescodes2)
__device__ __forceinline__ void rescodes8(ku2 q, int rfmt, float zs, int zz, float* v) {
#pragma unroll
    for (int p = 0; p < 4; p++) rescodes2(p < 2 ? q.x : q.y, (p & 1) * 2, rfmt, zs, zz, v[2 * p], v[2 * p + 1]);
}
// 8 float or 16-bit residual values at o (o % 8 == 0), as ldres reads one
// (codes go through rescodes8)
__device__ __forceinline__ void ldres8(const void* r, i64 o, int rfmt, float zs, int zz, float* v) {
    if (rfmt == 0) {
        const ku4* p = (const ku4*)((const float*)r + o);
        ku4 a = p[0], b = p[1];
        v[0] = __uint_as_float(a.x); v[1] = __uint_as_float(a.y); v[2] = __uint_as_float(a.z); v[3] = __uint_as_float(a.w);
        v[4] = __uint_as_float(b.x); v[5] = __uint_as_float(b.y); v[6] = __uint_as_float(b.z); v[7] = __uint_as_float(b.w);
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

// qcodew is an integer code from v clamped to [vlo, vhi] first: the host
// (backend/cuda codeClamp) picks vlo as the least float whose quotient
// rounds to the lowest code and vhi as the greatest that rounds to the
// highest, so the clamped quotient is the code without qdivq's ±2⁶⁰ clamp
// and qbyte's (the quotient is monotone in v); NaN goes to vlo (fmaxf), the
// lowest code, as f2i8 gives NaN.
// The code is the low byte of the result (0x4B400000's low byte is 0;
// pack4 takes it).
__device__ __forceinline__ unsigned qcodew(float v, float ys, float yr, int zp, float vlo, float vhi) {
    float c = fminf(fmaxf(v, vlo), vhi);
    float q0 = __fmul_rn(c, yr);
    float q = __fmaf_rn(__fmaf_rn(-ys, q0, c), yr, q0);
    return (unsigned)(__float_as_int(__fadd_rn(q, 12582912.f)) + zp);
}
// the low bytes of a, b, c, d as one word (a lowest): three PRMTs
__device__ __forceinline__ unsigned pack4(unsigned a, unsigned b, unsigned c, unsigned d) {
    return prmt(prmt(a, b, 0x3340u), prmt(c, d, 0x3340u), 0x5410u);
}
__device__ __forceinline__ unsigned qcode(u16*, float v, float, float, int fmt, float, float) { return fmt == 1 ? f2bf(v) : f2h(v); }
// e4m3_relu: an E4M3 output after a ReLU, which qdivr0 applies in its clamp
template <int AK, typename OUT> struct e4m3_relu { static constexpr bool v = AK == A_RELU && is_e4m3<OUT>::v; };
// RELU: E4M3 codes of ReLU(v) (qdivr0), the activation not applied before.
// FAST: v in code units already (A_FAST), converted as it is (E4M3) or by
// qfast (integer codes, vlo and vhi its bounds).
template <typename OUT, bool RELU = false, bool FAST = false> __device__ __forceinline__ void store8(OUT* y, i64 o, const float* v, float ys, float yr, int zp, float vlo, float vhi) {
    if constexpr (FAST && is_e4m3<OUT>::v) {
        *(ku2*)((u8*)y + o) = ku2{e4m3x2(v[0], v[1]) | (e4m3x2(v[2], v[3]) << 16), e4m3x2(v[4], v[5]) | (e4m3x2(v[6], v[7]) << 16)};
    } else if constexpr (FAST) {
        unsigned c[8];
#pragma unroll
        for (int j = 0; j < 8; j++) c[j] = qfast(v[j], vlo, vhi);
        *(ku2*)((u8*)y + o) = ku2{pack4(c[0], c[1], c[2], c[3]), pack4(c[4], c[5], c[6], c[7])};
    } else if constexpr (is_e4m3<OUT>::v) {
        unsigned w[4];
#pragma unroll
        for (int j = 0; j < 4; j++)
            w[j] = RELU ? e4m3x2(qdivr0(v[2 * j], ys, yr), qdivr0(v[2 * j + 1], ys, yr)) : e4m3x2(qdivr(v[2 * j], ys, yr), qdivr(v[2 * j + 1], ys, yr));
        *(ku2*)((u8*)y + o) = ku2{w[0] | (w[1] << 16), w[2] | (w[3] << 16)};
    } else if constexpr (sizeof(OUT) == 1) { // int8/uint8 codes (the range is in vlo, vhi)
        unsigned c[8];
#pragma unroll
        for (int j = 0; j < 8; j++) c[j] = qcodew(v[j], ys, yr, zp, vlo, vhi);
        *(ku2*)((u8*)y + o) = ku2{pack4(c[0], c[1], c[2], c[3]), pack4(c[4], c[5], c[6], c[7])};
    } else if constexpr (sizeof(OUT) == 2) {
        ku4 q;
        q.x = qcode(y, v[0], ys, yr, zp, vlo, vhi) | (qcode(y, v[1], ys, yr, zp, vlo, vhi) << 16);
        q.y = qcode(y, v[2], ys, yr, zp, vlo, vhi) | (qcode(y, v[3], ys, yr, zp, vlo, vhi) << 16);
        q.z = qcode(y, v[4], ys, yr, zp, vlo, vhi) | (qcode(y, v[5], ys, yr, zp, vlo, vhi) << 16);
        q.w = qcode(y, v[6], ys, yr, zp, vlo, vhi) | (qcode(y, v[7], ys, yr, zp, vlo, vhi) << 16);
        *(ku4*)(y + o) = q;
    } else {
        ku4* p = (ku4*)(y + o);
        p[0] = ku4{__float_as_uint(v[0]), __float_as_uint(v[1]), __float_as_uint(v[2]), __float_as_uint(v[3])};
        p[1] = ku4{__float_as_uint(v[4]), __float_as_uint(v[5]), __float_as_uint(v[6]), __float_as_uint(v[7])};
    }
}


// ign_rows is ign_epilogue's element loop for activation AK (act_k): each
// thread's IG_BM·IG_BN/8/256 rows of 8 channels, straight-line code.
// Scales, biases and residual values are always applied: a layer without
// them has the exact identities (×1, + −0), so that the element loop has
// no test per element.
// FAST (A_FAST, 8-bit outputs): sc, bi and the residual values are in code
// units (the host's), one FFMA and one add per element; AK is A_NONE or,
// for E4M3, A_CLIP (clampn to vlo, vhi).
template <int AK, typename ACC, typename OUT, bool FAST = false>
__device__ __forceinline__ void ign_rows(const ACC* Cs, int tid, int cg, int co, i64 m0, i64 M, int Cout, OUT* __restrict__ y,
    const float* sc, const float* bi, float (*rvs)[8], int ak, float aa, float ab, float ys,
    float yr, int zp, float vlo, float vhi) {
#pragma unroll
    for (int q = 0; q < IGN_NQ; q++) {
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
            if constexpr (FAST) {
                t = __fadd_rn(__fmaf_rn(t, sc[j], bi[j]), rvs[q][j]);
                v[j] = AK == A_CLIP ? clampn(t, vlo, vhi) : t;
                continue;
            }
            t = __fadd_rn(__fadd_rn(__fmul_rn(t, sc[j]), bi[j]), rvs[q][j]);
            v[j] = e4m3_relu<AK, OUT>::v ? t : act_k<AK>(t, ak, aa, ab); // E4M3 ReLU: in qdivr0 (store8)
        }
        store8<OUT, e4m3_relu<AK, OUT>::v && !FAST, FAST>(y, o, v, ys, yr, zp, vlo, vhi);
    }
}

__device__ __forceinline__ unsigned abits(int v) { return (unsigned)v; }
__device__ __forceinline__ unsigned abits(float v) { return __float_as_uint(v); }

template <typename ACC, typename OUT, bool FASTOK = false>
__device__ __forceinline__ void ign_epilogue_cs(const ACC* Cs, int tid, i64 m0, int n0, i64 M, int Cout, OUT* __restrict__ y,
    const float* ms, const float* bias, const void* resid, int rfmt, float zs, int zz, int ak, float aa, float ab, float ys,
    float yr, int zp, float vlo, float vhi, unsigned rsm = 0);

// ign_prefetch_codes starts copying the residual codes that thread tid's
// epilogue will read (8 bytes per row, rfmt >= 3) into shared memory at
// rsm (IGN_NQ·256·8 bytes): the caller issues it with its first stage's
// loads, so that the residual's DRAM latency overlaps the main loop's
// instead of following it. Each thread reads back only what it copied.
__device__ __forceinline__ void ign_prefetch_codes(unsigned rsm, const void* resid, int tid, i64 m0, int n0, i64 M, int Cout) {
    const int co = n0 + (tid % (IG_BN / 8)) * 8;
#pragma unroll
    for (int q = 0; q < IGN_NQ; q++) {
        const i64 m = m0 + (tid + 256 * q) / (IG_BN / 8);
        const bool ok = m < M && co < Cout;
        cp8(rsm + (q * 256 + tid) * 8, ok ? (const u8*)resid + m * Cout + co : (const u8*)resid, ok ? 8 : 0);
    }
}

// ign_epilogue is the NHWC implicit GEMMs' epilogue: the 128×64 tile's
// accumulators (mma fragment layout) through shared memory, pixel-major,
// then 8 channels per thread along the output row: scale, bias, residual,
// activation, store (16-byte vectors).
template <typename ACC, typename OUT>
__device__ __forceinline__ void ign_epilogue(ACC (&acc)[2][4][4], unsigned char* smd, int tid, int wm, int wn, int gid,
    int tig, i64 m0, int n0, i64 M, int Cout, OUT* __restrict__ y, const float* ms, const float* bias, const void* resid,
    int rfmt, float zs, int zz, int ak, float aa, float ab, float ys, float yr, int zp, float vlo, float vhi) {
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
    ign_epilogue_cs(Cs, tid, m0, n0, M, Cout, y, ms, bias, resid, rfmt, zs, zz, ak, aa, ab, ys, yr, zp, vlo, vhi);
}

// ign_epilogue_cs is ign_epilogue after the accumulators are staged in Cs
// ([IG_BM][IGN_CS], pixel-major; the barrier is its first step).
//
// rsm != 0: the residual's codes were copied to shared memory there by
// ign_prefetch_codes (and the copies waited for).
// FASTOK: the kernel takes the fast epilogue (A_FAST: wgmma.cu's, 8-bit
// outputs); others do not compile it.
template <typename ACC, typename OUT, bool FASTOK>
__device__ __forceinline__ void ign_epilogue_cs(const ACC* Cs, int tid, i64 m0, int n0, i64 M, int Cout, OUT* __restrict__ y,
    const float* ms, const float* bias, const void* resid, int rfmt, float zs, int zz, int ak, float aa, float ab, float ys,
    float yr, int zp, float vlo, float vhi, unsigned rsm) {
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
        bi[j] = bias ? bias[co + j] : -0.f;
    }
    // every row's residual is loaded before the first store: the stores
    // may alias them for the compiler, which would otherwise serialize four
    // DRAM round trips per thread
    // (codes: every row's word first, then the decoding, so that the
    // loads are not serialized behind each row's branch)
    constexpr int NQ = IGN_NQ;
    float rvs[NQ][8];
#pragma unroll
    for (int q = 0; q < NQ; q++)
#pragma unroll
        for (int j = 0; j < 8; j++) rvs[q][j] = -0.f;
    if (resid && rfmt >= 3) {
        ku2 rq[NQ];
#pragma unroll
        for (int q = 0; q < NQ; q++) {
            const i64 m = m0 + (tid + 256 * q) / (IG_BN / 8);
            if (rsm) asm volatile("ld.shared.v2.u32 {%0, %1}, [%2];" : "=r"(rq[q].x), "=r"(rq[q].y) : "r"(rsm + (q * 256 + tid) * 8));
            else rq[q] = m < M ? *(const ku2*)((const u8*)resid + m * Cout + co) : ku2{0, 0};
        }
#pragma unroll
        for (int q = 0; q < NQ; q++) rescodes8(rq[q], rfmt, zs, zz, rvs[q]);
    } else if (resid) {
#pragma unroll
        for (int q = 0; q < NQ; q++) {
            i64 m = m0 + (tid + 256 * q) / (IG_BN / 8);
            if (m < M) ldres8(resid, m * Cout + co, rfmt, zs, zz, rvs[q]);
        }
    }
    if constexpr (FASTOK && sizeof(OUT) == 1) {
        if (ak & A_FAST) {
            if (ak == (A_FAST | A_CLIP)) ign_rows<A_CLIP, ACC, OUT, true>(Cs, tid, cg, co, m0, M, Cout, y, sc, bi, rvs, ak, aa, ab, ys, yr, zp, vlo, vhi);
            else ign_rows<A_NONE, ACC, OUT, true>(Cs, tid, cg, co, m0, M, Cout, y, sc, bi, rvs, ak, aa, ab, ys, yr, zp, vlo, vhi);
            return;
        }
    }
    switch (ak) { // the activation once per tile (act_k)
    case A_NONE: ign_rows<A_NONE, ACC>(Cs, tid, cg, co, m0, M, Cout, y, sc, bi, rvs, ak, aa, ab, ys, yr, zp, vlo, vhi); break;
    case A_RELU: ign_rows<A_RELU, ACC>(Cs, tid, cg, co, m0, M, Cout, y, sc, bi, rvs, ak, aa, ab, ys, yr, zp, vlo, vhi); break;
    case A_CLIP: ign_rows<A_CLIP, ACC>(Cs, tid, cg, co, m0, M, Cout, y, sc, bi, rvs, ak, aa, ab, ys, yr, zp, vlo, vhi); break;
    default: ign_rows<-1, ACC>(Cs, tid, cg, co, m0, M, Cout, y, sc, bi, rvs, ak, aa, ab, ys, yr, zp, vlo, vhi);
    }
}
