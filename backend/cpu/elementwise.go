package cpu

import (
	"fmt"
	"math"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
)

// FP32 elementwise and reduction layers that fusion leaves standing:
// Add/Sub/Mul/Div (and a two-input Sum, as Add) of equal shapes or with a
// one-element operand,
// GlobalAveragePool and Softmax along the last axis. They match the
// reference bit for bit: a float32 +, −, ×, ÷ rounds like the reference's
// float64 operation rounded to float32 (double rounding is innocuous for
// these at 53 ≥ 2·24+2 bits), and the reductions accumulate in float64 in
// the reference's order.
type ewParams struct {
	Op string `json:"op"`
}

type ewTactic struct{}

func (ewTactic) Name() string { return "elementwise.f32" }

func (ewTactic) Lower(l *engine.Layer) (*engine.Lowered, error) {
	n := l.Node
	for i := range n.Inputs {
		if inDType(l, i) != ir.Float32 {
			return nil, fmt.Errorf("%s: fp32 only", n)
		}
	}
	op := n.OpType
	switch n.OpType {
	case "Add", "Sub", "Mul", "Div", "Sum":
		if op == "Sum" {
			op = "Add" // two inputs: the reference's float64 sum rounded once is the float32 add
		}
		if len(n.Inputs) != 2 {
			return nil, fmt.Errorf("%s: want two inputs", n)
		}
		a, b := l.In[0], l.In[1]
		if a == nil || b == nil || !a.HasShape || !b.HasShape {
			return nil, fmt.Errorf("%s: shapes unknown", n)
		}
		if !a.Shape.Equal(b.Shape) && !oneElement(a.Shape) && !oneElement(b.Shape) {
			return nil, fmt.Errorf("%s: only equal shapes or a one-element operand", n)
		}
	case "Softmax":
		if l.Opset < 13 {
			return nil, fmt.Errorf("%s: Softmax before opset 13 flattens axes", n)
		}
		axis, err := n.AttrInt("axis", -1)
		if err != nil {
			return nil, err
		}
		if l.In[0] == nil || !l.In[0].HasShape || (axis != -1 && int(axis) != len(l.In[0].Shape)-1) {
			return nil, fmt.Errorf("%s: only the last axis", n)
		}
	case "GlobalAveragePool":
	default:
		return nil, fmt.Errorf("%s: no elementwise kernel", n)
	}
	return lowered("cpu.elementwise", &ewParams{Op: op}, nil, nil)
}

func oneElement(s ir.Shape) bool {
	for _, d := range s {
		if !d.Known() || d.Value != 1 {
			return false
		}
	}
	return true
}

type ewKernel struct {
	op   string
	runs runPool[ewRun]
}

func init() {
	register("cpu.elementwise", func(p *ewParams, _ []*ir.Tensor) (engine.Kernel, error) {
		switch p.Op {
		case "Add", "Sub", "Mul", "Div", "Softmax", "GlobalAveragePool":
			return &ewKernel{op: p.Op}, nil
		}
		return nil, fmt.Errorf("cpu.elementwise: unknown op %q", p.Op)
	})
}

func (k *ewKernel) Shapes(in []*ir.Tensor) ([][]int64, error) {
	for _, t := range in {
		if t.DType != ir.Float32 {
			return nil, fmt.Errorf("input is %s, want float32", t.DType)
		}
	}
	switch k.op {
	case "Softmax":
		if len(in[0].Dims) == 0 {
			return nil, fmt.Errorf("Softmax of a scalar")
		}
		return [][]int64{in[0].Dims}, nil
	case "GlobalAveragePool":
		d := in[0].Dims
		if len(d) < 3 {
			return nil, fmt.Errorf("input has rank %d, want at least 3", len(d))
		}
		out := []int64{d[0], d[1]}
		for range d[2:] {
			out = append(out, 1)
		}
		return [][]int64{out}, nil
	}
	a, b := in[0], in[1]
	switch {
	case sameDims(a.Dims, b.Dims):
		return [][]int64{a.Dims}, nil
	case b.Len() == 1 && len(b.Dims) <= len(a.Dims):
		return [][]int64{a.Dims}, nil
	case a.Len() == 1 && len(a.Dims) <= len(b.Dims):
		return [][]int64{b.Dims}, nil
	}
	return nil, fmt.Errorf("shapes %v and %v: only equal shapes or a one-element operand", a.Dims, b.Dims)
}

// ewRun: items are chunks of elements (binary ops) or of rows/planes.
type ewRun struct {
	k          *ewKernel
	in         []*ir.Tensor
	out        *ir.Tensor
	rows, n    int // reductions: rows of n values
	chunk, len int
	sl         slots
}

func (k *ewKernel) Run(x *engine.Exec, in, out []*ir.Tensor) error {
	r := k.runs.get()
	defer k.runs.put(r)
	*r = ewRun{k: k, in: in, out: out[0]}
	switch k.op {
	case "Softmax":
		d := in[0].Dims
		r.n = int(d[len(d)-1])
		if r.n > 0 {
			r.rows = int(in[0].Len()) / r.n
		}
		r.chunk = max(1, (16<<10)/max(r.n, 1))
		r.sl = newSlots(x, min(x.Threads, (r.rows+r.chunk-1)/r.chunk), 8*r.n)
	case "GlobalAveragePool":
		d := in[0].Dims
		r.rows = int(d[0] * d[1])
		if r.rows > 0 {
			r.n = int(in[0].Len()) / r.rows
		}
		r.chunk = max(1, (16<<10)/max(r.n, 1))
	default:
		r.len = int(out[0].Len())
		r.rows, r.chunk = r.len, 16<<10
	}
	items := (r.rows + r.chunk - 1) / r.chunk
	run(x, items, r)
	return nil
}

func (r *ewRun) Do(w, item int) {
	lo := item * r.chunk
	hi := min(r.rows, lo+r.chunk)
	y := r.out.F32()
	switch r.k.op {
	case "Softmax":
		xs := r.in[0].F32()
		buf := slotAs[float64](r.sl, w, r.n)
		for row := lo; row < hi; row++ {
			softmaxRow(y[row*r.n:(row+1)*r.n], xs[row*r.n:(row+1)*r.n], buf)
		}
	case "GlobalAveragePool":
		globalAvg(y[lo:hi], r.in[0].F32()[lo*r.n:hi*r.n], r.n)
	default:
		a, b := r.in[0].F32(), r.in[1].F32()
		binary(r.k.op, y[lo:hi], a, b, lo)
	}
}

// globalAvg sets y[p] to the mean of plane p of x (planes of n values),
// summed in float64 in order as the reference does. Four planes at a time:
// their sums are independent chains, where one plane's adds wait on each
// other (MobileNetV2's 1280 planes of 49: 36 → ~10 µs).
func globalAvg(y, x []float32, n int) {
	p := 0
	for ; p+4 <= len(y); p += 4 {
		a, b, c, d := x[p*n:(p+1)*n], x[(p+1)*n:(p+2)*n], x[(p+2)*n:(p+3)*n], x[(p+3)*n:(p+4)*n]
		var s0, s1, s2, s3 float64
		for i := range a {
			s0 += float64(a[i])
			s1 += float64(b[i])
			s2 += float64(c[i])
			s3 += float64(d[i])
		}
		y[p], y[p+1], y[p+2], y[p+3] = float32(s0/float64(n)), float32(s1/float64(n)), float32(s2/float64(n)), float32(s3/float64(n))
	}
	for ; p < len(y); p++ {
		var s float64
		for _, v := range x[p*n : (p+1)*n] {
			s += float64(v)
		}
		y[p] = float32(s / float64(n))
	}
}

// binary computes y[i] = a[lo+i] op b[lo+i], a one-element operand
// broadcast.
func binary(op string, y, a, b []float32, lo int) {
	at := func(v []float32, i int) float32 {
		if len(v) == 1 {
			return v[0]
		}
		return v[lo+i]
	}
	if len(a) > 1 && len(b) > 1 {
		a, b = a[lo:lo+len(y)], b[lo:lo+len(y)]
		switch op {
		case "Add":
			for i := range y {
				y[i] = a[i] + b[i]
			}
		case "Sub":
			for i := range y {
				y[i] = a[i] - b[i]
			}
		case "Mul":
			for i := range y {
				y[i] = a[i] * b[i]
			}
		case "Div":
			for i := range y {
				y[i] = a[i] / b[i]
			}
		}
		return
	}
	for i := range y {
		u, v := at(a, i), at(b, i)
		switch op {
		case "Add":
			y[i] = u + v
		case "Sub":
			y[i] = u - v
		case "Mul":
			y[i] = u * v
		case "Div":
			y[i] = u / v
		}
	}
}

// softmaxRow is ops/arith's Softmax on one row, in float64.
func softmaxRow(y, x []float32, buf []float64) {
	m := math.Inf(-1)
	for _, v := range x {
		if f := float64(v); f != f || f > m {
			if m == m { // once NaN, the maximum stays NaN
				m = f
			}
		}
	}
	var s float64
	for j, v := range x {
		e := math.Exp(float64(v) - m)
		buf[j] = e
		s += e
	}
	for j := range y {
		y[j] = float32(buf[j] / s)
	}
}
