package kiln

import "math"

// Erf32 is erf in float32 arithmetic: the rational approximation that
// Eigen and TensorFlow use for float erf, x·P(x²)/Q(x²) with x clamped to
// [-4, 4] (erf(4) rounds to 1 in float32). Every product and sum is rounded
// to float32 explicitly (the conversions stop the compiler from fusing them
// into FMAs), so the result is the same bit for bit on every architecture
// and in every backend that implements the same sequence. Its error against
// math.Erf is below Erf32MaxAbsErr everywhere (TestErf32); NaN stays NaN,
// ±Inf gives ±1.
func Erf32(x float32) float32 {
	if x != x {
		return x
	}
	x = min(max(x, -4), 4)
	x2 := float32(x * x)
	p := float32(-2.72614225801306e-10)
	p = float32(float32(p*x2) + 2.77068142495902e-08)
	p = float32(float32(p*x2) - 2.10102402082508e-06)
	p = float32(float32(p*x2) - 5.69250639462346e-05)
	p = float32(float32(p*x2) - 7.34990630326855e-04)
	p = float32(float32(p*x2) - 2.95459980854025e-03)
	p = float32(float32(p*x2) - 1.60960333262415e-02)
	p = float32(p * x)
	q := float32(-1.45660718464996e-05)
	q = float32(float32(q*x2) - 2.13374055278905e-04)
	q = float32(float32(q*x2) - 1.68282697438203e-03)
	q = float32(float32(q*x2) - 7.37332916720468e-03)
	q = float32(float32(q*x2) - 1.42647390514189e-02)
	return float32(p / q)
}

// Erf32MaxAbsErr bounds |Erf32(x) − erf(x)| over all float32 x (checked on
// a dense grid against math.Erf): 4.5e-7 near x = 3.93, i.e. 8 float32
// ulps of values just below 1; far smaller near 0.
const Erf32MaxAbsErr = 5e-7

// Gelu32 is GELU with erf in float32: 0.5·x·(1 + Erf32(x/√2)), each step
// rounded to float32. It differs from the float64 reference
// (Activation.Apply) by at most Gelu32AbsErr + Gelu32RelErr·|x|.
func Gelu32(x float32) float32 {
	e := Erf32(float32(x * (math.Sqrt2 / 2)))
	return float32(float32(0.5*x) * float32(1+e))
}

// Error bounds of Gelu32 against the float64 GELU (TestGelu32).
const (
	Gelu32AbsErr = 1e-7
	Gelu32RelErr = 5e-7
)

// Apply32 evaluates the activation on a float32 value as the CPU kernels
// and the quantized layers (ops/kilnq) do: GELU with Gelu32, every other
// activation as Apply in float64 rounded to float32.
func (a *Activation) Apply32(x float32) float32 {
	switch a.Kind {
	case "":
		return x
	case "Relu":
		if x > 0 || x != x {
			return x
		}
		return 0
	case "Gelu":
		return Gelu32(x)
	}
	return float32(a.Apply(float64(x)))
}
