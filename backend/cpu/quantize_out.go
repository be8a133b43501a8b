package cpu

import (
	"math"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops/kilnq"
)

// quantizeOutFunc returns l.QuantizeOut as a function to a code byte,
// specialized for int8/uint8 outputs (no per-call format switch): the same
// float32 division, round half to even, zero point and saturation, so the
// codes equal kilnq's bit for bit (TestQuantizeOutFunc). Other formats call
// QuantizeOut.
func quantizeOutFunc(l *kilnq.Layer) func(float32) byte {
	if l.OutType != ir.Int8 && l.OutType != ir.Uint8 {
		return func(y float32) byte { return byte(l.QuantizeOut(y)) }
	}
	lo, hi := float64(-128), float64(127)
	if l.OutType == ir.Uint8 {
		lo, hi = 0, 255
	}
	ys, yz := l.YScale, float64(l.YZero)
	return func(y float32) byte {
		r := math.RoundToEven(float64(float32(y/ys))) + yz
		switch {
		case r >= lo && r <= hi:
			return byte(int32(r))
		case r > hi:
			return byte(int32(hi))
		}
		return byte(int32(lo)) // below, or NaN
	}
}
