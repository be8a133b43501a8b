package cpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops/kilnq"
)

func TestQuantizeOutFunc(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	for _, c := range []struct {
		dt    ir.DType
		scale float32
		zero  int32
	}{{ir.Int8, 0.05, 0}, {ir.Uint8, 0.031, 128}, {ir.Uint8, 0.2, 3}, {ir.Int8, 1e-3, 0}} {
		l := &kilnq.Layer{OutType: c.dt, YScale: c.scale, YZero: c.zero}
		f := quantizeOutFunc(l)
		check := func(y float32) {
			if got, want := f(y), byte(l.QuantizeOut(y)); got != want {
				t.Fatalf("%s scale %g zero %d: y = %g: code %d, want %d", c.dt, c.scale, c.zero, y, got, want)
			}
		}
		for i := 0; i < 200000; i++ {
			check(float32(r.NormFloat64() * 10 * float64(c.scale) * 20))
		}
		// Exact ties, the saturation edges and specials.
		for k := -300; k <= 300; k++ {
			check(float32(float64(k)+0.5) * c.scale)
			check(float32(k) * c.scale)
		}
		for _, y := range []float64{math.Inf(1), math.Inf(-1), math.NaN(), math.MaxFloat32, -math.MaxFloat32, 0, math.Copysign(0, -1)} {
			check(float32(y))
		}
	}
}

// rowScale equals kilnq.RowScale and reports NaN rows.
func TestRowScale(t *testing.T) {
	r := rand.New(rand.NewPCG(43, 44))
	specials := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1)), math.MaxFloat32, 1e-40}
	for n := 0; n < 40; n++ {
		for rep := 0; rep < 50; rep++ {
			row := make([]float32, n)
			hasNaN := false
			for i := range row {
				row[i] = float32(r.NormFloat64() * 3)
				if r.IntN(6) == 0 {
					row[i] = specials[r.IntN(len(specials))]
				}
				hasNaN = hasNaN || row[i] != row[i]
			}
			s, nan := rowScale(row)
			if want := kilnq.RowScale(row); math.Float32bits(s) != math.Float32bits(want) || nan != hasNaN {
				t.Fatalf("row %v: scale %g nan %v, want %g %v", row, s, nan, want, hasNaN)
			}
		}
	}
}
