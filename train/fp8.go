package train

import (
	"fmt"
	"math"
)

// FP8 training with delayed scaling, as NVIDIA's Transformer Engine does it
// on Hopper: the inputs and weights of every GEMM/convolution are cast to
// E4M3 (3 mantissa bits, max 448) for the forward pass; the output
// gradient is cast to E5M2 (2 mantissa bits, max 57344: gradients need the
// range) for both backward products (dgrad = dy·W and wgrad = dyᵀ·x). The
// products themselves run on the FP8 values with FP32 accumulation (here:
// the float32 GEMM over exactly representable values, which is what the
// tensor cores compute). Each cast has a per-tensor scale
//
//	scale = fp8_max / amax / 2^margin,   amax = max(amax history)
//
// where the history holds the last HistoryLen steps' amax values of that
// tensor: the scale used at step t comes from steps before t (delayed: no
// extra pass over the data), and the amax of step t joins the history
// afterwards. The first step, with an empty history, scales by its own amax.

// FP8Format is one 8-bit float format: its largest finite value, mantissa
// bits and smallest normal exponent.
type FP8Format struct {
	Name      string
	Max       float32
	Mantissa  int
	MinNormal int // exponent of the smallest normal number
}

var (
	E4M3 = FP8Format{"E4M3", 448, 3, -6}
	E5M2 = FP8Format{"E5M2", 57344, 2, -14}
)

// Round rounds v to the nearest value of the format (ties to even),
// saturating to ±Max (as the Transformer Engine's casts do); NaN stays NaN.
// The result is exact in float32. It matches floatx's E4M3FN/E5M2
// saturating encode followed by decode.
func (f FP8Format) Round(v float32) float32 { return f.rounder().round(v) }

// fp8Rounder is Round with the format's constants worked out once, for the
// casts' loops over millions of values (computing them per value, two
// Ldexp calls on every zero and subnormal, cost more than the GEMMs).
type fp8Rounder struct {
	max, minNormal float32
	subnormal      float32 // a constant whose ulp is the subnormal quantum
	shift          uint    // mantissa bits dropped from float32's 23
}

func (f FP8Format) rounder() fp8Rounder {
	return fp8Rounder{
		max:       f.Max,
		minNormal: float32(math.Ldexp(1, f.MinNormal)),
		subnormal: float32(math.Ldexp(1, f.MinNormal-f.Mantissa+23)),
		shift:     uint(23 - f.Mantissa),
	}
}

func (r fp8Rounder) round(v float32) float32 {
	if v != v {
		return v
	}
	a := math.Float32frombits(math.Float32bits(v) &^ (1 << 31))
	var q float32
	switch {
	case a >= r.max:
		q = r.max
	case a < r.minNormal:
		// Subnormals: a fixed quantum 2^(MinNormal-Mantissa); adding a
		// constant whose ulp is that quantum rounds to it, ties to even.
		q = (a + r.subnormal) - r.subnormal
	default:
		b := math.Float32bits(a)
		b += (1 << (r.shift - 1)) - 1 + ((b >> r.shift) & 1)
		b &^= 1<<r.shift - 1
		q = math.Float32frombits(b)
		if q > r.max {
			q = r.max
		}
	}
	if v < 0 {
		return -q
	}
	return q
}

// FP8Recipe is the delayed-scaling recipe.
type FP8Recipe struct {
	// HistoryLen is the amax history window (default 16).
	HistoryLen int
	// Margin lowers every scale by 2^Margin (headroom against growth).
	Margin int
	// Forward is the format of inputs and weights (default E4M3);
	// Backward that of output gradients (default E5M2).
	Forward, Backward FP8Format
}

func (r FP8Recipe) withDefaults() FP8Recipe {
	if r.HistoryLen <= 0 {
		r.HistoryLen = 16
	}
	if r.Forward.Max == 0 {
		r.Forward = E4M3
	}
	if r.Backward.Max == 0 {
		r.Backward = E5M2
	}
	return r
}

// FP8Meta is one tensor's scaling state.
type FP8Meta struct {
	Format  FP8Format
	History []float32 // most recent last, at most HistoryLen
	Scale   float32
	pending float32 // this step's amax, joins History at the next update
	hasPend bool
	margin  int
	window  int
}

// update moves the last step's amax into the history and recomputes the
// scale from its maximum (kept when the history is all zero).
func (m *FP8Meta) update() {
	if !m.hasPend {
		return
	}
	m.History = append(m.History, m.pending)
	if len(m.History) > m.window {
		m.History = m.History[len(m.History)-m.window:]
	}
	m.hasPend = false
	var amax float32
	for _, a := range m.History {
		amax = max(amax, a)
	}
	if amax > 0 && !math.IsInf(float64(amax), 0) {
		m.Scale = float32(float64(m.Format.Max) / float64(amax) / math.Ldexp(1, m.margin))
	}
}

// cast returns the dequantized FP8 values of x under the current scale,
// recording x's amax for the next update (record false: evaluation). The
// first cast of a tensor scales by its own amax.
func (m *FP8Meta) cast(c *Ctx, x []float32, dst []float32, record bool) {
	amaxes := make([]float32, c.Workers)
	c.parallel(len(x), func(w, lo, hi int) {
		var a float32
		for _, v := range x[lo:hi] {
			if av := float32(math.Abs(float64(v))); av > a && !math.IsInf(float64(av), 0) {
				a = av
			}
		}
		amaxes[w] = max(amaxes[w], a)
	})
	var amax float32
	for _, a := range amaxes {
		amax = max(amax, a)
	}
	if record {
		m.pending, m.hasPend = amax, true
		if m.Scale == 0 && len(m.History) == 0 {
			m.update() // first step: scale by its own amax
		}
	}
	s := m.Scale
	if s == 0 {
		s = 1
	}
	inv := 1 / s
	r := m.Format.rounder()
	c.parallel(len(x), func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			dst[i] = r.round(x[i]*s) * inv
		}
	})
}

// FP8Layer runs a Conv2dLayer or LinearLayer with FP8 casts and delayed
// scaling. Its parameters, name and ONNX form are the wrapped layer's.
type FP8Layer struct {
	Inner                Layer
	Input, Weight, GradY *FP8Meta
}

func (l *FP8Layer) Name() string         { return l.Inner.Name() }
func (l *FP8Layer) Params() []NamedParam { return l.Inner.Params() }

// ExportONNX exports the wrapped layer in float (the trained weights).
func (l *FP8Layer) ExportONNX(e *Exporter, in string) (string, error) {
	x, ok := l.Inner.(ONNXExportable)
	if !ok {
		return "", fmt.Errorf("no ONNX form for %s (%T)", l.Inner.Name(), l.Inner)
	}
	return x.ExportONNX(e, in)
}

func (l *FP8Layer) Forward(c *Ctx, x *Tensor) *Tensor {
	var w, b *Tensor
	switch in := l.Inner.(type) {
	case *Conv2dLayer:
		w, b = in.Weight, in.Bias
	case *LinearLayer:
		w, b = in.Weight, in.Bias
	default:
		panic(fmt.Sprintf("train.FP8Layer: %T has no GEMM", l.Inner))
	}
	train := c.Grad
	if train {
		l.Input.update()
		l.Weight.update()
	}
	xq := c.fp8Cast(x, l.Input, train)
	wq := c.fp8Cast(w, l.Weight, train)
	var y *Tensor
	if _, conv := l.Inner.(*Conv2dLayer); conv {
		y = c.Conv2d(xq, wq, b)
	} else {
		y = c.Linear(xq, wq, b)
	}
	if !train {
		return y
	}
	return c.fp8GradCast(y, l.GradY)
}

// fp8Cast is the forward cast; its backward is the identity (the
// straight-through estimator: the gradient of a cast is taken as 1).
func (c *Ctx) fp8Cast(x *Tensor, m *FP8Meta, record bool) *Tensor {
	out := c.newResult(x.Shape, func(out *Tensor) {
		if x.requiresGrad {
			g := c.gradOf(x)
			for i, d := range out.Grad {
				g[i] += d
			}
		}
	}, x)
	m.cast(c, x.Data, out.Data, record)
	return out
}

// fp8GradCast is the identity forward; backward casts the output gradient
// to the backward format (E5M2) before the layer's gradient products read
// it, updating that scale first (its history holds earlier steps).
func (c *Ctx) fp8GradCast(y *Tensor, m *FP8Meta) *Tensor {
	out := c.newResult(y.Shape, func(out *Tensor) {
		m.update()
		q := c.alloc(len(out.Grad))
		m.cast(c, out.Grad, q, true)
		g := c.gradOf(y)
		for i, d := range q {
			g[i] += d
		}
	}, y)
	copy(out.Data, y.Data)
	return out
}

// PrepareFP8 wraps every Conv2dLayer and LinearLayer of model (in place)
// in an FP8Layer with the recipe's formats and returns the wrappers.
func PrepareFP8(model *Sequential, r FP8Recipe) []*FP8Layer {
	r = r.withDefaults()
	meta := func(f FP8Format) *FP8Meta { return &FP8Meta{Format: f, margin: r.Margin, window: r.HistoryLen} }
	var out []*FP8Layer
	for i, l := range model.Layers {
		switch l.(type) {
		case *Conv2dLayer, *LinearLayer:
			f := &FP8Layer{Inner: l, Input: meta(r.Forward), Weight: meta(r.Forward), GradY: meta(r.Backward)}
			model.Layers[i] = f
			out = append(out, f)
		}
	}
	return out
}
