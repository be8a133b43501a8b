package cpu

import (
	"fmt"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/kernels/avx"
	"github.com/kilnml/kiln/kernels/parallel"
	"github.com/kilnml/kiln/ops/kilnq"
)

// INT8 QGemm/QMatMul with constant int8 weights on the VNNI micro-kernel,
// as Y = X·W: activations are the A side (s8 = code^flip, packed per run
// with their row sums), weights the B side (u8 = w+128, packed at build
// time with their column sums), so outputs are stored row by row and the
// per-feature constants are per column. With s = x−δ (δ = 128 for uint8
// codes, 0 for int8) and u = w+128:
// Σ s·u = Σ (x−xz)·w + (xz−δ)·Σw + 128·Σs, both corrections exact int32.
var simdQGemmIDs = isaIDs{fam: famI8, ids: [3]string{"cpu.gemm.vnni", "cpu.gemm.avx2.i8", "cpu.gemm.generic.i8"}}

type simdQGemmParams struct {
	N      int         `json:"n"`
	K      int         `json:"k"`
	MatMul bool        `json:"matmul,omitempty"`
	Bias   bool        `json:"bias,omitempty"`
	Resid  bool        `json:"resid,omitempty"`
	ZType  ir.DType    `json:"ztype,omitempty"` // the residual's type: float32, or int8/uint8 codes (z_scale > 0)
	Quant  *quantParam `json:"quant"`
	XType  ir.DType    `json:"xtype"`
	Tile   [2]int      `json:"tile"`
}

type simdQGemmTactic struct{}

func (simdQGemmTactic) Name() string { return "gemm." + simdQGemmIDs.tag("vnni") + ".i8" }

func (simdQGemmTactic) Lower(l *engine.Layer) (*engine.Lowered, error) {
	n := l.Node
	if !isConst(l, 1) || len(l.Const[1].Dims) != 2 {
		return nil, fmt.Errorf("%s: the weights must be a constant matrix", n)
	}
	w := l.Const[1]
	xt := inDType(l, 0)
	if w.DType != ir.Int8 || (xt != ir.Int8 && xt != ir.Uint8) {
		return nil, fmt.Errorf("%s: int8 gemm over %s×%s", n, xt, w.DType)
	}
	p := simdQGemmParams{MatMul: n.OpType == "QMatMul", XType: xt, Tile: [2]int{avx.MR, avx.NR}}
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
		alpha, _ := n.AttrFloat("alpha", 1)
		beta, _ := n.AttrFloat("beta", 1)
		if ta != 0 || alpha != 1 || beta != 1 {
			return nil, fmt.Errorf("%s: transA, alpha or beta: left to the portable kernel", n)
		}
		transB = tb != 0
	}
	if l.In[0] == nil || !l.In[0].HasShape || len(l.In[0].Shape) < 2 || (!p.MatMul && len(l.In[0].Shape) != 2) {
		return nil, fmt.Errorf("%s: A must be a matrix (or a batch of them for QMatMul)", n)
	}
	ql, err := kilnq.ParseLayer(n, xt)
	if err != nil {
		return nil, err
	}
	p.Quant = &quantParam{*ql}
	p.K, p.N = int(w.Dims[0]), int(w.Dims[1])
	rs, cs := p.N, 1
	if transB {
		p.K, p.N = p.N, p.K
		rs, cs = 1, p.K
	}
	if err := simdQLayerOK(ql, p.N); err != nil {
		return nil, fmt.Errorf("%s: %v", n, err)
	}
	if p.K > avxMaxK {
		return nil, fmt.Errorf("%s: depth %d could overflow int32 accumulators", n, p.K)
	}
	src := w.I8()
	wu := make([]uint8, len(src))
	sums := ir.NewTensor(ir.Int32, []int64{int64(p.N)})
	ss := sums.I32()
	for kk := 0; kk < p.K; kk++ {
		for j := 0; j < p.N; j++ {
			v := src[kk*rs+j*cs]
			wu[kk*rs+j*cs] = uint8(v) ^ 0x80
			ss[j] += int32(v)
		}
	}
	packed := ir.NewTensor(ir.Uint8, []int64{int64(avx.QBSize(p.K, p.N))})
	avx.PackQB(packed.Data, wu, p.K, p.N, rs, cs, 128)
	weights := []*ir.Tensor{packed, sums}
	weights, inputs, bias, zType, err := qEpilogueInputs(l, ql, weights, p.N, ir.Int8, ir.Uint8)
	if err != nil {
		return nil, err
	}
	p.Bias, p.Resid, p.ZType = bias, zType != ir.Undefined, zType
	return lowered(simdQGemmIDs.now(), &p, weights, inputs)
}

type simdQGemmKernel struct {
	builtFor // the variant the plan names (simd_isa.go)
	p        simdQGemmParams
	w        []uint8
	q        *avx.QLayer
	flip     byte
	runs     runPool[simdQGemmRun]
}

func init() { registerISA(simdQGemmIDs, newSimdQGemmKernel) }

func newSimdQGemmKernel(p *simdQGemmParams, w []*ir.Tensor) (engine.Kernel, error) {
	need := 2
	if p.Bias {
		need = 3
	}
	if len(w) != need || p.N <= 0 || p.K < 0 || p.Quant == nil || p.Tile != [2]int{avx.MR, avx.NR} ||
		w[0].DType != ir.Uint8 || len(w[0].Data) != avx.QBSize(p.K, p.N) || w[1].DType != ir.Int32 || len(w[1].I32()) != p.N {
		return nil, fmt.Errorf("%s: bad parameters or weights", simdQGemmIDs)
	}
	l := &p.Quant.Layer
	if err := simdQLayerOK(l, p.N); err != nil {
		return nil, fmt.Errorf("%s: %v", simdQGemmIDs, err)
	}
	var bias []float32
	if p.Bias {
		if w[2].DType != ir.Float32 || len(w[2].F32()) != p.N {
			return nil, fmt.Errorf("%s: bias is %s%v, want float32[%d]", simdQGemmIDs, w[2].DType, w[2].Dims, p.N)
		}
		bias = w[2].F32()
	}
	k := &simdQGemmKernel{p: *p, w: w[0].Data}
	delta := int32(0)
	if p.XType == ir.Uint8 {
		delta, k.flip = 128, 0x80
	}
	if !floatResidualOK(l.ZScale, p.ZType) {
		return nil, fmt.Errorf("%s: residual codes (%s) without z_scale", simdQGemmIDs, p.ZType)
	}
	if l.ZScale != 0 && (!p.Resid || p.ZType != ir.Int8 && p.ZType != ir.Uint8) {
		return nil, fmt.Errorf("%s: z_scale %g needs int8 or uint8 residual codes, the plan says %s", simdQGemmIDs, l.ZScale, p.ZType)
	}
	k.q = simdQLayer(l, p.N, w[1].I32(), l.XZero-delta, bias)
	k.q.Col = true
	setResidual(k.q, l, p.ZType)
	return k, nil
}

func (k *simdQGemmKernel) rows(xd []int64) (int, error) {
	if len(xd) < 2 || (!k.p.MatMul && len(xd) != 2) || int(xd[len(xd)-1]) != k.p.K {
		return 0, fmt.Errorf("A has dims %v, depth %d wanted", xd, k.p.K)
	}
	m := 1
	for _, d := range xd[:len(xd)-1] {
		m *= int(d)
	}
	return m, nil
}

func (k *simdQGemmKernel) Shapes(in []*ir.Tensor) ([][]int64, error) {
	if in[0].DType != k.p.XType {
		return nil, fmt.Errorf("input is %s, want %s", in[0].DType, k.p.XType)
	}
	if _, err := k.rows(in[0].Dims); err != nil {
		return nil, err
	}
	if k.p.Resid {
		if err := checkResidualType(in, k.p.ZType); err != nil {
			return nil, err
		}
	}
	return rowsByN(in, k.p.N, k.p.Resid)
}

type simdQGemmRun struct {
	k         *simdQGemmKernel
	m         int
	x         []byte
	o         avx.QOut
	ap        []int8
	rcorr     []int32
	packing   bool
	rows, ncb int
	cols, nrb int
}

func (k *simdQGemmKernel) Run(x *engine.Exec, in, out []*ir.Tensor) error {
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
	*r = simdQGemmRun{k: k, m: m, x: in[0].Data, o: avx.QOut{Ld: p.N}}
	th := simdThreads(x.Threads, m*p.N*p.K)
	if out[0].DType == ir.Float32 {
		r.o.F = out[0].F32()
	} else {
		r.o.Q = out[0].Data
	}
	switch {
	case p.Resid && k.q.ZScale != 0:
		r.o.ResidQ = in[1].Data
	case p.Resid:
		r.o.Resid = in[1].F32()
	}
	asz := (avx.QASize(m, p.K) + 63) &^ 63
	nrc := (m + avx.MR - 1) / avx.MR * avx.MR
	buf := x.Scratch(asz + 4*nrc)
	r.ap = bytesAs[int8](buf, asz)
	r.rcorr = bytesAs[int32](buf[asz:], nrc)
	r.packing = true
	parallel.Run(th, (m+avx.MR-1)/avx.MR, r)
	r.packing = false
	k4 := avx.K4(p.K)
	r.cols = max(avx.NR, (512<<10)/(4*max(k4, 1))/avx.NR*avx.NR)
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
	parallel.Run(th, r.nrb*r.ncb, r)
	return nil
}

func (r *simdQGemmRun) Do(w, item int) {
	k, p := r.k, &r.k.p
	k4 := avx.K4(p.K)
	if r.packing {
		i0 := item * avx.MR
		rows := min(avx.MR, r.m-i0)
		avx.PackQRows(r.ap[i0*4*k4:(i0+avx.MR)*4*k4], r.x[i0*p.K:(i0+rows)*p.K], rows, p.K, k.flip, r.rcorr[i0:])
		return
	}
	rb, cb := item/r.ncb, item%r.ncb
	i0, j0 := rb*r.rows, cb*r.cols
	rows, cols := min(r.rows, r.m-i0), min(r.cols, p.N-j0)
	ql := *k.q
	ql.RCorr = r.rcorr
	avx.QGemm(p.K, r.ap[i0*4*k4:], rows, k.w[j0*4*k4:], cols, &r.o, &ql, i0, j0)
}
