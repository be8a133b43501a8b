// What NVRTC provides without headers, for clang's CUDA front end
// (tools/cudacheck/check.sh): the qualifiers, the special registers, and
// the few intrinsics kiln's kernels use, as clang builtins or inline PTX.
// For checking that the sources compile and for reading clang's PTX
// instruction mix only: clang contracts __fmul_rn/__fadd_rn pairs into
// FMAs, which NVRTC never does, so its arithmetic is not NVRTC's.
#define __global__ __attribute__((global))
#define __device__ __attribute__((device))
#define __shared__ __attribute__((shared))
#define __constant__ __attribute__((constant))
#define __forceinline__ __inline__ __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...) __attribute__((launch_bounds(__VA_ARGS__)))
#define __align__(n) __attribute__((aligned(n)))
#define __restrict__ __restrict
// threadIdx, blockIdx, blockDim, gridDim: x, y, z read from a special register
#define KILN_SREG_AXIS(REG, A) \
    __declspec(property(get = __get_##A)) unsigned int A; \
    static __device__ __forceinline__ unsigned int __get_##A(void) { return __nvvm_read_ptx_sreg_##REG##_##A(); }
#define KILN_SREG(NAME, REG) \
    struct __cuda_builtin_##NAME##_t { KILN_SREG_AXIS(REG, x) KILN_SREG_AXIS(REG, y) KILN_SREG_AXIS(REG, z) };
KILN_SREG(threadIdx, tid)
KILN_SREG(blockIdx, ctaid)
KILN_SREG(blockDim, ntid)
KILN_SREG(gridDim, nctaid)
extern const __device__ __cuda_builtin_threadIdx_t threadIdx;
extern const __device__ __cuda_builtin_blockIdx_t blockIdx;
extern const __device__ __cuda_builtin_blockDim_t blockDim;
extern const __device__ __cuda_builtin_gridDim_t gridDim;
__device__ __forceinline__ float __fmul_rn(float a, float b) { return __nvvm_mul_rn_f(a, b); }
__device__ __forceinline__ float __fadd_rn(float a, float b) { return __nvvm_add_rn_f(a, b); }
__device__ __forceinline__ float __fsub_rn(float a, float b) { return __nvvm_add_rn_f(a, -b); }
__device__ __forceinline__ float __fdiv_rn(float a, float b) { return __nvvm_div_rn_f(a, b); }
__device__ __forceinline__ float __fmaf_rn(float a, float b, float c) { return __nvvm_fma_rn_f(a, b, c); }
__device__ __forceinline__ int __float_as_int(float a) { return __builtin_bit_cast(int, a); }
__device__ __forceinline__ unsigned __float_as_uint(float a) { return __builtin_bit_cast(unsigned, a); }
__device__ __forceinline__ float __int_as_float(int a) { return __builtin_bit_cast(float, a); }
__device__ __forceinline__ float __uint_as_float(unsigned a) { return __builtin_bit_cast(float, a); }
__device__ __forceinline__ unsigned __byte_perm(unsigned a, unsigned b, unsigned s) { return __nvvm_prmt(a, b, s); }
__device__ __forceinline__ float fminf(float a, float b) { return __nvvm_fmin_f(a, b); }
__device__ __forceinline__ float fmaxf(float a, float b) { return __nvvm_fmax_f(a, b); }
__device__ __forceinline__ float rintf(float a) { return __builtin_rintf(a); }
__device__ __forceinline__ double fmin(double a, double b) { return __builtin_fmin(a, b); }
__device__ __forceinline__ double fmax(double a, double b) { return __builtin_fmax(a, b); }
__device__ double exp(double); __device__ double tanh(double); __device__ float expf(float); __device__ float tanhf(float);
__device__ __forceinline__ float __shfl_xor_sync(unsigned m, float v, int o) {
    float r;
    asm volatile("shfl.sync.bfly.b32 %0, %1, %2, 31, %3;" : "=f"(r) : "f"(v), "r"(o), "r"(m));
    return r;
}
__device__ __forceinline__ float rsqrtf(float v) { return __nvvm_rsqrt_approx_f(v); }
__device__ float expf(float); __device__ float logf(float); __device__ float sqrtf(float); __device__ float erff(float); __device__ float powf(float, float); __device__ double sqrt(double); __device__ double log(double);
