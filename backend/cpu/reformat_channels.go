package cpu

import (
	"fmt"
	"math"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/floatx"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops/kilnq"
)

// QuantizeLinear with one scale per channel of the last axis: the builder
// folds a SmoothQuant Mul(X, 1/s) into the per-tensor quantizer that
// follows it (scale_c = scale·s_c), which saves a pass over X.

// lowerChannelQuantize accepts a float32 input quantized along its last
// axis with float32 scales (one per channel) and one zero point for all
// channels (given once or repeated).
func lowerChannelQuantize(l *engine.Layer, p reformatParams) (*engine.Lowered, error) {
	n := l.Node
	sc := l.Const[1]
	x := l.In[0]
	if p.From != ir.Float32 || sc.DType != ir.Float32 || sc.Rank() != 1 || x == nil || !x.HasShape || len(x.Shape) == 0 {
		return nil, fmt.Errorf("%s: per-channel quantization needs a float32 input of known rank and a 1-D float32 scale", n)
	}
	rank := int64(len(x.Shape))
	axis, err := n.AttrInt("axis", 1)
	if err != nil {
		return nil, err
	}
	if axis < 0 {
		axis += rank
	}
	last := x.Shape[rank-1]
	if axis != rank-1 || !last.Known() || last.Value != sc.Len() {
		return nil, fmt.Errorf("%s: per-channel scales have a fast kernel only along the last axis", n)
	}
	if !(p.To == ir.Int8 || p.To == ir.Uint8 || isFP8(p.To)) {
		return nil, fmt.Errorf("%s: %s codes have no fast kernel", n, p.To)
	}
	if hasInput(n, 2) {
		if !isConst(l, 2) || l.Const[2].DType != p.To {
			return nil, fmt.Errorf("%s: the zero point must be a constant of the code type", n)
		}
		zp := l.Const[2]
		z := zp.Float64At(0)
		for i := range zp.Len() {
			if zp.Float64At(i) != z {
				return nil, fmt.Errorf("%s: per-channel zero points differ", n)
			}
		}
		if isFP8(p.To) && z != 0 {
			return nil, fmt.Errorf("%s: float8 zero points must be 0", n)
		}
		p.Zero = int32(z)
	}
	if l.Opset >= 19 {
		s, err := n.AttrInt("saturate", 1)
		if err != nil {
			return nil, err
		}
		p.Sat = s != 0
	}
	p.Op, p.Scales = "quantize", append([]float32(nil), sc.F32()...)
	return lowered("cpu.reformat", &p, nil, []int{0})
}

// quantizeChannels is quantize with the scale of element lo+i's channel
// (its index modulo the channel count): q = float32(x/scale_c), rounded
// half to even plus the zero point, saturating (NaN gives the zero point);
// float8 codes round q, saturating or not.
func quantizeChannels(dst []byte, src []float32, p *reformatParams, lo int) {
	c := len(p.Scales)
	ch := lo % c
	if f, ok := kilnq.FP8Format(p.To); ok {
		for i, v := range src {
			dst[i] = floatx.F64ToF8(float64(v/p.Scales[ch]), f, p.Sat)
			if ch++; ch == c {
				ch = 0
			}
		}
		return
	}
	lo8, hi8 := float64(-128), float64(127)
	if p.To == ir.Uint8 {
		lo8, hi8 = 0, 255
	}
	z := float64(p.Zero)
	for i, v := range src {
		q := math.RoundToEven(float64(v/p.Scales[ch])) + z
		switch {
		case q != q:
			q = z
		case q < lo8:
			q = lo8
		case q > hi8:
			q = hi8
		}
		if p.To == ir.Int8 {
			dst[i] = byte(int8(q))
		} else {
			dst[i] = byte(q)
		}
		if ch++; ch == c {
			ch = 0
		}
	}
}
