package cpu

import (
	"fmt"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/kernels/avx"
	"github.com/kilnml/kiln/kernels/pack"
	"github.com/kilnml/kiln/kernels/parallel"
	"github.com/kilnml/kiln/ops/kiln"
)

// FP32 Gemm/MatMul with constant weights on kernels/avx, as Y = X·W: the
// activations are the GEMM's A side (packed per run in 8-row strips), the
// weights its B side (packed once at build time in 32-column strips), so
// the output's rows are stored contiguously by the micro-kernel and the
// bias is per column. Only the common forms: alpha = beta = 1, no transA,
// bias absent or one value per output feature.
var simdGemmIDs = isaIDs{fam: famF32, ids: [3]string{"cpu.gemm.avx512", "cpu.gemm.avx2", "cpu.gemm.generic"}}

type simdGemmParams struct {
	N      int      `json:"n"`
	K      int      `json:"k"`
	MatMul bool     `json:"matmul,omitempty"`
	Bias   bool     `json:"bias,omitempty"`
	Resid  bool     `json:"resid,omitempty"`
	Act    actParam `json:"act"`
	Tile   [2]int   `json:"tile"`
}

type simdGemmTactic struct{}

func (simdGemmTactic) Name() string { return "gemm." + simdGemmIDs.tag("avx512") + ".f32" }

func (simdGemmTactic) Lower(l *engine.Layer) (*engine.Lowered, error) {
	n := l.Node
	if !isConst(l, 1) || len(l.Const[1].Dims) != 2 {
		return nil, fmt.Errorf("%s: the weights must be a constant matrix", n)
	}
	w := l.Const[1]
	if w.DType != ir.Float32 || inDType(l, 0) != ir.Float32 {
		return nil, fmt.Errorf("%s: fp32 gemm over %s×%s", n, inDType(l, 0), w.DType)
	}
	p := simdGemmParams{MatMul: n.OpType == "MatMul", Tile: [2]int{avx.MR, avx.NR}}
	transB := false
	if !p.MatMul {
		ta, err := n.AttrInt("transA", 0)
		if err != nil {
			return nil, err
		}
		tb, err := n.AttrInt("transB", 0)
		if err != nil {
			return nil, err
		}
		alpha, err := n.AttrFloat("alpha", 1)
		if err != nil {
			return nil, err
		}
		beta, err := n.AttrFloat("beta", 1)
		if err != nil {
			return nil, err
		}
		if ta != 0 || alpha != 1 || (beta != 1 && hasInput(n, 2)) {
			return nil, fmt.Errorf("%s: transA, alpha or beta: left to the portable kernel", n)
		}
		transB = tb != 0
	}
	if l.In[0] == nil || !l.In[0].HasShape || len(l.In[0].Shape) < 2 || (!p.MatMul && len(l.In[0].Shape) != 2) {
		return nil, fmt.Errorf("%s: A must be a matrix (or a batch of them for MatMul)", n)
	}
	p.K, p.N = int(w.Dims[0]), int(w.Dims[1])
	rs, cs := p.N, 1 // W[k][j]
	if transB {
		p.K, p.N = p.N, p.K
		rs, cs = 1, p.K
	}
	if n.Domain == "kiln" {
		a, err := kiln.ActivationOf(n)
		if err != nil {
			return nil, err
		}
		p.Act = actParam(a)
	}
	packed := make([]float32, avx.BSize(p.K, p.N))
	pack.B(packed, w.F32(), (*[256]float32)(nil), p.K, p.N, rs, cs, avx.NR)
	weights := []*ir.Tensor{ir.FromFloat32s([]int64{int64(len(packed))}, packed)}
	weights, inputs, bias, resid, err := epilogueInputs(l, weights, p.N)
	if err != nil {
		return nil, err
	}
	p.Bias, p.Resid = bias, resid
	return lowered(simdGemmIDs.now(), &p, weights, inputs)
}

type simdGemmKernel struct {
	builtFor // the variant the plan names (simd_isa.go)
	p        simdGemmParams
	w        []float32
	bias     []float32
	epi      avx.Epi
	runs     runPool[simdGemmRun]
}

func init() { registerISA(simdGemmIDs, newSimdGemmKernel) }

func newSimdGemmKernel(p *simdGemmParams, w []*ir.Tensor) (engine.Kernel, error) {
	need := 1
	if p.Bias {
		need = 2
	}
	if len(w) != need || p.N <= 0 || p.K < 0 || p.Tile != [2]int{avx.MR, avx.NR} {
		return nil, fmt.Errorf("%s: bad parameters or weights", simdGemmIDs)
	}
	if w[0].DType != ir.Float32 || len(w[0].F32()) != avx.BSize(p.K, p.N) {
		return nil, fmt.Errorf("%s: packed weights do not match %dx%d", simdGemmIDs, p.K, p.N)
	}
	k := &simdGemmKernel{p: *p, w: w[0].F32(), epi: simdEpi(p.Act.get())}
	if p.Bias {
		if w[1].DType != ir.Float32 || len(w[1].F32()) != p.N {
			return nil, fmt.Errorf("%s: bias is %s%v, want float32[%d]", simdGemmIDs, w[1].DType, w[1].Dims, p.N)
		}
		k.bias = w[1].F32()
		k.epi.Bias, k.epi.BiasOn = k.bias, avx.FlagBiasCol
	}
	return k, nil
}

func (k *simdGemmKernel) rows(xd []int64) (int, error) {
	if len(xd) < 2 || (!k.p.MatMul && len(xd) != 2) || int(xd[len(xd)-1]) != k.p.K {
		return 0, fmt.Errorf("A has dims %v, depth %d wanted", xd, k.p.K)
	}
	m := 1
	for _, d := range xd[:len(xd)-1] {
		m *= int(d)
	}
	return m, nil
}

func (k *simdGemmKernel) Shapes(in []*ir.Tensor) ([][]int64, error) {
	if _, err := k.rows(in[0].Dims); err != nil {
		return nil, err
	}
	return rowsByN(in, k.p.N, k.p.Resid)
}

// rowsByN is the output shape of a Y = X·W kernel: X's rows (every
// dimension but the last) by n columns, checked against the residual input
// when the kernel adds one.
func rowsByN(in []*ir.Tensor, n int, resid bool) ([][]int64, error) {
	xd := in[0].Dims
	out := append(append([]int64{}, xd[:len(xd)-1]...), int64(n))
	if resid {
		if err := checkResidual(in, out); err != nil {
			return nil, err
		}
	}
	return [][]int64{out}, nil
}

// simdGemmRun runs in two phases: packing A (items: 8-row strips), then
// the products (items: row block × column chunk of the output).
type simdGemmRun struct {
	k         *simdGemmKernel
	m         int
	x, y, z   []float32
	ap        []float32
	packing   bool
	rows, ncb int // rows per block (multiple of MR), column blocks
	cols, nrb int // columns per block (multiple of NR), row blocks
}

func (k *simdGemmKernel) Run(x *engine.Exec, in, out []*ir.Tensor) error {
	m, err := k.rows(in[0].Dims)
	if err != nil {
		return err
	}
	if m == 0 {
		return nil
	}
	r := k.runs.get()
	defer k.runs.put(r)
	p := &k.p
	*r = simdGemmRun{k: k, m: m, x: in[0].F32(), y: out[0].F32()}
	th := simdThreads(x.Threads, m*p.N*p.K)
	if p.Resid {
		r.z = in[1].F32()
	}
	r.ap = bytesAs[float32](x.Scratch(4*avx.ASize(m, p.K)), avx.ASize(m, p.K))
	strips := (m + avx.MR - 1) / avx.MR
	r.packing = true
	parallel.Run(th, strips, r)
	r.packing = false
	// Column blocks whose packed B stays in L2; row blocks of 4 strips,
	// halved while there are too few items for the threads.
	r.cols = max(avx.NR, (512<<10)/(4*max(p.K, 1))/avx.NR*avx.NR)
	r.cols = min(r.cols, (p.N+avx.NR-1)/avx.NR*avx.NR)
	r.ncb = (p.N + r.cols - 1) / r.cols
	r.rows = 4 * avx.MR
	for r.ncb*((m+r.rows-1)/r.rows) < 2*th && r.rows > avx.MR {
		r.rows /= 2
	}
	for r.ncb*((m+r.rows-1)/r.rows) < 2*th && r.cols > avx.NR {
		r.cols = (r.cols/2 + avx.NR - 1) / avx.NR * avx.NR
		r.ncb = (p.N + r.cols - 1) / r.cols
	}
	r.nrb = (m + r.rows - 1) / r.rows
	if c, n := evenChunks(p.N, r.ncb, r.nrb, th); c > 0 {
		r.cols, r.ncb = c, n
	}
	parallel.Run(th, r.nrb*r.ncb, r)
	return nil
}

func (r *simdGemmRun) Do(w, item int) {
	k, p := r.k, &r.k.p
	if r.packing {
		i0 := item * avx.MR
		rows := min(avx.MR, r.m-i0)
		avx.PackA(r.ap[i0*p.K:(i0+avx.MR)*p.K], r.x[i0*p.K:(i0+rows)*p.K], rows, p.K, p.K, 1)
		return
	}
	rb, cb := item/r.ncb, item%r.ncb
	i0, j0 := rb*r.rows, cb*r.cols
	rows, cols := min(r.rows, r.m-i0), min(r.cols, p.N-j0)
	e := k.epi
	if r.z != nil {
		e.Resid = r.z
	}
	avx.Gemm(p.K, r.ap[i0*p.K:], rows, k.w[j0*p.K:], 0, cols, r.y[i0*p.N+j0:], p.N, &e, i0, j0)
}
