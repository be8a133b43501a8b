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

// kiln.DynQMatMul: per token block, a worker computes each row's dynamic
// scale and int8 codes (ops/kilnq's RowScale/QuantizeRow), packs them as
// the B side of the int8 GEMM (weights, packed at build time, are A), gets
// float32(exact acc) per element and applies kilnq's epilogue with that
// row's scale: bit-exact with the reference.
type dynqParams struct {
	K       int       `json:"k"`
	N       int       `json:"n"`
	WScales []float32 `json:"w_scales"`
	Bias    bool      `json:"bias,omitempty"`
	Resid   bool      `json:"resid,omitempty"`
	Act     actParam  `json:"act"`
}

type dynqTactic struct{}

func (dynqTactic) Name() string { return "dynq.i8" }

func (dynqTactic) Lower(l *engine.Layer) (*engine.Lowered, error) {
	n := l.Node
	if inDType(l, 0) != ir.Float32 || !isConst(l, 1) || l.Const[1].DType != ir.Int8 || l.Const[1].Rank() != 2 {
		return nil, fmt.Errorf("%s: want float32 A and constant int8 [K, N] weights", n)
	}
	w := l.Const[1]
	lay, err := kilnq.DynQLayer(n)
	if err != nil {
		return nil, err
	}
	p := dynqParams{K: int(w.Dims[0]), N: int(w.Dims[1]), WScales: lay.WScales, Act: actParam(lay.Act)}
	if p.K > i8.MaxK {
		return nil, fmt.Errorf("%s: depth %d exceeds the int8 GEMM's %d", n, p.K, i8.MaxK)
	}
	if len(p.WScales) != 1 && len(p.WScales) != p.N {
		return nil, fmt.Errorf("%s: %d w_scales for %d columns", n, len(p.WScales), p.N)
	}
	packed := ir.NewTensor(ir.Int8, []int64{int64(pack.ASize(p.N, p.K, i8.MR))})
	copy(packed.I8(), i8.PackWeights(w.I8(), p.N, p.K, true))
	weights := []*ir.Tensor{packed}
	inputs := []int{0}
	if hasInput(n, 2) {
		if !isConst(l, 2) || l.Const[2].DType != ir.Float32 || l.Const[2].Len() != int64(p.N) {
			return nil, fmt.Errorf("%s: the bias must be a constant float32[%d]", n, p.N)
		}
		p.Bias = true
		weights = append(weights, l.Const[2].Clone())
	}
	if hasInput(n, 3) {
		p.Resid = true
		inputs = append(inputs, 3)
	}
	return lowered("cpu.dynqmatmul", &p, weights, inputs)
}

type dynqKernel struct {
	p    dynqParams
	w    []int8
	bias []float32
	lay  kilnq.Layer
	runs runPool[dynqRun]
}

func init() {
	register("cpu.dynqmatmul", func(p *dynqParams, w []*ir.Tensor) (engine.Kernel, error) {
		if len(w) < 1 || w[0].DType != ir.Int8 || w[0].Len() != int64(pack.ASize(p.N, p.K, i8.MR)) || (p.Bias && len(w) < 2) {
			return nil, fmt.Errorf("cpu.dynqmatmul: bad weights")
		}
		k := &dynqKernel{p: *p, w: w[0].I8(), lay: kilnq.Layer{XScale: 1, WScales: p.WScales, Act: kiln.Activation(p.Act), OutType: ir.Float32}}
		if p.Bias {
			k.bias = w[1].F32()
		}
		return k, nil
	})
}

func (k *dynqKernel) Shapes(in []*ir.Tensor) ([][]int64, error) {
	a := in[0].Dims
	if len(a) < 1 || a[len(a)-1] != int64(k.p.K) {
		return nil, fmt.Errorf("A %v does not end in depth %d", a, k.p.K)
	}
	out := append(append([]int64{}, a[:len(a)-1]...), int64(k.p.N))
	if k.p.Resid && (len(in) < 2 || !sameDims(in[1].Dims, out)) {
		return nil, fmt.Errorf("the residual does not match the output %v", out)
	}
	return [][]int64{out}, nil
}

type dynqRun struct {
	k                  *dynqKernel
	a, y, z            []float32
	rows, chunk        int
	sl                 slots
	offB, offP, offAcc int // byte offsets inside a worker slot
}

const dynqChunk = 32

func align64(n int) int { return (n + 63) &^ 63 }

func (k *dynqKernel) Run(x *engine.Exec, in, out []*ir.Tensor) error {
	r := k.runs.get()
	defer k.runs.put(r)
	K, N := k.p.K, k.p.N
	*r = dynqRun{k: k, a: in[0].F32(), y: out[0].F32(), chunk: dynqChunk}
	if k.p.Resid {
		r.z = in[1].F32()
	}
	r.rows = len(r.y) / max(N, 1)
	if r.rows == 0 || N == 0 {
		return nil
	}
	if (r.rows+r.chunk-1)/r.chunk < 2*x.Threads {
		r.chunk = max(1, (r.rows+2*x.Threads-1)/(2*x.Threads))
	}
	items := (r.rows + r.chunk - 1) / r.chunk
	codes := align64(r.chunk * K)
	r.offB = codes
	r.offP = r.offB + align64(2*pack.BSize(K, r.chunk, i8.NR))
	r.offAcc = r.offP + align64(8*i8.PairsSize(K))
	slot := r.offAcc + 4*r.chunk*N + 4*r.chunk
	r.sl = newSlots(x, min(x.Threads, items), slot)
	run(x, items, r)
	return nil
}

var int8Codes = i8.CodeTable(false, 0)

func (r *dynqRun) Do(w, item int) {
	k := r.k
	K, N := k.p.K, k.p.N
	t0 := item * r.chunk
	rows := min(r.chunk, r.rows-t0)
	buf := r.sl.buf[w*r.sl.slot : (w+1)*r.sl.slot]
	codes := bytesAs[int8](buf, r.chunk*K)
	bp := bytesAs[int16](buf[r.offB:], pack.BSize(K, r.chunk, i8.NR))
	pairs := bytesAs[int64](buf[r.offP:], i8.PairsSize(K))
	acc := bytesAs[float32](buf[r.offAcc:], r.chunk*N+r.chunk)
	scales := acc[r.chunk*N:]
	for t := 0; t < rows; t++ {
		row := r.a[(t0+t)*K : (t0+t+1)*K]
		scales[t] = kilnq.RowScale(row)
		kilnq.QuantizeRow(codes[t*K:(t+1)*K], row, scales[t])
	}
	if K == 0 {
		clear(acc[:rows*N])
	} else {
		pack.B(bp, codes, int8Codes, K, rows, 1, K, i8.NR)
		e := f32.Epilogue{Out: acc[:r.chunk*N], RS: 1, CS: N}
		i8.Gemm(K, k.w, N, bp, rows, 0, 0, &e, pairs)
	}
	lay := k.lay
	for t := 0; t < rows; t++ {
		lay.XScale = scales[t]
		yo := (t0 + t) * N
		for c := 0; c < N; c++ {
			var b, z float32
			if k.bias != nil {
				b = k.bias[c]
			}
			if r.z != nil {
				z = r.z[yo+c]
			}
			r.y[yo+c] = lay.Epilogue(acc[t*N+c], c, b, z)
		}
	}
}
