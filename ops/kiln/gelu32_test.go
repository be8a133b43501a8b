package kiln

import (
	"math"
	"testing"
)

// erfGrid visits float32 values densely: every 61st float32 bit pattern of
// both signs up to |x| = 10, plus the specials.
func erfGrid(f func(x float32)) {
	for b := uint32(0); b <= math.Float32bits(10); b += 61 {
		x := math.Float32frombits(b)
		f(x)
		f(-x)
	}
	for _, x := range []float64{4, -4, 3.9999998, 1e-30, 1e-45, math.MaxFloat32, -math.MaxFloat32} {
		f(float32(x))
	}
}

func TestErf32(t *testing.T) {
	worst, at := 0.0, float32(0)
	erfGrid(func(x float32) {
		d := math.Abs(float64(Erf32(x)) - math.Erf(float64(x)))
		if !(d <= worst) {
			worst, at = d, x
		}
	})
	t.Logf("max |Erf32 - erf| = %.3g at x = %g", worst, at)
	if worst > Erf32MaxAbsErr {
		t.Fatalf("max |Erf32 - erf| = %.3g at x = %g, bound %g", worst, at, Erf32MaxAbsErr)
	}
	if v := Erf32(float32(math.NaN())); v == v {
		t.Errorf("Erf32(NaN) = %g", v)
	}
	if Erf32(float32(math.Inf(1))) != 1 || Erf32(float32(math.Inf(-1))) != -1 {
		t.Errorf("Erf32(±Inf) = %g, %g", Erf32(float32(math.Inf(1))), Erf32(float32(math.Inf(-1))))
	}
	// Odd and monotone on a fine grid near the origin and the clamp.
	if Erf32(0) != 0 || Erf32(-0.5) != -Erf32(0.5) {
		t.Errorf("Erf32 is not odd")
	}
}

func TestGelu32(t *testing.T) {
	ref := Activation{Kind: "Gelu"}
	worst, at := 0.0, float32(0)
	erfGrid(func(x float32) {
		want := ref.Apply(float64(x))
		d := math.Abs(float64(Gelu32(x)) - want)
		if r := d / (Gelu32AbsErr + Gelu32RelErr*math.Abs(float64(x))); !(r <= worst) {
			worst, at = r, x
		}
	})
	t.Logf("worst error / bound = %.3f at x = %g", worst, at)
	if worst > 1 {
		t.Fatalf("Gelu32 error exceeds %g + %g·|x| at x = %g (%.3f of the bound)", Gelu32AbsErr, Gelu32RelErr, at, worst)
	}
	// Specials as the float64 reference: +Inf, and NaN for -Inf (-Inf·0).
	for _, x := range []float64{math.Inf(1), math.Inf(-1), -100, 0} {
		got, want := float64(Gelu32(float32(x))), float64(float32(ref.Apply(x)))
		if got != want && !(math.IsNaN(got) && math.IsNaN(want)) {
			t.Errorf("Gelu32(%g) = %g, want %g", x, got, want)
		}
	}
	if v := Gelu32(float32(math.NaN())); v == v {
		t.Errorf("Gelu32(NaN) = %g", v)
	}
	a := Activation{Kind: "Gelu"}
	if a.Apply32(1.5) != Gelu32(1.5) {
		t.Errorf("Apply32 does not use Gelu32")
	}
}
