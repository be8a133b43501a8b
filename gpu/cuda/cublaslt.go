package cuda

import (
	"fmt"
	"runtime"
	"unsafe"
)

// DataType is cudaDataType (library_types.h).
type DataType int32

const (
	R32F    DataType = 0
	R16F    DataType = 2
	R8I     DataType = 3
	R32I    DataType = 10
	R16BF   DataType = 14
	R8FE4M3 DataType = 28
)

// Size is the element size in bytes.
func (t DataType) Size() int64 {
	switch t {
	case R32F, R32I:
		return 4
	case R16F, R16BF:
		return 2
	}
	return 1
}

// cuBLASLt constants (cublasLt.h, cublas_api.h of CUDA 13).
const (
	computeF32 = 68 // CUBLAS_COMPUTE_32F (no TF32)
	computeI32 = 72 // CUBLAS_COMPUTE_32I

	descTransA      = 3
	descTransB      = 4
	descAScalePtr   = 17
	descBScalePtr   = 18
	prefMaxWorkspce = 1
	opN, opT        = int32(0), int32(1)
)

var (
	ltCreate          func(h *uintptr) int32
	ltGetStatusString func(st int32) unsafe.Pointer
	ltDescCreate      func(d *uintptr, compute int32, scale int32) int32
	ltDescSetAttr     func(d uintptr, attr int32, buf unsafe.Pointer, n uint64) int32
	ltDescDestroy     func(d uintptr) int32
	ltLayoutCreate    func(l *uintptr, typ int32, rows, cols uint64, ld int64) int32
	ltLayoutDestroy   func(l uintptr) int32
	ltLayoutSetAttr   func(l uintptr, attr int32, buf unsafe.Pointer, n uint64) int32
	ltPrefCreate      func(p *uintptr) int32
	ltPrefSetAttr     func(p uintptr, attr int32, buf unsafe.Pointer, n uint64) int32
	ltPrefDestroy     func(p uintptr) int32
	ltHeuristic       func(h, desc, a, b, c, d, pref uintptr, req int32, res unsafe.Pointer, ret *int32) int32
	ltMatmul          func(h, desc uintptr, alpha unsafe.Pointer, A DevPtr, ad uintptr, B DevPtr, bd uintptr, beta unsafe.Pointer, C DevPtr, cd uintptr, D DevPtr, dd uintptr, algo unsafe.Pointer, ws DevPtr, wsSize uint64, s uintptr) int32
	ltGetVersion      func() uint64
	ltDestroy         func(h uintptr) int32
)

func ltSymbols() []symbol {
	return []symbol{
		{"cublasLtCreate", &ltCreate},
		{"cublasLtDestroy", &ltDestroy},
		{"cublasLtGetStatusString", &ltGetStatusString},
		{"cublasLtMatmulDescCreate", &ltDescCreate},
		{"cublasLtMatmulDescSetAttribute", &ltDescSetAttr},
		{"cublasLtMatmulDescDestroy", &ltDescDestroy},
		{"cublasLtMatrixLayoutCreate", &ltLayoutCreate},
		{"cublasLtMatrixLayoutDestroy", &ltLayoutDestroy},
		{"cublasLtMatrixLayoutSetAttribute", &ltLayoutSetAttr},
		{"cublasLtMatmulPreferenceCreate", &ltPrefCreate},
		{"cublasLtMatmulPreferenceSetAttribute", &ltPrefSetAttr},
		{"cublasLtMatmulPreferenceDestroy", &ltPrefDestroy},
		{"cublasLtMatmulAlgoGetHeuristic", &ltHeuristic},
		{"cublasLtMatmul", &ltMatmul},
		{"cublasLtGetVersion", &ltGetVersion},
	}
}

func ltCheck(call string, st int32) error {
	if st == 0 {
		return nil
	}
	return fmt.Errorf("%s: %s (cublas status %d)", call, goString(ltGetStatusString(st)), st)
}

// BLAS is a cuBLASLt handle.
type BLAS struct{ h uintptr }

// NewBLAS creates a cuBLASLt handle (the device must be bound).
func NewBLAS() (*BLAS, error) {
	if err := Load(); err != nil {
		return nil, err
	}
	b := &BLAS{}
	return b, ltCheck("cublasLtCreate", ltCreate(&b.h))
}

// Destroy releases the handle (idempotent; the device must be bound and
// no work using the handle may still be queued).
func (b *BLAS) Destroy() error {
	if b == nil || b.h == 0 {
		return nil
	}
	err := ltCheck("cublasLtDestroy", ltDestroy(b.h))
	b.h = 0
	return err
}

// LtVersion is cuBLASLt's version number (e.g. 130100).
func LtVersion() uint64 { return ltGetVersion() }

// GemmDesc is Y[M×N] = X[M×K] · W[N×K]ᵀ in row-major terms (cuBLASLt's
// "TN" form, the one IMMA and FP8 kernels require): W is A transposed, X is
// B, Y is D, all column-major in cuBLASLt's view. Leading dimensions are in
// elements; 0 means dense (K for X and W, N for Y).
type GemmDesc struct {
	M, N, K       int64
	LdX, LdW, LdY int64
	In            DataType // type of X and W
	Out           DataType // type of Y
	// AScale/BScale: optional device float32 pointers (FP8 only) that
	// multiply W and X.
	WScale, XScale DevPtr
	// Optional epilogue (float types): Bias (a device vector of N values
	// of Y's type) added per column of Y, then ReLU when Relu; Residual
	// adds C (Y's type and layout, passed to RunC) before them.
	Bias     DevPtr
	Relu     bool
	Residual bool
}

// Gemm is a planned matrix product (descriptors and the chosen algorithm).
type Gemm struct {
	D                GemmDesc
	desc, la, lb, lc uintptr
	algo             [64]byte // cublasLtMatmulAlgo_t
	wsNeed           uint64
	alphaF, betaF    float32
	alphaI, betaI    int32
	intMath          bool
}

// heuristicResult mirrors cublasLtMatmulHeuristicResult_t: algo (64
// bytes), workspaceSize, state, wavesCount, reserved[4].
type heuristicResult struct {
	algo     [64]byte
	wsSize   uint64
	state    int32
	waves    float32
	reserved [4]int32
}

// Plan picks cuBLASLt's best algorithm for d with at most wsLimit bytes of
// workspace.
func (b *BLAS) Plan(d GemmDesc, wsLimit uint64) (*Gemm, error) {
	if d.LdX == 0 {
		d.LdX = d.K
	}
	if d.LdW == 0 {
		d.LdW = d.K
	}
	if d.LdY == 0 {
		d.LdY = d.N
	}
	g := &Gemm{D: d, alphaF: 1, alphaI: 1}
	compute, scale := int32(computeF32), int32(R32F)
	if d.In == R8I {
		compute, scale, g.intMath = computeI32, int32(R32I), true
	}
	if err := ltCheck("cublasLtMatmulDescCreate", ltDescCreate(&g.desc, compute, scale)); err != nil {
		return nil, err
	}
	ta, tb := opT, opN
	if err := ltCheck("set TRANSA", ltDescSetAttr(g.desc, descTransA, unsafe.Pointer(&ta), 4)); err != nil {
		return nil, err
	}
	if err := ltCheck("set TRANSB", ltDescSetAttr(g.desc, descTransB, unsafe.Pointer(&tb), 4)); err != nil {
		return nil, err
	}
	if d.WScale != 0 {
		p := d.WScale
		if err := ltCheck("set A_SCALE_POINTER", ltDescSetAttr(g.desc, descAScalePtr, unsafe.Pointer(&p), 8)); err != nil {
			return nil, err
		}
	}
	if d.XScale != 0 {
		p := d.XScale
		if err := ltCheck("set B_SCALE_POINTER", ltDescSetAttr(g.desc, descBScalePtr, unsafe.Pointer(&p), 8)); err != nil {
			return nil, err
		}
	}
	if d.Bias != 0 || d.Relu {
		epi := int32(0) // RELU 2, BIAS 4, RELU_BIAS 6
		if d.Relu {
			epi = epilogueRelu
		}
		if d.Bias != 0 {
			epi |= epilogueBias
			p, bt := d.Bias, int32(d.Out)
			if err := ltCheck("set BIAS_POINTER", ltDescSetAttr(g.desc, descBiasPtr, unsafe.Pointer(&p), 8)); err != nil {
				return nil, err
			}
			if err := ltCheck("set BIAS_DATA_TYPE", ltDescSetAttr(g.desc, descBiasType, unsafe.Pointer(&bt), 4)); err != nil {
				return nil, err
			}
		}
		if err := ltCheck("set EPILOGUE", ltDescSetAttr(g.desc, descEpilogue, unsafe.Pointer(&epi), 4)); err != nil {
			return nil, err
		}
	}
	if d.Residual {
		g.betaF = 1
	}
	if err := ltCheck("layout A", ltLayoutCreate(&g.la, int32(d.In), uint64(d.K), uint64(d.N), d.LdW)); err != nil {
		return nil, err
	}
	if err := ltCheck("layout B", ltLayoutCreate(&g.lb, int32(d.In), uint64(d.K), uint64(d.M), d.LdX)); err != nil {
		return nil, err
	}
	if err := ltCheck("layout D", ltLayoutCreate(&g.lc, int32(d.Out), uint64(d.N), uint64(d.M), d.LdY)); err != nil {
		return nil, err
	}
	var pref uintptr
	if err := ltCheck("cublasLtMatmulPreferenceCreate", ltPrefCreate(&pref)); err != nil {
		return nil, err
	}
	defer ltPrefDestroy(pref)
	if err := ltCheck("set MAX_WORKSPACE_BYTES", ltPrefSetAttr(pref, prefMaxWorkspce, unsafe.Pointer(&wsLimit), 8)); err != nil {
		return nil, err
	}
	var res [1]heuristicResult
	var n int32
	err := ltCheck("cublasLtMatmulAlgoGetHeuristic", ltHeuristic(b.h, g.desc, g.la, g.lb, g.lc, g.lc, pref, 1, unsafe.Pointer(&res[0]), &n))
	if err == nil && n == 0 {
		err = fmt.Errorf("cuBLASLt has no algorithm")
	}
	if err != nil {
		g.Destroy()
		return nil, fmt.Errorf("GEMM %dx%dx%d %v→%v: %w", d.M, d.N, d.K, d.In, d.Out, err)
	}
	g.algo, g.wsNeed = res[0].algo, res[0].wsSize
	return g, nil
}

// Workspace is the scratch the chosen algorithm needs.
func (g *Gemm) Workspace() uint64 { return g.wsNeed }

// Run computes Y = X·Wᵀ on s. ws must hold Workspace() bytes.
func (g *Gemm) Run(b *BLAS, s *Stream, X, W, Y DevPtr, ws DevPtr, wsSize uint64) error {
	alpha, beta := unsafe.Pointer(&g.alphaF), unsafe.Pointer(&g.betaF)
	if g.intMath {
		alpha, beta = unsafe.Pointer(&g.alphaI), unsafe.Pointer(&g.betaI)
	}
	st := ltMatmul(b.h, g.desc, alpha, W, g.la, X, g.lb, beta, Y, g.lc, Y, g.lc, unsafe.Pointer(&g.algo), ws, wsSize, s.h)
	runtime.KeepAlive(g)
	return ltCheck("cublasLtMatmul", st)
}

// RunC computes Y = epilogue(X·Wᵀ + C) on s for a plan with Residual (C
// has Y's type and layout; without Residual C is not read).
func (g *Gemm) RunC(b *BLAS, s *Stream, X, W, C, Y DevPtr, ws DevPtr, wsSize uint64) error {
	if !g.D.Residual {
		C = Y
	}
	alpha, beta := unsafe.Pointer(&g.alphaF), unsafe.Pointer(&g.betaF)
	if g.intMath {
		alpha, beta = unsafe.Pointer(&g.alphaI), unsafe.Pointer(&g.betaI)
	}
	st := ltMatmul(b.h, g.desc, alpha, W, g.la, X, g.lb, beta, C, g.lc, Y, g.lc, unsafe.Pointer(&g.algo), ws, wsSize, s.h)
	runtime.KeepAlive(g)
	return ltCheck("cublasLtMatmul", st)
}

// Destroy frees the descriptors.
func (g *Gemm) Destroy() {
	if g.desc != 0 {
		ltDescDestroy(g.desc)
	}
	for _, l := range []uintptr{g.la, g.lb, g.lc} {
		if l != 0 {
			ltLayoutDestroy(l)
		}
	}
	g.desc, g.la, g.lb, g.lc = 0, 0, 0, 0
}

func (t DataType) String() string {
	switch t {
	case R32F:
		return "f32"
	case R16F:
		return "f16"
	case R16BF:
		return "bf16"
	case R8I:
		return "i8"
	case R32I:
		return "i32"
	case R8FE4M3:
		return "e4m3"
	}
	return fmt.Sprintf("cudaDataType(%d)", int32(t))
}

// More cuBLASLt constants (cublasLt.h of CUDA 13).
const (
	descEpilogue    = 7 // CUBLASLT_MATMUL_DESC_EPILOGUE
	layoutBatch     = 5 // CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT (int32)
	layoutBatchStep = 6 // CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET (int64, elements)
	epilogueDefault = int32(1)
	epilogueRelu    = int32(2)
	epilogueBias    = int32(4) // CUBLASLT_EPILOGUE_BIAS; | epilogueRelu is RELU_BIAS (6)
	descBiasPtr     = 8        // CUBLASLT_MATMUL_DESC_BIAS_POINTER
	descBiasType    = 26       // CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE
)

// ConvGemmDesc is a convolution's product in NCHW, image by image: for b <
// Batch, Y_b[N×P] = W[N×K] · X_b[K×P] (+ C_b), row-major in kiln's terms
// (N output channels, P output pixels, K the reduction), which cuBLASLt
// sees column-major as Y_bᵀ[P×N] = X_bᵀ[P×K] · Wᵀ[K×N]. X_b is the image
// itself for a 1×1 convolution, else its im2col matrix; C_b (the residual)
// has Y's type and layout. Relu applies cuBLASLt's ReLU epilogue (a bias
// would be per column here, which cuBLASLt's epilogue cannot add, so
// biases are kiln's pass after it). Float types only (IMMA and FP8 need
// K-contiguous operands on both sides).
type ConvGemmDesc struct {
	N, P, K, Batch   int64
	LdW              int64 // elements between rows of W (≥ K)
	StrideX, StrideY int64 // elements between images
	In, Out          DataType
	Relu, Residual   bool
}

// ConvGemm is a planned ConvGemmDesc.
type ConvGemm struct {
	D                ConvGemmDesc
	desc, la, lb, lc uintptr
	algo             [64]byte
	wsNeed           uint64
	alpha, beta      float32
}

// PlanConv picks cuBLASLt's best algorithm for d with at most wsLimit
// bytes of workspace.
func (b *BLAS) PlanConv(d ConvGemmDesc, wsLimit uint64) (*ConvGemm, error) {
	g := &ConvGemm{D: d, alpha: 1}
	if d.Residual {
		g.beta = 1
	}
	fail := func(err error) (*ConvGemm, error) {
		g.Destroy()
		return nil, fmt.Errorf("conv GEMM %d×%d×%d ×%d %v→%v: %w", d.N, d.P, d.K, d.Batch, d.In, d.Out, err)
	}
	if err := ltCheck("cublasLtMatmulDescCreate", ltDescCreate(&g.desc, computeF32, int32(R32F))); err != nil {
		return fail(err)
	}
	ta, tb, epi := opN, opN, epilogueDefault
	if d.Relu {
		epi = epilogueRelu
	}
	for _, e := range []error{
		ltCheck("set TRANSA", ltDescSetAttr(g.desc, descTransA, unsafe.Pointer(&ta), 4)),
		ltCheck("set TRANSB", ltDescSetAttr(g.desc, descTransB, unsafe.Pointer(&tb), 4)),
		ltCheck("set EPILOGUE", ltDescSetAttr(g.desc, descEpilogue, unsafe.Pointer(&epi), 4)),
	} {
		if e != nil {
			return fail(e)
		}
	}
	layout := func(l *uintptr, t DataType, rows, cols, ld, batch, stride int64) error {
		if err := ltCheck("layout", ltLayoutCreate(l, int32(t), uint64(rows), uint64(cols), ld)); err != nil {
			return err
		}
		if batch > 1 {
			bc := int32(batch)
			if err := ltCheck("layout BATCH_COUNT", ltLayoutSetAttr(*l, layoutBatch, unsafe.Pointer(&bc), 4)); err != nil {
				return err
			}
			if err := ltCheck("layout STRIDED_BATCH_OFFSET", ltLayoutSetAttr(*l, layoutBatchStep, unsafe.Pointer(&stride), 8)); err != nil {
				return err
			}
		}
		return nil
	}
	// A = X_bᵀ [P×K] (ld P), B = Wᵀ [K×N] (ld LdW, shared by the batch), D = Y_bᵀ [P×N] (ld P)
	if err := layout(&g.la, d.In, d.P, d.K, d.P, d.Batch, d.StrideX); err != nil {
		return fail(err)
	}
	if err := layout(&g.lb, d.In, d.K, d.N, d.LdW, d.Batch, 0); err != nil {
		return fail(err)
	}
	if err := layout(&g.lc, d.Out, d.P, d.N, d.P, d.Batch, d.StrideY); err != nil {
		return fail(err)
	}
	var pref uintptr
	if err := ltCheck("cublasLtMatmulPreferenceCreate", ltPrefCreate(&pref)); err != nil {
		return fail(err)
	}
	defer ltPrefDestroy(pref)
	if err := ltCheck("set MAX_WORKSPACE_BYTES", ltPrefSetAttr(pref, prefMaxWorkspce, unsafe.Pointer(&wsLimit), 8)); err != nil {
		return fail(err)
	}
	var res [1]heuristicResult
	var n int32
	err := ltCheck("cublasLtMatmulAlgoGetHeuristic", ltHeuristic(b.h, g.desc, g.la, g.lb, g.lc, g.lc, pref, 1, unsafe.Pointer(&res[0]), &n))
	if err == nil && n == 0 {
		err = fmt.Errorf("cuBLASLt has no algorithm")
	}
	if err != nil {
		return fail(err)
	}
	g.algo, g.wsNeed = res[0].algo, res[0].wsSize
	return g, nil
}

// Run computes Y = W·X (+ C) (ReLU'd with Relu) on s (C is read only when
// the plan has a residual).
func (g *ConvGemm) Run(b *BLAS, s *Stream, X, W, C, Y DevPtr, ws DevPtr, wsSize uint64) error {
	if !g.D.Residual {
		C = Y
	}
	st := ltMatmul(b.h, g.desc, unsafe.Pointer(&g.alpha), X, g.la, W, g.lb, unsafe.Pointer(&g.beta), C, g.lc, Y, g.lc, unsafe.Pointer(&g.algo), ws, wsSize, s.h)
	runtime.KeepAlive(g)
	return ltCheck("cublasLtMatmul", st)
}

// Destroy frees the descriptors.
func (g *ConvGemm) Destroy() {
	if g.desc != 0 {
		ltDescDestroy(g.desc)
	}
	for _, l := range []uintptr{g.la, g.lb, g.lc} {
		if l != 0 {
			ltLayoutDestroy(l)
		}
	}
	g.desc, g.la, g.lb, g.lc = 0, 0, 0, 0
}
