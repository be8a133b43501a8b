package cpu

import (
	"math"

	"github.com/kilnml/kiln/floatx"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops/kilnq"
)

// f8Epilogue is kilnq.Layer's Epilogue and QuantizeOut for fp8 layers
// with the per-channel multipliers worked out once and the float8 encode
// done with integer arithmetic (f8Encoder), bit for bit the same.
type f8Epilogue struct {
	l     *kilnq.Layer
	m     []float32 // float32(x_scale·w_scales[c]) per channel
	relu  bool      // Relu, inlined
	ident bool      // no activation
	enc   f8Encoder // when the output is fp8 codes
}

func newF8Epilogue(l *kilnq.Layer, chans int) f8Epilogue {
	e := f8Epilogue{l: l, m: make([]float32, chans), relu: l.Act.Kind == "Relu", ident: l.Act.Kind == ""}
	for c := range e.m {
		e.m[c] = float32(l.XScale * l.WScales[min(c, len(l.WScales)-1)])
	}
	if f, ok := kilnq.FP8Format(l.OutType); ok && l.YScale > 0 {
		e.enc = newF8Encoder(f)
	}
	return e
}

// apply runs the epilogue over elements [lo, hi) of acc (channel of i:
// (i/inner) % chans) into out (float32, or fp8 codes).
func (e *f8Epilogue) apply(acc, bias, resid []float32, out *ir.Tensor, inner, lo, hi int) {
	chans := len(e.m)
	var codes []byte
	var fl []float32
	if e.l.YScale > 0 {
		codes = out.Data
	} else {
		fl = out.F32()
	}
	ys := e.l.YScale
	act := &e.l.Act
	for i := lo; i < hi; {
		blk := i / inner
		c := blk % chans
		end := min(hi, (blk+1)*inner)
		m := e.m[c]
		var b float32
		if bias != nil {
			b = bias[c]
		}
		for ; i < end; i++ {
			// kilnq's order: float32(acc·m) + bias + residual (both added
			// even when absent: −0 + 0 is +0), then the activation.
			y := float32(acc[i] * m)
			y = float32(y + b)
			var z float32
			if resid != nil {
				z = resid[i]
			}
			y = float32(y + z)
			switch {
			case e.ident:
			case e.relu:
				if !(y > 0 || y != y) {
					y = 0
				}
			default:
				y = act.Apply32(y)
			}
			if codes != nil {
				codes[i] = e.enc.encode(float32(y / ys))
			} else {
				fl[i] = y
			}
		}
	}
}

// f8Encoder rounds float32 to a float8 format (E4M3FN or E5M2) to nearest
// even, saturating, as floatx.F32ToF8(v, f, true): normal and subnormal
// magnitudes below the format's largest finite value by integer rounding
// of the float32 bits; NaN, ±Inf and magnitudes at or above the largest
// finite value (saturation, the format's own NaN/Inf rules) through floatx.
type f8Encoder struct {
	f        floatx.F8Format
	mbits    uint32  // mantissa bits of the format
	rebias   uint32  // (127 − bias) << mbits
	minNorm  uint32  // float32 bits of the smallest normal
	maxBits  uint32  // float32 bits of the largest finite value
	subScale float64 // 2^(bias−1+mbits): subnormal value → integer code
}

func newF8Encoder(f floatx.F8Format) f8Encoder {
	mbits, bias := uint32(3), 7
	if f == floatx.E5M2 {
		mbits, bias = 2, 15
	}
	maxv := floatx.F8ToF32(0x7e, f) // E4M3FN: 448 (0x7f is NaN)
	if f == floatx.E5M2 {
		maxv = floatx.F8ToF32(0x7b, f) // 57344 (0x7c is Inf)
	}
	return f8Encoder{
		f:        f,
		mbits:    mbits,
		rebias:   uint32(127-bias) << mbits,
		minNorm:  math.Float32bits(float32(math.Ldexp(1, 1-bias))),
		maxBits:  math.Float32bits(maxv),
		subScale: math.Ldexp(1, bias-1+int(mbits)),
	}
}

func (e *f8Encoder) encode(v float32) byte {
	b := math.Float32bits(v)
	sign := byte(b>>24) & 0x80
	a := b & 0x7fffffff
	switch {
	case a >= e.maxBits: // saturation, ±Inf, NaN
		return floatx.F32ToF8(v, e.f, true)
	case a >= e.minNorm:
		sh := 23 - e.mbits
		r := (a + (1<<(sh-1) - 1) + (a>>sh)&1) >> sh
		return sign | byte(r-e.rebias)
	}
	// Subnormal: the magnitude in units of the smallest subnormal, rounded
	// half even (exact in float64); 2^mbits is the smallest normal's code.
	return sign | byte(math.RoundToEven(float64(math.Float32frombits(a))*e.subScale))
}
