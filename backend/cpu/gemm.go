package cpu

import (
	"fmt"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/kernels/f32"
	"github.com/kilnml/kiln/kernels/i8"
	"github.com/kilnml/kiln/kernels/pack"
	"github.com/kilnml/kiln/ops/kiln"
	"github.com/kilnml/kiln/ops/kilnq"
)

// Gemm, MatMul and their fused and quantized forms with a constant weight
// matrix run as Yᵀ = Wᵀ·Xᵀ: the weights (packed once, output features as
// rows) are the GEMM's A side and the activations' rows its columns, so
// every dense layer shares conv's packed-A driver and epilogue.
type gemmParams struct {
	Prec    string      `json:"prec"`
	N       int         `json:"n"` // output features
	K       int         `json:"k"` // depth
	TransA  bool        `json:"trans_a,omitempty"`
	Alpha   float32     `json:"alpha"` // Gemm's; 1 for MatMul
	Beta    float32     `json:"beta"`
	Bias    int         `json:"bias"` // f32.Bias* mode of the packed bias (Row: per feature)
	BiasDim []int64     `json:"bias_dims,omitempty"`
	Resid   bool        `json:"resid,omitempty"`
	ZType   ir.DType    `json:"ztype,omitempty"` // the residual's type: float32/float16, or codes (z_scale > 0)
	Act     actParam    `json:"act"`
	Quant   *quantParam `json:"quant,omitempty"`
	XType   ir.DType    `json:"xtype"`
	MatMul  bool        `json:"matmul,omitempty"` // numpy batching of A's leading axes
	Tile    [2]int      `json:"tile"`
}

type gemmTactic struct{ prec string }

func (t gemmTactic) Name() string { return "gemm.packed." + t.prec }

func (t gemmTactic) Lower(l *engine.Layer) (*engine.Lowered, error) {
	n := l.Node
	if !isConst(l, 1) || len(l.Const[1].Dims) != 2 {
		return nil, fmt.Errorf("%s: the weights must be a constant matrix", n)
	}
	w := l.Const[1]
	p := gemmParams{Prec: t.prec, Alpha: 1, Beta: 1, XType: inDType(l, 0)}
	p.MatMul = n.OpType == "MatMul" || n.OpType == "QMatMul"
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
		p.TransA, transB = ta != 0, tb != 0
		if p.Alpha, err = n.AttrFloat("alpha", 1); err != nil {
			return nil, err
		}
		if p.Beta, err = n.AttrFloat("beta", 1); err != nil {
			return nil, err
		}
		if (t.prec == "i8" || t.prec == "f8") && (p.Alpha != 1 || p.Beta != 1) {
			return nil, fmt.Errorf("%s: quantized Gemm with alpha/beta", n)
		}
	}
	if l.In[0] == nil || !l.In[0].HasShape || len(l.In[0].Shape) < 2 || (!p.MatMul && len(l.In[0].Shape) != 2) {
		return nil, fmt.Errorf("%s: A must be a matrix (or a batch of them for MatMul)", n)
	}
	p.K, p.N = int(w.Dims[0]), int(w.Dims[1])
	if transB {
		p.K, p.N = p.N, p.K
	}
	// Wᵀ[n][k]: rows are output features.
	rs, cs := 1, p.N
	if transB {
		rs, cs = p.K, 1
	}
	var weights []*ir.Tensor
	switch t.prec {
	case "f32", "f16":
		wantT := ir.Float32
		if t.prec == "f16" {
			wantT = ir.Float16
		}
		if w.DType != wantT || p.XType != wantT {
			return nil, fmt.Errorf("%s: %s gemm over %s×%s", n, t.prec, p.XType, w.DType)
		}
		if n.Domain == "kiln" {
			a, err := kiln.ActivationOf(n)
			if err != nil {
				return nil, err
			}
			p.Act = actParam(a)
		}
		p.Tile = [2]int{f32.MR, f32.NR}
		dst := make([]float32, pack.ASize(p.N, p.K, f32.MR))
		pack.A(dst, floats(w), (*[256]float32)(nil), p.N, p.K, rs, cs, f32.MR)
		weights = append(weights, ir.FromFloat32s([]int64{int64(len(dst))}, dst))
	case "i8", "f8":
		var err error
		ql, err := kilnq.ParseLayer(n, p.XType)
		if err != nil {
			return nil, err
		}
		p.Quant = &quantParam{*ql}
		if len(p.Quant.WScales) != 1 && len(p.Quant.WScales) != p.N {
			return nil, fmt.Errorf("%s: w_scales has %d entries for %d outputs", n, len(p.Quant.WScales), p.N)
		}
		p.Act = actParam(p.Quant.Act)
		if t.prec == "i8" {
			if w.DType != ir.Int8 || (p.XType != ir.Int8 && p.XType != ir.Uint8) {
				return nil, fmt.Errorf("%s: int8 gemm over %s×%s", n, p.XType, w.DType)
			}
			if p.K > i8.MaxK {
				return nil, fmt.Errorf("%s: depth %d could overflow int32 accumulators", n, p.K)
			}
			p.Tile = [2]int{i8.MR, i8.NR}
			wq := ir.NewTensor(ir.Int8, []int64{int64(pack.ASize(p.N, p.K, i8.MR))})
			pack.A(wq.I8(), w.I8(), (*[256]int8)(nil), p.N, p.K, rs, cs, i8.MR)
			weights = append(weights, wq)
		} else {
			if !isFP8(w.DType) || !isFP8(p.XType) {
				return nil, fmt.Errorf("%s: fp8 gemm over %s×%s", n, p.XType, w.DType)
			}
			p.Tile = [2]int{f32.MR, f32.NR}
			dst := make([]float32, pack.ASize(p.N, p.K, f32.MR))
			pack.A(dst, decodeFP8(w), (*[256]float32)(nil), p.N, p.K, rs, cs, f32.MR)
			weights = append(weights, ir.FromFloat32s([]int64{int64(len(dst))}, dst))
		}
	}
	floatT := ir.Float32
	if t.prec == "f16" {
		floatT = ir.Float16
	}
	if hasInput(n, 2) {
		c := l.Const[2]
		if !isConst(l, 2) || c.DType != floatT {
			return nil, fmt.Errorf("%s: the bias must be a constant %s", n, floatT)
		}
		switch {
		case c.Len() == 1 && !(p.Quant != nil && p.N != 1):
			p.Bias = f32.BiasScalar
		case c.Len() == int64(p.N) && (len(c.Dims) == 1 || (len(c.Dims) == 2 && c.Dims[0] == 1)):
			p.Bias = f32.BiasRow
		case !p.MatMul && p.Quant == nil && len(c.Dims) == 2 && c.Dims[1] == 1:
			p.Bias = f32.BiasCol // [M,1]: per activation row
		case !p.MatMul && p.Quant == nil && len(c.Dims) == 2 && c.Dims[1] == int64(p.N):
			p.Bias = f32.BiasFull
		default:
			return nil, fmt.Errorf("%s: bias %v does not broadcast per output feature", n, c.Dims)
		}
		p.BiasDim = c.Dims
		weights = append(weights, ir.FromFloat32s(c.Dims, floats(c)))
	}
	inputs := []int{0}
	if hasInput(n, 3) {
		zt, err := portableResidual(l, p.Quant, floatT)
		if err != nil {
			return nil, err
		}
		p.Resid, p.ZType = true, zt
		inputs = append(inputs, 3)
	} else if p.Quant != nil && p.Quant.ZScale != 0 {
		return nil, fmt.Errorf("%s: z_scale without a residual input", n)
	}
	if len(n.Inputs) > 4 {
		return nil, fmt.Errorf("%s: too many inputs", n)
	}
	return lowered("cpu.gemm", &p, weights, inputs)
}

type gemmKernel struct {
	p     gemmParams
	w32   []float32
	w8    []int8
	bias  []float32
	lut16 *[256]int16
	lut32 *[256]float32
	ztab  *[256]float32 // residual codes' values (z_scale > 0)
	runs  runPool[gemmRun]
}

func init() { register("cpu.gemm", newGemmKernel) }

func newGemmKernel(p *gemmParams, w []*ir.Tensor) (engine.Kernel, error) {
	k := &gemmKernel{p: *p}
	need := 1
	if p.Bias != f32.BiasNone {
		need = 2
	}
	if len(w) != need || p.N <= 0 || p.K < 0 {
		return nil, fmt.Errorf("cpu.gemm: bad parameters or weights")
	}
	switch p.Prec {
	case "f32", "f8", "f16":
		if w[0].DType != ir.Float32 || len(w[0].F32()) != pack.ASize(p.N, p.K, f32.MR) || p.Tile != [2]int{f32.MR, f32.NR} {
			return nil, fmt.Errorf("cpu.gemm: packed weights do not match %dx%d for tile %v", p.N, p.K, p.Tile)
		}
		k.w32 = w[0].F32()
		if p.Prec == "f8" {
			if k.lut32 = fp8Table(p.XType); k.lut32 == nil {
				return nil, fmt.Errorf("cpu.gemm: fp8 activations of type %s", p.XType)
			}
		}
	case "i8":
		if w[0].DType != ir.Int8 || len(w[0].I8()) != pack.ASize(p.N, p.K, i8.MR) || p.Tile != [2]int{i8.MR, i8.NR} {
			return nil, fmt.Errorf("cpu.gemm: packed int8 weights do not match %dx%d for tile %v", p.N, p.K, p.Tile)
		}
		k.w8 = w[0].I8()
	default:
		return nil, fmt.Errorf("cpu.gemm: unknown precision %q", p.Prec)
	}
	if p.Prec == "i8" || p.Prec == "f8" {
		if p.Quant == nil {
			return nil, fmt.Errorf("cpu.gemm: quantized gemm without quantization parameters")
		}
		if p.Prec == "i8" {
			k.lut16 = i8.CodeTable(p.XType == ir.Uint8, p.Quant.XZero)
		}
	}
	if need == 2 {
		if w[1].DType != ir.Float32 {
			return nil, fmt.Errorf("cpu.gemm: bias is %s", w[1].DType)
		}
		k.bias = w[1].F32()
	}
	var err error
	if k.ztab, err = portableResidualTable("cpu.gemm", p.Quant, p.Resid, p.ZType); err != nil {
		return nil, err
	}
	return k, nil
}

// rows is the number of activation rows (M, or the batch product times M
// for MatMul) of input dims xd; it checks the depth.
func (k *gemmKernel) rows(xd []int64) (int, error) {
	p := &k.p
	if len(xd) < 2 || (!p.MatMul && len(xd) != 2) {
		return 0, fmt.Errorf("A has dims %v", xd)
	}
	kd := xd[len(xd)-1]
	m := int64(1)
	for _, d := range xd[:len(xd)-1] {
		m *= d
	}
	if p.TransA {
		kd, m = xd[0], xd[1]
	}
	if int(kd) != p.K {
		return 0, fmt.Errorf("A has dims %v, depth %d wanted", xd, p.K)
	}
	switch p.Bias {
	case f32.BiasCol:
		if int64(len(k.bias)) != m {
			return 0, fmt.Errorf("C %v does not broadcast to %d rows", p.BiasDim, m)
		}
	case f32.BiasFull:
		if int64(len(k.bias)) != m*int64(p.N) {
			return 0, fmt.Errorf("C %v does not broadcast to [%d,%d]", p.BiasDim, m, p.N)
		}
	}
	return int(m), nil
}

func (k *gemmKernel) outDims(xd []int64) []int64 {
	if k.p.MatMul {
		return append(append([]int64{}, xd[:len(xd)-1]...), int64(k.p.N))
	}
	m := xd[0]
	if k.p.TransA {
		m = xd[1]
	}
	return []int64{m, int64(k.p.N)}
}

func (k *gemmKernel) Shapes(in []*ir.Tensor) ([][]int64, error) {
	if _, err := k.rows(in[0].Dims); err != nil {
		return nil, err
	}
	out := k.outDims(in[0].Dims)
	if k.p.Resid {
		if err := checkResidual(in, out); err != nil {
			return nil, err
		}
		if k.p.ZType != ir.Undefined {
			if err := checkResidualType(in, k.p.ZType); err != nil {
				return nil, err
			}
		}
	}
	return [][]int64{out}, nil
}

// gemmRun: items are (feature block, activation-row chunk) pairs.
type gemmRun struct {
	k      *gemmKernel
	m      int
	x32    []float32
	x8     []byte
	e      f32.Epilogue
	sl     slots
	chunk  int
	nch    int
	fblock int // features per block (a multiple of MR)
	nfb    int
}

func (k *gemmKernel) Run(x *engine.Exec, in, out []*ir.Tensor) error {
	m, err := k.rows(in[0].Dims)
	if err != nil {
		return err
	}
	r := k.runs.get()
	defer k.runs.put(r)
	p := &k.p
	*r = gemmRun{k: k, m: m}
	switch p.Prec {
	case "f32":
		r.x32 = in[0].F32()
	case "i8", "f8":
		r.x8 = in[0].Data
	}
	// Y[m][n] is tile (row n, column m).
	r.e = f32.Epilogue{RS: 1, CS: p.N, Act: p.Act.get(), Q: p.Quant.layer(), QChannelRow: true, Bias: k.bias, BiasMode: p.Bias,
		Alpha: p.Alpha, Beta: p.Beta, Scaled: p.Alpha != 1 || p.Beta != 1}
	switch out[0].DType {
	case ir.Float32:
		r.e.Out = out[0].F32()
	case ir.Float16:
		r.e.Out16 = out[0].U16()
	default:
		r.e.QOut = out[0].Data
	}
	if p.Resid && p.Prec != "f16" && k.ztab == nil {
		r.e.Resid = in[1].F32()
	}
	if m == 0 {
		return nil
	}
	mr, nr, esize := f32.MR, f32.NR, 4
	if p.Prec == "i8" {
		mr, nr, esize = i8.MR, i8.NR, 2
	}
	chunk := max(nr, (128<<10)/(esize*max(p.K, 1))/nr*nr)
	chunk = min(chunk, (m+nr-1)/nr*nr)
	r.chunk, r.nch = chunk, (m+chunk-1)/chunk
	r.fblock, r.nfb = (p.N+mr-1)/mr*mr, 1
	if r.nch < 2*x.Threads { // few activation rows (small batch): split the features too
		want := (2*x.Threads + r.nch - 1) / r.nch
		r.fblock = max(mr, ((p.N+want-1)/want+mr-1)/mr*mr)
		r.nfb = (p.N + r.fblock - 1) / r.fblock
	}
	items := r.nch * r.nfb
	slot := esize * pack.BSize(p.K, chunk, nr)
	if p.Prec == "i8" {
		slot = i8SlotBytes(p.K, chunk)
	}
	workers := min(x.Threads, items)
	if k.ztab != nil { // residual codes: their values first
		var prefix []byte
		prefix, r.sl = newSlotsPrefix(x, 4*len(in[1].Data), workers, slot)
		r.e.Resid = decodeResidual(in[1], k.ztab, prefix)
		run(x, items, r)
		return nil
	}
	if p.Prec != "f16" {
		r.sl = newSlots(x, workers, slot)
		run(x, items, r)
		return nil
	}
	// FP16: float32 copies of the activations and residual, float32
	// math, one rounding to float16 at the store.
	nx, nz := len(in[0].Data)/2, 0
	if p.Resid {
		nz = len(in[1].Data) / 2
	}
	var prefix []byte
	prefix, r.sl = newSlotsPrefix(x, 4*(nx+nz), workers, slot)
	r.x32 = bytesAs[float32](prefix, nx)
	halfToFloat(r.x32, in[0].U16())
	if p.Resid {
		r.e.Resid = bytesAs[float32](prefix[4*nx:], nz)
		halfToFloat(r.e.Resid, in[1].U16())
	}
	run(x, items, r)
	return nil
}

func (r *gemmRun) Do(w, item int) {
	k, p := r.k, &r.k.p
	fb, ch := item/r.nch, item%r.nch
	j0 := ch * r.chunk
	cols := min(r.chunk, r.m-j0)
	f0 := fb * r.fblock
	nf := min(r.fblock, p.N-f0)
	// B[kk][j] = A[j0+j][kk] (A is m×K), or A[kk][j0+j] when transposed (K×m).
	rs, cs, off := 1, p.K, j0*p.K
	if p.TransA {
		rs, cs, off = r.m, 1, j0
	}
	if cols < f32.NR/2 && p.Prec != "f8" { // one or two activation rows: matrix-vector products
		for j := 0; j < cols; j++ {
			xo, xs := (j0+j)*p.K, 1
			if p.TransA {
				xo, xs = j0+j, r.m
			}
			if p.Prec != "i8" {
				f32.Gemv(p.K, k.w32[f0*p.K:(f0+nf+f32.MR-1)/f32.MR*f32.MR*p.K], nf, r.x32[xo:], xs, f0, j0+j, &r.e)
				continue
			}
			xv, _ := i8Slot(r.sl, w, p.K, cols)
			for kk := range p.K {
				xv[kk] = k.lut16[r.x8[xo+kk*xs]]
			}
			i8.Gemv(p.K, k.w8[f0*p.K:(f0+nf+i8.MR-1)/i8.MR*i8.MR*p.K], nf, xv, f0, j0+j, &r.e)
		}
		return
	}
	switch p.Prec {
	case "f32", "f8", "f16":
		bp := slotAs[float32](r.sl, w, pack.BSize(p.K, cols, f32.NR))
		if p.Prec != "f8" {
			pack.B(bp, r.x32[off:], (*[256]float32)(nil), p.K, cols, rs, cs, f32.NR)
		} else {
			pack.B(bp, r.x8[off:], k.lut32, p.K, cols, rs, cs, f32.NR)
		}
		f32.Gemm(p.K, k.w32[f0*p.K:(f0+nf+f32.MR-1)/f32.MR*f32.MR*p.K], nf, bp, cols, f0, j0, &r.e)
	case "i8":
		bp, pairs := i8Slot(r.sl, w, p.K, cols)
		pack.B(bp, r.x8[off:], k.lut16, p.K, cols, rs, cs, i8.NR)
		i8.Gemm(p.K, k.w8[f0*p.K:(f0+nf+i8.MR-1)/i8.MR*i8.MR*p.K], nf, bp, cols, f0, j0, &r.e, pairs)
	}
}
