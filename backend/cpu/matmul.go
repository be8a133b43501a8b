package cpu

import (
	"fmt"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/kernels/f32"
	"github.com/kilnml/kiln/kernels/pack"
	"github.com/kilnml/kiln/ops/kiln"
)

// MatMul of two activations (attention's Q·Kᵀ and P·V): numpy batching with
// broadcast leading axes; per batch item and row chunk a worker packs B
// (features as rows) and its rows of A, then runs the float32 GEMM.
type matmulParams struct {
	Bias  bool     `json:"bias,omitempty"`
	Resid bool     `json:"resid,omitempty"`
	Act   actParam `json:"act"`
}

type matmulTactic struct{}

func (matmulTactic) Name() string { return "matmul.f32" }

func (matmulTactic) Lower(l *engine.Layer) (*engine.Lowered, error) {
	n := l.Node
	var p matmulParams
	if inDType(l, 0) != ir.Float32 || inDType(l, 1) != ir.Float32 {
		return nil, fmt.Errorf("%s: fp32 MatMul over %s×%s", n, inDType(l, 0), inDType(l, 1))
	}
	for i := 0; i < 2; i++ {
		if l.In[i] == nil || !l.In[i].HasShape || len(l.In[i].Shape) < 2 {
			return nil, fmt.Errorf("%s: both inputs must be known matrices or batches of them", n)
		}
	}
	var weights []*ir.Tensor
	inputs := []int{0, 1}
	if n.Domain == "kiln" {
		var err error
		a, err := kiln.ActivationOf(n)
		if err != nil {
			return nil, err
		}
		p.Act = actParam(a)
		if hasInput(n, 2) {
			if !isConst(l, 2) || l.Const[2].DType != ir.Float32 || len(l.Const[2].Dims) != 1 {
				return nil, fmt.Errorf("%s: the bias must be a constant float32 vector", n)
			}
			p.Bias = true
			weights = append(weights, l.Const[2].Clone())
		}
		if hasInput(n, 3) {
			p.Resid = true
			inputs = append(inputs, 3)
		}
	}
	return lowered("cpu.matmul", &p, weights, inputs)
}

type matmulKernel struct {
	p    matmulParams
	bias []float32
	runs runPool[matmulRun]
}

func init() { register("cpu.matmul", newMatmulKernel) }

func newMatmulKernel(p *matmulParams, w []*ir.Tensor) (engine.Kernel, error) {
	k := &matmulKernel{p: *p}
	if p.Bias {
		if len(w) != 1 || w[0].DType != ir.Float32 {
			return nil, fmt.Errorf("cpu.matmul: want a float32 bias")
		}
		k.bias = w[0].F32()
	}
	return k, nil
}

const maxRank = 8

// mmShape is a resolved batched product.
type mmShape struct {
	rank           int
	out            [maxRank]int64 // output batch dims
	as, bs         [maxRank]int   // batch strides of A and B in elements (0: broadcast)
	batch, M, K, N int
}

func (k *matmulKernel) shape(ad, bd []int64) (mmShape, error) {
	var s mmShape
	if len(ad) < 2 || len(bd) < 2 || len(ad) > maxRank || len(bd) > maxRank {
		return s, fmt.Errorf("MatMul of %v and %v: want ranks 2..%d", ad, bd, maxRank)
	}
	s.M, s.K, s.N = int(ad[len(ad)-2]), int(ad[len(ad)-1]), int(bd[len(bd)-1])
	if int(bd[len(bd)-2]) != s.K {
		return s, fmt.Errorf("MatMul of %v and %v: inner dimensions differ", ad, bd)
	}
	if k.bias != nil && len(k.bias) != s.N {
		return s, fmt.Errorf("bias has %d entries for %d columns", len(k.bias), s.N)
	}
	s.rank = max(len(ad), len(bd)) - 2
	sa, sb := s.M*s.K, s.K*s.N
	s.batch = 1
	for i := s.rank - 1; i >= 0; i-- {
		da, db := int64(1), int64(1)
		if j := i - (s.rank - (len(ad) - 2)); j >= 0 {
			da = ad[j]
		}
		if j := i - (s.rank - (len(bd) - 2)); j >= 0 {
			db = bd[j]
		}
		if da != db && da != 1 && db != 1 {
			return s, fmt.Errorf("MatMul of %v and %v: batch dimensions do not broadcast", ad, bd)
		}
		s.out[i] = max(da, db)
		if da != 1 {
			s.as[i] = sa
		}
		if db != 1 {
			s.bs[i] = sb
		}
		sa *= int(da)
		sb *= int(db)
		s.batch *= int(s.out[i])
	}
	return s, nil
}

func (k *matmulKernel) Shapes(in []*ir.Tensor) ([][]int64, error) {
	s, err := k.shape(in[0].Dims, in[1].Dims)
	if err != nil {
		return nil, err
	}
	out := append(append([]int64{}, s.out[:s.rank]...), int64(s.M), int64(s.N))
	if k.p.Resid && (len(in) < 3 || in[2] == nil || !sameDims(in[2].Dims, out)) {
		return nil, fmt.Errorf("the residual does not match the output %v", out)
	}
	return [][]int64{out}, nil
}

type matmulRun struct {
	k          *matmulKernel
	s          mmShape
	a, b, y, z []float32
	sl         slots
	chunk, nch int
}

func (k *matmulKernel) Run(x *engine.Exec, in, out []*ir.Tensor) error {
	s, err := k.shape(in[0].Dims, in[1].Dims)
	if err != nil {
		return err
	}
	r := k.runs.get()
	defer k.runs.put(r)
	*r = matmulRun{k: k, s: s, a: in[0].F32(), b: in[1].F32(), y: out[0].F32()}
	if k.p.Resid {
		r.z = in[2].F32()
	}
	if s.batch == 0 || s.M == 0 || s.N == 0 {
		return nil
	}
	if s.K == 0 {
		clear(r.y) // then the epilogue below adds bias/residual/activation
	}
	r.chunk = min((s.M+f32.NR-1)/f32.NR*f32.NR, max(f32.NR, 256/f32.NR*f32.NR))
	if s.batch*((s.M+r.chunk-1)/r.chunk) < 2*x.Threads {
		r.chunk = max(f32.NR, ((s.M+1)/2+f32.NR-1)/f32.NR*f32.NR)
	}
	r.nch = (s.M + r.chunk - 1) / r.chunk
	items := s.batch * r.nch
	r.sl = newSlots(x, min(x.Threads, items), 4*(pack.ASize(s.N, s.K, f32.MR)+pack.BSize(s.K, r.chunk, f32.NR)))
	run(x, items, r)
	return nil
}

func (r *matmulRun) Do(w, item int) {
	s := &r.s
	bi, ch := item/r.nch, item%r.nch
	// Offsets of batch item bi in A and B (broadcast axes stride 0).
	aoff, boff, rem := 0, 0, bi
	for i := s.rank - 1; i >= 0; i-- {
		d := int(s.out[i])
		idx := rem % d
		rem /= d
		aoff += idx * s.as[i]
		boff += idx * s.bs[i]
	}
	j0 := ch * r.chunk
	cols := min(r.chunk, s.M-j0)
	buf := slotAs[float32](r.sl, w, pack.ASize(s.N, s.K, f32.MR)+pack.BSize(s.K, r.chunk, f32.NR))
	ap := buf[:pack.ASize(s.N, s.K, f32.MR)]
	bp := buf[len(ap):]
	// A side: Bᵀ (features × depth); B side: rows j0.. of A as columns.
	pack.A(ap, r.b[boff:], (*[256]float32)(nil), s.N, s.K, 1, s.N, f32.MR)
	pack.B(bp, r.a[aoff+j0*s.K:], (*[256]float32)(nil), s.K, cols, 1, s.K, f32.NR)
	yo := bi * s.M * s.N
	e := f32.Epilogue{Out: r.y[yo : yo+s.M*s.N], RS: 1, CS: s.N, Act: r.k.p.Act.get()}
	if r.k.bias != nil {
		e.Bias, e.BiasMode = r.k.bias, f32.BiasRow
	}
	if r.z != nil {
		e.Resid = r.z[yo : yo+s.M*s.N]
	}
	f32.Gemm(s.K, ap, s.N, bp, cols, 0, j0, &e)
}
