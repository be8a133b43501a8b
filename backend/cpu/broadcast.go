package cpu

import (
	"fmt"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// FP32 Add/Sub/Mul/Div and Where with numpy broadcasting of any shapes, for
// the layers the elementwise tactic (equal shapes, a scalar or a row) does
// not take: a transformer's attention mask Where(cond [B,1,S,S], 0, -inf)
// and its embedding sums [B,S,H] + [1,S,H] (shapes that differ only by a
// symbolic batch). Results equal the reference bit for bit: float32 +, −,
// ×, ÷ round as the reference's float64 operation rounded to float32, and
// Where copies. The output is walked row by row along its last axis, each
// input with its own strides (0 on broadcast axes).
type broadcastBackend struct{}

func (broadcastBackend) Name() string  { return "cpu" }
func (broadcastBackend) Priority() int { return 10 }

func init() { engine.RegisterBackend(broadcastBackend{}) }

func (broadcastBackend) Tactics(l *engine.Layer) []engine.Tactic {
	n := l.Node
	if disabled || n.Domain != "" || l.Precision != engine.FP32 {
		return nil
	}
	switch n.OpType {
	case "Add", "Sub", "Mul", "Div", "Where":
		return []engine.Tactic{broadcastTactic{}}
	}
	return nil
}

type broadcastParams struct {
	Op string `json:"op"`
}

type broadcastTactic struct{}

func (broadcastTactic) Name() string { return "broadcast.f32" }

func (broadcastTactic) Lower(l *engine.Layer) (*engine.Lowered, error) {
	n := l.Node
	first := 0
	if n.OpType == "Where" {
		if len(n.Inputs) != 3 || inDType(l, 0) != ir.Bool {
			return nil, fmt.Errorf("%s: Where needs a bool condition and two values", n)
		}
		first = 1
	} else if len(n.Inputs) != 2 {
		return nil, fmt.Errorf("%s: want two inputs", n)
	}
	for i := first; i < len(n.Inputs); i++ {
		if inDType(l, i) != ir.Float32 {
			return nil, fmt.Errorf("%s: fp32 only", n)
		}
	}
	for i := range n.Inputs {
		if l.In[i] == nil || !l.In[i].HasShape || len(l.In[i].Shape) > maxRank {
			return nil, fmt.Errorf("%s: input ranks must be known (at most %d)", n, maxRank)
		}
	}
	return lowered("cpu.broadcast", &broadcastParams{Op: n.OpType}, nil, nil)
}

type broadcastKernel struct {
	op   string
	runs runPool[broadcastRun]
}

func init() {
	register("cpu.broadcast", func(p *broadcastParams, _ []*ir.Tensor) (engine.Kernel, error) {
		switch p.Op {
		case "Add", "Sub", "Mul", "Div", "Where":
			return &broadcastKernel{op: p.Op}, nil
		}
		return nil, fmt.Errorf("cpu.broadcast: unknown op %q", p.Op)
	})
}

func (k *broadcastKernel) Shapes(in []*ir.Tensor) ([][]int64, error) {
	dims := make([][]int64, len(in))
	for i, t := range in {
		dims[i] = t.Dims
	}
	out, err := ops.BroadcastDims(dims...)
	if err != nil {
		return nil, err
	}
	return [][]int64{out}, nil
}

// broadcastRun walks the output in rows of its last axis.
type broadcastRun struct {
	k       *broadcastKernel
	out     []int64
	st      [3][maxRank]int // element strides of each input per output axis
	inner   int             // last-axis length
	rows    int
	per     int
	cond    []byte
	a, b, y []float32
}

func (k *broadcastKernel) Run(x *engine.Exec, in, out []*ir.Tensor) error {
	r := k.runs.get()
	defer k.runs.put(r)
	*r = broadcastRun{k: k, out: out[0].Dims, y: out[0].F32()}
	vals := in
	if k.op == "Where" {
		r.cond, vals = in[0].Data, in[1:]
	}
	r.a, r.b = vals[0].F32(), vals[1].F32()
	rank := len(r.out)
	for t, tt := range in {
		stride := 1
		d := tt.Dims
		for ax := rank - 1; ax >= 0; ax-- {
			j := ax - (rank - len(d))
			if j < 0 {
				break
			}
			if d[j] != 1 {
				r.st[t][ax] = stride
			}
			stride *= int(d[j])
		}
	}
	if len(r.y) == 0 {
		return nil
	}
	r.inner = 1
	if rank > 0 {
		r.inner = int(r.out[rank-1])
	}
	r.rows = len(r.y) / r.inner
	r.per = max(1, (1<<14)/r.inner)
	run(x, (r.rows+r.per-1)/r.per, r)
	return nil
}

// Do computes a block of output rows.
func (r *broadcastRun) Do(_, item int) {
	rank := len(r.out)
	where := r.k.op == "Where"
	// Inputs in kernel order: Where (cond, x, y), else (a, b).
	ia, ib := 0, 1
	if where {
		ia, ib = 1, 2
	}
	for row := item * r.per; row < min(r.rows, (item+1)*r.per); row++ {
		var off [3]int
		rem := row
		for ax := rank - 2; ax >= 0; ax-- {
			d := int(r.out[ax])
			idx := rem % d
			rem /= d
			for t := range off {
				off[t] += idx * r.st[t][ax]
			}
		}
		y := r.y[row*r.inner : (row+1)*r.inner]
		var sa, sb int
		if rank > 0 {
			sa, sb = r.st[ia][rank-1], r.st[ib][rank-1]
		}
		oa, ob := off[ia], off[ib]
		if where {
			c, sc := r.cond[off[0]:], 0
			if rank > 0 {
				sc = r.st[0][rank-1]
			}
			for j := range y {
				if c[j*sc] != 0 {
					y[j] = r.a[oa+j*sa]
				} else {
					y[j] = r.b[ob+j*sb]
				}
			}
			continue
		}
		a, b := r.a[oa:], r.b[ob:]
		switch r.k.op {
		case "Add":
			for j := range y {
				y[j] = a[j*sa] + b[j*sb]
			}
		case "Sub":
			for j := range y {
				y[j] = a[j*sa] - b[j*sb]
			}
		case "Mul":
			for j := range y {
				y[j] = a[j*sa] * b[j*sb]
			}
		case "Div":
			for j := range y {
				y[j] = a[j*sa] / b[j*sb]
			}
		}
	}
}
