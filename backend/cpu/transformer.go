package cpu

import (
	"fmt"
	"math"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/kernels/f32"
	"github.com/kilnml/kiln/kernels/pack"
	"github.com/kilnml/kiln/ops/kiln"
)

// Transformer kernels: kiln.LayerNorm and kiln.Attention in FP32 (they stay
// FP32 inside FP16/INT8/FP8 engines), kiln.Gelu, and kiln.DynQMatMul
// (dynq.go). They come from a second backend
// value of the same name and priority, so that this file needs no change
// to the main tactic switch.
type transformerBackend struct{}

func (transformerBackend) Name() string  { return "cpu" }
func (transformerBackend) Priority() int { return 10 }

func (transformerBackend) Tactics(l *engine.Layer) []engine.Tactic {
	n := l.Node
	if disabled || n.Domain != kiln.Domain {
		return nil
	}
	if n.OpType == "DynQMatMul" && (l.Precision == engine.FP32 || l.Precision == engine.INT8) {
		return []engine.Tactic{dynqTactic{}}
	}
	if l.Precision != engine.FP32 {
		return nil
	}
	switch n.OpType {
	case "LayerNorm":
		return []engine.Tactic{layerNormTactic{}}
	case "Attention":
		return []engine.Tactic{attentionTactic{}}
	case "Gelu":
		return []engine.Tactic{geluTactic{}}
	}
	return nil
}

// ---- Gelu ----

type geluParams struct {
	Act actParam `json:"act"`
}

type geluTactic struct{}

func (geluTactic) Name() string { return "gelu.f32" }

func (geluTactic) Lower(l *engine.Layer) (*engine.Lowered, error) {
	if err := allFloat32(l); err != nil {
		return nil, err
	}
	a, err := kiln.GeluActivation(l.Node)
	if err != nil {
		return nil, err
	}
	return lowered("cpu.gelu", &geluParams{Act: actParam(a)}, nil, []int{0})
}

type geluKernel struct {
	act  kiln.Activation
	runs runPool[geluRun]
}

func init() {
	register("cpu.gelu", func(p *geluParams, _ []*ir.Tensor) (engine.Kernel, error) {
		return &geluKernel{act: kiln.Activation(p.Act)}, nil
	})
}

func (k *geluKernel) Shapes(in []*ir.Tensor) ([][]int64, error) { return [][]int64{in[0].Dims}, nil }

type geluRun struct {
	k    *geluKernel
	x, y []float32
	per  int
}

func (k *geluKernel) Run(x *engine.Exec, in, out []*ir.Tensor) error {
	r := k.runs.get()
	defer k.runs.put(r)
	n := len(in[0].F32())
	*r = geluRun{k: k, x: in[0].F32(), y: out[0].F32(), per: max(1024, n/(4*max(1, x.Threads)))}
	run(x, (n+r.per-1)/r.per, r)
	return nil
}

// Do applies the activation as every epilogue does (f32.Act32).
func (r *geluRun) Do(_, item int) {
	lo, hi := item*r.per, min(len(r.x), (item+1)*r.per)
	for i := lo; i < hi; i++ {
		r.y[i] = f32.Act32(&r.k.act, r.x[i])
	}
}

func init() { engine.RegisterBackend(transformerBackend{}) }

func allFloat32(l *engine.Layer) error {
	for i, t := range l.In {
		if hasInput(l.Node, i) && (t == nil || t.DType != ir.Float32) {
			return fmt.Errorf("%s: input %d is not float32", l.Node, i)
		}
	}
	return nil
}

// ---- LayerNorm ----

type layerNormParams struct {
	Axis    int64   `json:"axis"`
	Epsilon float32 `json:"epsilon"`
	Bias    bool    `json:"bias,omitempty"`
}

type layerNormTactic struct{}

func (layerNormTactic) Name() string { return "layernorm.f32" }

func (layerNormTactic) Lower(l *engine.Layer) (*engine.Lowered, error) {
	n := l.Node
	if err := allFloat32(l); err != nil {
		return nil, err
	}
	var p layerNormParams
	var err error
	if p.Axis, err = n.AttrInt("axis", -1); err != nil {
		return nil, err
	}
	if p.Epsilon, err = n.AttrFloat("epsilon", 1e-5); err != nil {
		return nil, err
	}
	if !isConst(l, 1) {
		return nil, fmt.Errorf("%s: the scale must be a constant", n)
	}
	w := []*ir.Tensor{l.Const[1].Clone()}
	if hasInput(n, 2) {
		if !isConst(l, 2) {
			return nil, fmt.Errorf("%s: the bias must be a constant", n)
		}
		p.Bias = true
		w = append(w, l.Const[2].Clone())
	}
	return lowered("cpu.layernorm", &p, w, []int{0})
}

type layerNormKernel struct {
	p           layerNormParams
	gamma, beta []float32
	runs        runPool[layerNormRun]
}

func init() {
	register("cpu.layernorm", func(p *layerNormParams, w []*ir.Tensor) (engine.Kernel, error) {
		if len(w) < 1 || (p.Bias && len(w) < 2) {
			return nil, fmt.Errorf("cpu.layernorm: missing weights")
		}
		k := &layerNormKernel{p: *p, gamma: w[0].F32()}
		if p.Bias {
			k.beta = w[1].F32()
			if len(k.beta) != len(k.gamma) {
				return nil, fmt.Errorf("cpu.layernorm: scale and bias sizes differ")
			}
		}
		return k, nil
	})
}

func (k *layerNormKernel) size(dims []int64) (rows, size int, err error) {
	ax := int(k.p.Axis)
	if ax < 0 {
		ax += len(dims)
	}
	if ax < 0 || ax >= len(dims) {
		return 0, 0, fmt.Errorf("axis %d out of range for %v", k.p.Axis, dims)
	}
	rows, size = 1, 1
	for i, d := range dims {
		if i < ax {
			rows *= int(d)
		} else {
			size *= int(d)
		}
	}
	if size != len(k.gamma) {
		return 0, 0, fmt.Errorf("X %v normalizes %d elements, the scale has %d", dims, size, len(k.gamma))
	}
	return rows, size, nil
}

func (k *layerNormKernel) Shapes(in []*ir.Tensor) ([][]int64, error) {
	if _, _, err := k.size(in[0].Dims); err != nil {
		return nil, err
	}
	return [][]int64{in[0].Dims}, nil
}

type layerNormRun struct {
	k          *layerNormKernel
	x, y       []float32
	size, rows int
	per        int
}

func (k *layerNormKernel) Run(x *engine.Exec, in, out []*ir.Tensor) error {
	rows, size, err := k.size(in[0].Dims)
	if err != nil {
		return err
	}
	r := k.runs.get()
	defer k.runs.put(r)
	*r = layerNormRun{k: k, x: in[0].F32(), y: out[0].F32(), size: size, rows: rows, per: max(1, rows/(4*max(1, x.Threads)))}
	run(x, (rows+r.per-1)/r.per, r)
	return nil
}

// Do normalizes a block of rows with f32.LayerNormRow (float32 partial
// sums, within f32.LayerNormRowErr of the float64 reference).
func (r *layerNormRun) Do(_, item int) {
	k := r.k
	for row := item * r.per; row < min(r.rows, (item+1)*r.per); row++ {
		f32.LayerNormRow(r.y[row*r.size:(row+1)*r.size], r.x[row*r.size:(row+1)*r.size], k.gamma, k.beta, k.p.Epsilon)
	}
}

// ---- Attention ----

type attentionParams struct {
	Scale       float32 `json:"scale"`
	KTransposed bool    `json:"k_transposed,omitempty"`
	NaNToZero   bool    `json:"nan_to_zero,omitempty"`
	Mask        bool    `json:"mask,omitempty"`
}

type attentionTactic struct{}

func (attentionTactic) Name() string { return "attention.f32" }

func (attentionTactic) Lower(l *engine.Layer) (*engine.Lowered, error) {
	n := l.Node
	if err := allFloat32(l); err != nil {
		return nil, err
	}
	for i := 0; i < 3; i++ {
		if l.In[i] == nil || !l.In[i].HasShape || len(l.In[i].Shape) < 2 || len(l.In[i].Shape) > maxRank {
			return nil, fmt.Errorf("%s: Q, K and V need known ranks 2..%d", n, maxRank)
		}
	}
	var p attentionParams
	kt, err := n.AttrInt("k_transposed", 0)
	if err != nil {
		return nil, err
	}
	nz, err := n.AttrInt("nan_to_zero", 0)
	if err != nil {
		return nil, err
	}
	p.KTransposed, p.NaNToZero = kt != 0, nz != 0
	d := l.In[0].Shape[len(l.In[0].Shape)-1]
	p.Scale, err = n.AttrFloat("scale", 0)
	if err != nil {
		return nil, err
	}
	if n.Attr("scale") == nil {
		if !d.Known() {
			return nil, fmt.Errorf("%s: no scale and an unknown head size", n)
		}
		p.Scale = float32(1 / math.Sqrt(float64(d.Value)))
	}
	inputs := []int{0, 1, 2}
	if hasInput(n, 3) {
		p.Mask = true
		inputs = append(inputs, 3)
	}
	return lowered("cpu.attention", &p, nil, inputs)
}

type attentionKernel struct {
	p    attentionParams
	runs runPool[attentionRun]
}

func init() {
	register("cpu.attention", func(p *attentionParams, _ []*ir.Tensor) (engine.Kernel, error) {
		return &attentionKernel{p: *p}, nil
	})
}

// attnShape: batch dims broadcast over Q, K, V and the mask; per input the
// stride of each batch axis in matrices-worth of elements (0: broadcast).
type attnShape struct {
	rank             int
	out              [maxRank]int64
	st               [4][maxRank]int // element strides of Q, K, V, mask per batch axis
	batch            int
	sq, sk, d, dv    int
	maskRow, maskCol int // mask strides over query and key
}

func (k *attentionKernel) shape(in []*ir.Tensor) (attnShape, error) {
	var s attnShape
	q, kk, v := in[0].Dims, in[1].Dims, in[2].Dims
	s.sq, s.d = int(q[len(q)-2]), int(q[len(q)-1])
	kd, ks := int(kk[len(kk)-1]), int(kk[len(kk)-2])
	if k.p.KTransposed {
		kd, ks = ks, kd
	}
	s.sk, s.dv = ks, int(v[len(v)-1])
	if kd != s.d || int(v[len(v)-2]) != s.sk {
		return s, fmt.Errorf("attention of Q %v, K %v, V %v: sizes disagree", q, kk, v)
	}
	dims := [][]int64{q[:len(q)-2], kk[:len(kk)-2], v[:len(v)-2]}
	mats := []int{s.sq * s.d, s.sk * s.d, s.sk * s.dv}
	if k.p.Mask {
		if len(in) < 4 || in[3] == nil {
			return s, fmt.Errorf("the mask is missing")
		}
		m := in[3].Dims
		var rows, cols int64 = 1, 1
		if len(m) >= 1 {
			cols = m[len(m)-1]
		}
		if len(m) >= 2 {
			rows = m[len(m)-2]
		}
		if (rows != 1 && rows != int64(s.sq)) || (cols != 1 && cols != int64(s.sk)) {
			return s, fmt.Errorf("the mask %v does not broadcast onto [%d, %d] scores", m, s.sq, s.sk)
		}
		if rows != 1 {
			s.maskRow = int(cols)
		}
		if cols != 1 {
			s.maskCol = 1
		}
		dims = append(dims, m[:max(0, len(m)-2)])
		mats = append(mats, int(rows*cols))
	}
	for _, d := range dims {
		s.rank = max(s.rank, len(d))
	}
	if s.rank > maxRank {
		return s, fmt.Errorf("too many batch axes")
	}
	s.batch = 1
	stride := append([]int(nil), mats...)
	for i := s.rank - 1; i >= 0; i-- {
		var o int64 = 1
		for _, d := range dims {
			if j := i - (s.rank - len(d)); j >= 0 && d[j] != 1 {
				if o != 1 && o != d[j] {
					return s, fmt.Errorf("batch dims of Q %v, K %v, V %v do not broadcast", q, kk, v)
				}
				o = d[j]
			}
		}
		s.out[i] = o
		for t, d := range dims {
			dd := int64(1)
			if j := i - (s.rank - len(d)); j >= 0 {
				dd = d[j]
			}
			if dd != 1 {
				s.st[t][i] = stride[t]
			}
			stride[t] *= int(dd)
		}
		s.batch *= int(o)
	}
	return s, nil
}

func (k *attentionKernel) Shapes(in []*ir.Tensor) ([][]int64, error) {
	s, err := k.shape(in)
	if err != nil {
		return nil, err
	}
	return [][]int64{append(append([]int64{}, s.out[:s.rank]...), int64(s.sq), int64(s.dv))}, nil
}

type attentionRun struct {
	k            *attentionKernel
	s            attnShape
	q, kk, v, m  []float32
	y            []float32
	sl           slots
	chunk, nch   int
	apQ, bpK, sc int // scratch sizes (elements)
	apP, bpV     int
}

func (k *attentionKernel) Run(x *engine.Exec, in, out []*ir.Tensor) error {
	s, err := k.shape(in)
	if err != nil {
		return err
	}
	r := k.runs.get()
	defer k.runs.put(r)
	*r = attentionRun{k: k, s: s, q: in[0].F32(), kk: in[1].F32(), v: in[2].F32(), y: out[0].F32()}
	if k.p.Mask {
		r.m = in[3].F32()
	}
	if s.batch == 0 || s.sq == 0 || s.dv == 0 {
		return nil
	}
	r.chunk = min(s.sq, 32)
	if s.batch*((s.sq+r.chunk-1)/r.chunk) < 2*x.Threads {
		r.chunk = max(1, (s.sq+1)/2)
	}
	r.nch = (s.sq + r.chunk - 1) / r.chunk
	r.apQ = pack.ASize(r.chunk, s.d, f32.MR)
	r.bpK = pack.BSize(s.d, s.sk, f32.NR)
	r.sc = r.chunk * s.sk
	r.apP = pack.ASize(r.chunk, s.sk, f32.MR)
	r.bpV = pack.BSize(s.sk, s.dv, f32.NR)
	items := s.batch * r.nch
	r.sl = newSlots(x, min(x.Threads, items), 4*(r.apQ+r.bpK+r.sc+r.apP+r.bpV))
	run(x, items, r)
	return nil
}

// Do computes query rows of one batch item: S = Q·K (packed GEMM), scale,
// mask and softmax row by row in float32 (softmaxScores), Y = P·V.
func (r *attentionRun) Do(w, item int) {
	s := &r.s
	bi, ch := item/r.nch, item%r.nch
	var off [4]int
	rem := bi
	for i := s.rank - 1; i >= 0; i-- {
		d := int(s.out[i])
		idx := rem % d
		rem /= d
		for t := range off {
			off[t] += idx * s.st[t][i]
		}
	}
	i0 := ch * r.chunk
	rows := min(r.chunk, s.sq-i0)
	buf := slotAs[float32](r.sl, w, r.apQ+r.bpK+r.sc+r.apP+r.bpV)
	apQ, buf := buf[:r.apQ], buf[r.apQ:]
	bpK, buf := buf[:r.bpK], buf[r.bpK:]
	sc, buf := buf[:r.sc], buf[r.sc:]
	apP, bpV := buf[:r.apP], buf[r.apP:r.apP+r.bpV]
	lut := (*[256]float32)(nil)
	pack.A(apQ, r.q[off[0]+i0*s.d:], lut, rows, s.d, s.d, 1, f32.MR)
	if r.k.p.KTransposed { // K is [D, Sk]
		pack.B(bpK, r.kk[off[1]:], lut, s.d, s.sk, s.sk, 1, f32.NR)
	} else { // K is [Sk, D]
		pack.B(bpK, r.kk[off[1]:], lut, s.d, s.sk, 1, s.d, f32.NR)
	}
	e := f32.Epilogue{Out: sc, RS: s.sk, CS: 1}
	f32.Gemm(s.d, apQ, rows, bpK, s.sk, 0, 0, &e)
	softmaxScores(sc[:rows*s.sk], s, &r.k.p, r.m, off[3], i0, nil)
	pack.A(apP, sc, lut, rows, s.sk, s.sk, 1, f32.MR)
	pack.B(bpV, r.v[off[2]:], lut, s.sk, s.dv, s.dv, 1, f32.NR)
	yo := bi*s.sq*s.dv + i0*s.dv
	ey := f32.Epilogue{Out: r.y[yo : yo+rows*s.dv], RS: s.dv, CS: 1}
	f32.Gemm(s.sk, apP, rows, bpV, s.dv, 0, 0, &ey)
}

// softmaxScores turns rows of raw scores Q·Kᵀ (query rows i0.. of one batch
// entry, mask at offset mOff) into probabilities in float32: scale, add the
// mask, f32.SoftmaxRow, and NaN → 0 with nan_to_zero. Both attention
// kernels share it. With inv (one entry per row), rows whose maximum is
// finite are left as e^(s−max) and their factor 1/Σ goes to inv (the
// caller scales while it packs); the others are finished here (inv 1).
func softmaxScores(sc []float32, s *attnShape, p *attentionParams, m []float32, mOff, i0 int, inv []float32) {
	scale := p.Scale
	for i := 0; i*s.sk < len(sc); i++ {
		row := sc[i*s.sk : (i+1)*s.sk]
		var mx float32
		switch {
		case m == nil:
			mx = f32.ScaleMaskMax(row, nil, scale)
		case s.maskCol == 1:
			mx = f32.ScaleMaskMax(row, m[mOff+(i0+i)*s.maskRow:][:len(row)], scale)
		default: // one mask value per query row (or one in all)
			mv := m[mOff+(i0+i)*s.maskRow]
			mx = float32(math.Inf(-1))
			for j, v := range row {
				v = float32(v*scale) + mv
				row[j] = v
				mx = max(mx, v) // NaN if any v is
			}
		}
		finite := mx == mx && !math.IsInf(float64(mx), 0)
		if inv != nil && finite {
			inv[i] = f32.ExpRowMax(row, mx)
			continue
		}
		f32.SoftmaxRowMax(row, mx)
		if inv != nil {
			inv[i] = 1
		}
		// With a finite maximum every probability is finite (the sum is at
		// least 1): only NaN/±Inf maxima (fully masked rows) need the pass.
		if p.NaNToZero && !finite {
			for j, v := range row {
				if v != v {
					row[j] = 0
				}
			}
		}
	}
}
