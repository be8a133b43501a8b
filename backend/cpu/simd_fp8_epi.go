package cpu

import (
	"math"

	"github.com/kilnml/kiln/kernels/avx"

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
	zeros []float32 // +0 biases of a layer without bias
	relu  bool      // Relu, inlined
	ident bool      // no activation
	enc   f8Encoder // when the output is fp8 codes
}

func newF8Epilogue(l *kilnq.Layer, chans int) f8Epilogue {
	e := f8Epilogue{l: l, m: make([]float32, chans), zeros: make([]float32, chans), relu: l.Act.Kind == "Relu", ident: l.Act.Kind == ""}
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
	if inner == 1 && resid == nil && e.l.YScale > 0 && (e.relu || e.ident) {
		// Gemm/MatMul rows: one channel per column, so a run of columns
		// takes its multipliers and biases per lane.
		for i := lo; i < hi; {
			c := i % chans
			end := min(hi, i+chans-c)
			e.lanes(acc[i:end], c, bias, out.Data[i:end])
			i = end
		}
		return
	}
	for i := lo; i < hi; {
		blk := i / inner
		c := blk % chans
		end := min(hi, (blk+1)*inner)
		var z []float32
		if resid != nil {
			z = resid[i:end]
		}
		var b float32
		if bias != nil {
			b = bias[c]
		}
		if e.l.YScale > 0 {
			e.row(acc[i:end], c, b, z, out.Data[i:end], nil)
		} else {
			e.row(acc[i:end], c, b, z, nil, out.F32()[i:end])
		}
		i = end
	}
}

// row runs the epilogue over sums acc of channel c (bias b, residual z or
// nil) into codes (fp8 output) or fl (fp32 output).
func (e *f8Epilogue) row(acc []float32, c int, b float32, z []float32, codes []byte, fl []float32) {
	m, ys := e.m[c], e.l.YScale
	if z == nil && codes != nil && (e.relu || e.ident) { // the common case, kept tight
		codes = codes[:len(acc)]
		// Blocks of 16 in AVX-512 (kernels/avx.F8Epilogue); a block that
		// saturates (or holds NaN) is done here, then the rest again there.
		p := avx.F8Epi{M: m, B: b, YScale: ys, Sub: e.enc.subScale32, Half: e.enc.half, Rebias: e.enc.rebias,
			Lo: e.enc.minNorm, Hi: e.enc.maxBits, Sh: e.enc.sh}
		if e.relu {
			p.Relu = 1
		}
		for len(acc) > 0 {
			done := avx.F8Epilogue(acc, codes, &p)
			if done == len(acc) {
				return
			}
			end := min(len(acc), done+16)
			e.rowScalar(acc[done:end], m, b, codes[done:end])
			acc, codes = acc[end:], codes[end:]
		}
		return
	}
	act := &e.l.Act
	for i, a := range acc {
		y := float32(a * m)
		y = float32(y + b)
		var zi float32
		if z != nil {
			zi = z[i]
		}
		y = act.Apply32(float32(y + zi))
		if codes != nil {
			codes[i] = e.enc.encode(float32(y / ys))
		} else {
			fl[i] = y
		}
	}
}

// lanes is row's common case for the columns c, c+1, ... of a Gemm row
// (multiplier and bias per column).
func (e *f8Epilogue) lanes(acc []float32, c int, bias []float32, codes []byte) {
	if bias == nil {
		bias = e.zeros
	}
	p := avx.F8Epi{YScale: e.l.YScale, Sub: e.enc.subScale32, Half: e.enc.half, Rebias: e.enc.rebias,
		Lo: e.enc.minNorm, Hi: e.enc.maxBits, Sh: e.enc.sh, PerLane: 1}
	if e.relu {
		p.Relu = 1
	}
	for len(acc) > 0 {
		p.MS, p.BS = &e.m[c], &bias[c]
		done := avx.F8Epilogue(acc, codes, &p)
		if done == len(acc) {
			return
		}
		end := min(len(acc), done+16)
		for j := done; j < end; j++ { // a block that saturates (or holds NaN)
			e.rowScalar(acc[j:j+1], e.m[c+j], bias[c+j], codes[j:j+1])
		}
		acc, codes, c = acc[end:], codes[end:], c+end
	}
}

// rowScalar is row's common case (codes out, no residual, Relu or no
// activation) one value at a time.
func (e *f8Epilogue) rowScalar(acc []float32, m, b float32, codes []byte) {
	ys := e.l.YScale
	{
		relu := e.relu
		// encode's fast path inlined and branch-free (zeros and subnormals
		// are common after a Relu: a branch on them mispredicts), its
		// parameters in registers; saturation, Inf and NaN take floatx.
		sh, half, rebias := e.enc.sh&31, e.enc.half, e.enc.rebias
		lo, hi, sub := e.enc.minNorm, e.enc.maxBits, e.enc.subScale32
		for i, a := range acc {
			// kilnq's order: float32(acc·m) + bias + residual (both added
			// even when absent: −0 + 0 is +0), then the activation.
			y := float32(float32(a*m)+b) + 0
			if relu { // y > 0 or NaN: y, else +0
				if yb := math.Float32bits(y); yb&0x7fffffff <= 0x7f800000 {
					y = math.Float32frombits(yb &^ uint32(int32(yb)>>31))
				}
			}
			v := float32(y / ys)
			bits := math.Float32bits(v)
			mag := bits & 0x7fffffff
			if mag >= hi {
				codes[i] = e.enc.encodeRare(v)
				continue
			}
			code := byte((mag+half+(mag>>sh)&1)>>sh - rebias)
			// Subnormal: the magnitude in units of the smallest subnormal
			// (exact), rounded half even by adding and removing 2²³.
			s := byte(int32(float32(float32(math.Float32frombits(mag)*sub)+0x1p23) - 0x1p23))
			if mag < lo {
				code = s
			}
			codes[i] = byte(bits>>24)&0x80 | code
		}
	}
}

// f8Encoder rounds float32 to a float8 format (E4M3FN or E5M2) to nearest
// even, saturating, as floatx.F32ToF8(v, f, true): normal and subnormal
// magnitudes below the format's largest finite value by integer rounding
// of the float32 bits; NaN, ±Inf and magnitudes at or above the largest
// finite value (saturation, the format's own NaN/Inf rules) through floatx.
type f8Encoder struct {
	f          floatx.F8Format
	mbits      uint32  // mantissa bits of the format
	sh         uint32  // 23 − mbits: float32 mantissa bits dropped
	half       uint32  // 1<<(sh−1) − 1: round half even with the kept LSB
	rebias     uint32  // (127 − bias) << mbits
	minNorm    uint32  // float32 bits of the smallest normal
	maxBits    uint32  // float32 bits of the largest finite value
	subScale   float64 // 2^(bias−1+mbits): subnormal value → integer code
	subScale32 float32
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
		f:          f,
		mbits:      mbits,
		sh:         23 - mbits,
		half:       1<<(22-mbits) - 1,
		rebias:     uint32(127-bias) << mbits,
		minNorm:    math.Float32bits(float32(math.Ldexp(1, 1-bias))),
		maxBits:    math.Float32bits(maxv),
		subScale:   math.Ldexp(1, bias-1+int(mbits)),
		subScale32: float32(math.Ldexp(1, bias-1+int(mbits))),
	}
}

func (e *f8Encoder) encode(v float32) byte {
	b := math.Float32bits(v)
	a := b & 0x7fffffff
	if a-e.minNorm >= e.maxBits-e.minNorm {
		return e.encodeRare(v)
	}
	return byte(b>>24)&0x80 | byte((a+e.half+(a>>(e.sh&31))&1)>>(e.sh&31)-e.rebias)
}

// encodeRare encodes subnormals, and saturates magnitudes at or above the
// largest finite value, ±Inf and NaN through floatx.
func (e *f8Encoder) encodeRare(v float32) byte {
	b := math.Float32bits(v)
	a := b & 0x7fffffff
	if a >= e.maxBits {
		return floatx.F32ToF8(v, e.f, true)
	}
	if a >= e.minNorm {
		return e.encode(v)
	}
	// The magnitude in units of the smallest subnormal, rounded half even
	// (exact in float64); 2^mbits is the smallest normal's code.
	return byte(b>>24)&0x80 | byte(math.RoundToEven(float64(math.Float32frombits(a))*e.subScale))
}
