package kilnq

import (
	"fmt"
	"math"

	"github.com/kilnml/kiln/ir"
)

// parseMid reads m_scale and m_zero: a quantization of the conv's output
// before its residual add (ONNX Runtime's Conv → Q → DQ → Add), allowed on
// layers that write int8 or uint8 codes, over those codes' range.
func (l *Layer) parseMid(n *ir.Node) error {
	ms, err := n.AttrFloat("m_scale", 0)
	if err != nil {
		return err
	}
	mz, err := n.AttrInt("m_zero", 0)
	if err != nil {
		return err
	}
	if ms == 0 {
		if mz != 0 {
			return fmt.Errorf("%s: m_zero %d without m_scale", n, mz)
		}
		return nil
	}
	if !(ms > 0) || math.IsInf(float64(ms), 0) {
		return fmt.Errorf("%s: m_scale %v must be positive and finite", n, ms)
	}
	lo, hi, ok := codeRange(l.OutType)
	if !ok {
		return fmt.Errorf("%s: m_scale needs int8 or uint8 output codes, not %s", n, l.OutType)
	}
	if mz < int64(lo) || mz > int64(hi) {
		return fmt.Errorf("%s: m_zero %d outside %s's range", n, mz, l.OutType)
	}
	l.MScale, l.MZero = ms, int32(mz)
	return nil
}

// MidBounds is the range of the mid quantization's codes minus MZero.
func (l *Layer) MidBounds() (float32, float32) {
	lo, hi, _ := codeRange(l.OutType)
	return float32(lo - l.MZero), float32(hi - l.MZero)
}

// MidValue is DequantizeLinear(QuantizeLinear(y)) with MScale and MZero
// over the output codes: float32((saturate(round_half_even(float32(y /
// MScale)) + MZero) − MZero)·MScale); NaN gives the zero point's value, 0.
func (l *Layer) MidValue(y float32) float32 {
	qlo, qhi := l.MidBounds()
	q := float32(math.RoundToEven(float64(float32(y / l.MScale))))
	switch {
	case q != q:
		q = 0
	case q < qlo:
		q = qlo
	case q > qhi:
		q = qhi
	}
	return float32(q * l.MScale)
}
