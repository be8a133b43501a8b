package quant

import (
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/ir"
)

func benchData(n int) []float32 {
	rng := rand.New(rand.NewPCG(1, 1))
	return randomData(rng, int64(n), 1)
}

func BenchmarkQuantize(b *testing.B) {
	x := benchData(1 << 20)
	dims := []int64{64, 1 << 14}
	amax, _ := Amax(x, dims, 0, 0)
	pc, _ := PerChannelFromAmax(ir.Int8, amax, 0, true)
	pt, _ := FromAmax(ir.Int8, 4, true)
	f8, _ := FromAmax(ir.Float8E4M3FN, 4, false)
	u8, _ := FromMinMax(ir.Uint8, -4, 4)
	for _, c := range []struct {
		name string
		p    *Params
	}{{"int8-per-tensor", pt}, {"int8-per-channel", pc}, {"uint8", u8}, {"e4m3fn", f8}} {
		b.Run("Quantize/"+c.name, func(b *testing.B) {
			b.SetBytes(int64(4 * len(x)))
			for b.Loop() {
				if _, err := QuantizeSlice(x, dims, c.p); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("FakeQuantize/"+c.name, func(b *testing.B) {
			dst := make([]float32, len(x))
			b.SetBytes(int64(4 * len(x)))
			for b.Loop() {
				if err := FakeQuantize(dst, x, dims, c.p); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("Measure/"+c.name, func(b *testing.B) {
			b.SetBytes(int64(4 * len(x)))
			for b.Loop() {
				if _, err := Measure(x, dims, c.p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
