package cpu

import (
	"github.com/kilnml/kiln/floatx"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops/kilnq"
)

// FP8 layers take E4M3 or E5M2 codes (builder.ChooseFP8Formats gives a
// tensor E5M2 when its range needs E5M2's exponents): both decode through a
// 256-entry table into the float32 GEMM, so the format changes only the
// table.

func isFP8(dt ir.DType) bool {
	_, ok := kilnq.FP8Format(dt)
	return ok
}

// fp8Tables holds the decoding table of each float8 type, built once.
var fp8Tables = func() map[ir.DType]*[256]float32 {
	m := map[ir.DType]*[256]float32{}
	for _, dt := range []ir.DType{ir.Float8E4M3FN, ir.Float8E5M2} {
		f, _ := kilnq.FP8Format(dt)
		var t [256]float32
		for i := range t {
			t[i] = floatx.F8ToF32(uint8(i), f)
		}
		m[dt] = &t
	}
	return m
}()

// fp8Table decodes codes of dt to float32 (nil when dt is no float8 type
// kiln's layers take).
func fp8Table(dt ir.DType) *[256]float32 { return fp8Tables[dt] }

// decodeFP8 returns the values of a float8 weight tensor.
func decodeFP8(t *ir.Tensor) []float32 {
	tab := fp8Table(t.DType)
	out := make([]float32, len(t.Data))
	for i, c := range t.Data {
		out[i] = tab[c]
	}
	return out
}
