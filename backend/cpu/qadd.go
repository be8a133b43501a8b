package cpu

import (
	"fmt"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/kernels/avx"
	"github.com/kilnml/kiln/ops/kilnq"
)

// kiln.QAdd (ops/kilnq: ONNX Runtime's DQ + DQ → Add → [Relu] → Q residual
// add on the codes) for inputs of equal shapes: avx.QAdd over chunks of
// qaddChunk codes, threaded through the pool (neighbouring chunks to the
// same worker: the pool hands out contiguous spans). Bit-exact with the
// reference kernel.
type qaddParams struct {
	AScale float32  `json:"a_scale"`
	BScale float32  `json:"b_scale"`
	YScale float32  `json:"y_scale"`
	AZero  int32    `json:"a_zero"`
	BZero  int32    `json:"b_zero"`
	YZero  int32    `json:"y_zero"`
	Relu   bool     `json:"relu"`
	AType  ir.DType `json:"a_type"`
	BType  ir.DType `json:"b_type"`
	YType  ir.DType `json:"y_type"`
}

type qaddTactic struct{}

func (qaddTactic) Name() string { return "qadd.i8" }

func (qaddTactic) Lower(l *engine.Layer) (*engine.Lowered, error) {
	n := l.Node
	if len(n.Inputs) != 2 || len(l.In) != 2 || l.In[0] == nil || l.In[1] == nil {
		return nil, fmt.Errorf("%s: want two inputs of known types", n)
	}
	a, b := l.In[0], l.In[1]
	if !a.HasShape || !b.HasShape || !a.Shape.Equal(b.Shape) {
		return nil, fmt.Errorf("%s: only inputs of equal shapes", n)
	}
	q, err := kilnq.ParseQAdd(n, a.DType, b.DType)
	if err != nil {
		return nil, err
	}
	p := qaddParams{AScale: q.AScale, BScale: q.BScale, YScale: q.YScale, AZero: q.AZero, BZero: q.BZero, YZero: q.YZero,
		Relu: q.Relu, AType: q.AType, BType: q.BType, YType: q.YType}
	return lowered("cpu.qadd", &p, nil, nil)
}

type qaddKernel struct {
	p    qaddParams
	q    avx.QAddParams
	runs runPool[qaddRun]
}

func init() {
	register("cpu.qadd", func(p *qaddParams, _ []*ir.Tensor) (engine.Kernel, error) {
		for _, dt := range []ir.DType{p.AType, p.BType, p.YType} {
			if dt != ir.Int8 && dt != ir.Uint8 {
				return nil, fmt.Errorf("cpu.qadd: %s codes, want int8 or uint8", dt)
			}
		}
		if !(p.AScale > 0 && p.BScale > 0 && p.YScale > 0) {
			return nil, fmt.Errorf("cpu.qadd: scales %v/%v/%v must be positive", p.AScale, p.BScale, p.YScale)
		}
		return &qaddKernel{p: *p, q: avx.NewQAddParams(p.AScale, p.BScale, p.YScale, p.AZero, p.BZero, p.YZero,
			p.AType == ir.Int8, p.BType == ir.Int8, p.YType == ir.Int8, p.Relu)}, nil
	})
}

func (k *qaddKernel) Shapes(in []*ir.Tensor) ([][]int64, error) {
	if in[0].DType != k.p.AType || in[1].DType != k.p.BType {
		return nil, fmt.Errorf("inputs are %s and %s, want %s and %s", in[0].DType, in[1].DType, k.p.AType, k.p.BType)
	}
	if !sameDims(in[0].Dims, in[1].Dims) {
		return nil, fmt.Errorf("input shapes %v and %v differ", in[0].Dims, in[1].Dims)
	}
	return [][]int64{in[0].Dims}, nil
}

// qaddChunk codes per item: ~4 µs of work on one AVX-512 core.
const qaddChunk = 16 << 10

type qaddRun struct {
	k         *qaddKernel
	a, b, out []byte
}

func (k *qaddKernel) Run(x *engine.Exec, in, out []*ir.Tensor) error {
	r := k.runs.get()
	defer k.runs.put(r)
	*r = qaddRun{k: k, a: in[0].Data, b: in[1].Data, out: out[0].Data}
	items := (len(r.out) + qaddChunk - 1) / qaddChunk
	if items <= 1 {
		r.Do(0, 0)
		return nil
	}
	run(x, items, r)
	return nil
}

func (r *qaddRun) Do(_, item int) {
	lo := item * qaddChunk
	hi := min(len(r.out), lo+qaddChunk)
	if lo < hi {
		avx.QAdd(r.out[lo:hi], r.a[lo:hi], r.b[lo:hi], &r.k.q)
	}
}
