package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/ir"
)

// A QConv with a mid quantization (kilnq's m_scale: ONNX Runtime's Conv →
// Q → DQ → Add, with the residual as codes) on the SIMD conv equals
// ops/kilnq in every variant at 1-4 threads: int8/uint8 codes, zero points,
// Relu, full and narrow tiles, pointwise and 3×3 convs.
func TestSimdQConvMid(t *testing.T) {
	r := rand.New(rand.NewPCG(47, 48))
	for _, qc := range []qcase{
		{"u8zp-u8out-relu-resid", ir.Uint8, ir.Int8, 0.25, 131, 7, "Relu", true, true},
		{"i8-i8out-resid", ir.Int8, ir.Int8, 0.3, 0, -20, "", true, true},
		{"u8-u8out-resid-nobias", ir.Uint8, ir.Int8, 0.2, 0, 0, "", false, true},
	} {
		for ci, cc := range []convCase{convCases[1], convCases[5],
			{1, 64, 7, 7, 72, 3, 3, 1, 1, 1, 1, ""},   // 49 columns: narrow tails and the column pass
			{1, 16, 14, 14, 40, 1, 1, 1, 0, 1, 1, ""}, // pointwise, 196 columns
		} {
			for _, mid := range []struct {
				scale float32
				zero  int64
			}{{0.11, 3}, {0.013, 0}, {0.9, -100}} {
				mz := mid.zero
				if qc.xt == ir.Uint8 {
					mz += 128
				}
				t.Run(fmt.Sprint(qc.name, "/", ci, "/", mid.scale), func(t *testing.T) {
					attrs := quantAttrs(r, cc.m, qc.yScale, qc.xz, qc.yz, qc.act)
					attrs = append(attrs, aFloat("m_scale", mid.scale))
					if mz != 0 {
						attrs = append(attrs, aInt("m_zero", mz))
					}
					n := convNode("kiln", "QConv", cc, 0, attrs...)
					in, consts := quantInputs(r, qc, []int64{cc.n, cc.c, cc.h, cc.w}, []int64{cc.m, cc.c / cc.group, cc.kh, cc.kw}, cc.m,
						func(in []*ir.Tensor) []int64 { return reference(t, nodeWith(n, in[:2]), in[:2]).Dims })
					checkCodeResidual(t, r, qc, n, in, consts, qc.xt, 5)
				})
			}
		}
	}
}
