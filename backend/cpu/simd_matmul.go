package cpu

import (
	"fmt"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/kernels/avx"
	"github.com/kilnml/kiln/kernels/parallel"
	"github.com/kilnml/kiln/ops"
)

// FP32 MatMul of two activations (attention's Q·Kᵀ and P·V) on
// kernels/avx: numpy batching with broadcast batch axes; per item (batch
// entry, block of rows) A's rows and all of B are packed into the worker's
// scratch, then the packed GEMM runs with no epilogue.
var simdMatMulIDs = isaIDs{fam: famF32, ids: [3]string{"cpu.matmul.avx512", "cpu.matmul.avx2", "cpu.matmul.generic"}}

type simdMatMulTactic struct{}

func (simdMatMulTactic) Name() string { return "matmul." + simdMatMulIDs.tag("avx512") + ".f32" }

func (simdMatMulTactic) Lower(l *engine.Layer) (*engine.Lowered, error) {
	n := l.Node
	if n.Domain != "" || len(n.Inputs) != 2 || inDType(l, 0) != ir.Float32 || inDType(l, 1) != ir.Float32 {
		return nil, fmt.Errorf("%s: plain fp32 MatMul only", n)
	}
	for i := 0; i < 2; i++ {
		if l.In[i] == nil || !l.In[i].HasShape || len(l.In[i].Shape) < 2 {
			return nil, fmt.Errorf("%s: both inputs must be known matrices or batches of them", n)
		}
	}
	return lowered(simdMatMulIDs.now(), &struct{}{}, nil, []int{0, 1})
}

type simdMatMulKernel struct {
	builtFor // the variant the plan names (simd_isa.go)
	runs     runPool[simdMatMulRun]
}

func init() {
	registerISA(simdMatMulIDs, func(_ *struct{}, w []*ir.Tensor) (engine.Kernel, error) {
		if len(w) != 0 {
			return nil, fmt.Errorf("%s: unexpected weights", simdMatMulIDs)
		}
		return &simdMatMulKernel{}, nil
	})
}

// dims checks the operands and returns the batch dims and m, k, n.
func (k *simdMatMulKernel) dims(a, b []int64) (batch []int64, m, kk, n int, err error) {
	if len(a) < 2 || len(b) < 2 {
		return nil, 0, 0, 0, fmt.Errorf("operands %v and %v must have rank 2 or more", a, b)
	}
	m, kk = int(a[len(a)-2]), int(a[len(a)-1])
	if int(b[len(b)-2]) != kk {
		return nil, 0, 0, 0, fmt.Errorf("operands %v and %v do not multiply", a, b)
	}
	n = int(b[len(b)-1])
	batch, err = ops.BroadcastDims(a[:len(a)-2], b[:len(b)-2])
	return batch, m, kk, n, err
}

func (k *simdMatMulKernel) Shapes(in []*ir.Tensor) ([][]int64, error) {
	batch, m, _, n, err := k.dims(in[0].Dims, in[1].Dims)
	if err != nil {
		return nil, err
	}
	return [][]int64{append(append([]int64{}, batch...), int64(m), int64(n))}, nil
}

type simdMatMulRun struct {
	a, b, y           []float32
	ad, bd, batch     []int64
	m, k, n           int
	rows, nrb, nbatch int
	sl                slots
}

func (k *simdMatMulKernel) Run(x *engine.Exec, in, out []*ir.Tensor) error {
	batch, m, kk, n, err := k.dims(in[0].Dims, in[1].Dims)
	if err != nil {
		return err
	}
	nb := 1
	for _, d := range batch {
		nb *= int(d)
	}
	if nb == 0 || m == 0 || n == 0 {
		return nil
	}
	r := k.runs.get()
	defer k.runs.put(r)
	*r = simdMatMulRun{a: in[0].F32(), b: in[1].F32(), y: out[0].F32(), ad: in[0].Dims, bd: in[1].Dims, batch: batch,
		m: m, k: kk, n: n, nbatch: nb}
	th := simdThreads(x.Threads, nb*m*kk*n)
	if kk == 0 {
		clear(r.y)
		return nil
	}
	r.rows = (m + avx.MR - 1) / avx.MR * avx.MR
	for nb*((m+r.rows-1)/r.rows) < 2*th && r.rows > avx.MR {
		r.rows = (r.rows/2 + avx.MR - 1) / avx.MR * avx.MR
	}
	r.rows = min(r.rows, 64)
	r.nrb = (m + r.rows - 1) / r.rows
	items := nb * r.nrb
	r.sl = newSlots(x, min(th, items), 4*(avx.ASize(r.rows, kk)+avx.BSize(kk, n)))
	parallel.Run(th, items, r)
	return nil
}

// offset maps an output batch index to the element offset of an operand
// with dims d (broadcast axes of size 1 stay at 0).
func (r *simdMatMulRun) offset(bi int, d []int64) int {
	mat := int(d[len(d)-2] * d[len(d)-1])
	off, stride := 0, mat
	rank := len(d) - 2
	for ax := len(r.batch) - 1; ax >= 0; ax-- {
		idx := bi % int(r.batch[ax])
		bi /= int(r.batch[ax])
		if j := ax - (len(r.batch) - rank); j >= 0 {
			if d[j] != 1 {
				off += idx * stride
			}
			stride *= int(d[j])
		}
	}
	return off
}

func (r *simdMatMulRun) Do(w, item int) {
	bi, rb := item/r.nrb, item%r.nrb
	i0 := rb * r.rows
	rows := min(r.rows, r.m-i0)
	asz, bsz := avx.ASize(rows, r.k), avx.BSize(r.k, r.n)
	s := slotAs[float32](r.sl, w, avx.ASize(r.rows, r.k)+bsz)
	ap, bp := s[:asz], s[avx.ASize(r.rows, r.k):]
	ao, bo := r.offset(bi, r.ad), r.offset(bi, r.bd)
	avx.PackA(ap, r.a[ao+i0*r.k:ao+(i0+rows)*r.k], rows, r.k, r.k, 1)
	packB(bp, r.b[bo:bo+r.k*r.n], r.k, r.n)
	e := avx.Epi{}
	avx.Gemm(r.k, ap, rows, bp, 0, r.n, r.y[(bi*r.m+i0)*r.n:], r.n, &e, i0, 0)
}

func packB(dst, b []float32, k, n int) {
	for t := 0; t < n; t += avx.NR {
		strip := dst[t*k : t*k+avx.NR*k]
		cols := min(avx.NR, n-t)
		for p := 0; p < k; p++ {
			copy(strip[p*avx.NR:p*avx.NR+cols], b[p*n+t:p*n+t+cols])
		}
	}
}
