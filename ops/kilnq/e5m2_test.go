package kilnq_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
	"github.com/kilnml/kiln/ops/kiln"
)

// decodeRef decodes a float8 code with e exponent and m mantissa bits and
// IEEE-like layout (bias 2^(e-1)−1, subnormals at exponent 0) in float64.
// E4M3FN has no infinities (only S.1111.111 is NaN); E5M2 has IEEE ones.
func decodeRef(c uint8, e, m int, fn bool) float64 {
	sign := 1.0
	if c&0x80 != 0 {
		sign = -1
	}
	ex := int(c>>m) & (1<<e - 1)
	man := int(c) & (1<<m - 1)
	bias := 1<<(e-1) - 1
	switch {
	case fn && ex == 1<<e-1 && man == 1<<m-1:
		return math.NaN()
	case !fn && ex == 1<<e-1:
		if man == 0 {
			return sign * math.Inf(1)
		}
		return math.NaN()
	case ex == 0:
		return sign * float64(man) / float64(int(1)<<m) * math.Ldexp(1, 1-bias)
	}
	return sign * (1 + float64(man)/float64(int(1)<<m)) * math.Ldexp(1, ex-bias)
}

func e5m2Ref(c uint8) float64 { return decodeRef(c, 5, 2, false) }
func e4m3Ref(c uint8) float64 { return decodeRef(c, 4, 3, true) }

// quantizeE5M2Ref is saturating round-to-nearest-even E5M2 by search over
// every finite code: the nearest value wins, a tie goes to the even code
// (its last mantissa bit is 0); beyond 57344 saturates; the sign is kept.
func quantizeE5M2Ref(v float64) uint8 {
	a := math.Abs(v)
	best, bestD := uint8(0), math.Inf(1)
	for c := 0; c <= 0x7b; c++ {
		d := math.Abs(e5m2Ref(uint8(c)) - a)
		if d < bestD || (d == bestD && c%2 == 0) {
			best, bestD = uint8(c), d
		}
	}
	if math.Signbit(v) {
		best |= 0x80
	}
	return best
}

// TestQMatMulE5M2BitExact: kiln.QMatMul over E5M2 activations and E4M3
// weights (the mixed form of an FP8 engine whose activation needs E5M2's
// range) against an independent float64 loop: codes decoded by decodeRef,
// exact float64 sums, the documented float32 epilogue, and E5M2 output
// codes from the search above. Scales put outputs across E5M2's range:
// subnormals, zero, normals and saturation.
func TestQMatMulE5M2BitExact(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	const M, K, N = 15, 40, 7
	x := ir.NewTensor(ir.Float8E5M2, []int64{3, 5, K})
	w := ir.NewTensor(ir.Float8E4M3FN, []int64{K, N})
	for i := range x.Data {
		c := uint8(r.IntN(256))
		if c&0x7c == 0x7c { // no Inf/NaN inputs
			c &^= 0x40
		}
		x.Data[i] = c
	}
	for i := range w.Data {
		c := uint8(r.IntN(256))
		if c&0x7f == 0x7f {
			c = 0
		}
		w.Data[i] = c
	}
	bias := ir.NewTensor(ir.Float32, []int64{N})
	z := ir.NewTensor(ir.Float32, []int64{3, 5, N})
	// Sums of random E5M2×E4M3 products reach about 2^25; small bias and
	// residual and w_scales from 2^-54 to 2^-12 spread y/y_scale from E5M2's
	// subnormals to beyond its maximum.
	for i := range bias.F32() {
		bias.F32()[i] = float32(1e-8 * r.NormFloat64())
	}
	for i := range z.F32() {
		z.F32()[i] = float32(1e-8 * r.NormFloat64())
	}
	ws := make([]float32, N)
	for i := range ws {
		ws[i] = float32(math.Ldexp(1+r.Float64(), -54+7*i))
	}
	const xs = 0.37
	for _, ys := range []float32{0, 0.75, 3e-3} {
		for _, act := range []string{"", "Relu"} {
			attrs := []*ir.Attribute{{Name: "x_scale", Type: ir.AttrFloat, F: xs}, {Name: "w_scales", Type: ir.AttrFloats, Floats: ws},
				{Name: "y_scale", Type: ir.AttrFloat, F: ys}}
			attrs = append(attrs, kiln.Activation{Kind: act}.Attrs()...)
			n := &ir.Node{Name: "mm", OpType: "QMatMul", Domain: kiln.Domain, Inputs: []string{"x", "w", "b", "z"}, Outputs: []string{"y"}, Attrs: attrs}
			op, _ := ops.Lookup(kiln.Domain, "QMatMul", 1)
			out, err := op.Run(ops.NewCtx(n, 1), []*ir.Tensor{x, w, bias, z})
			if err != nil {
				t.Fatal(err)
			}
			got := out[0]
			if want := map[bool]ir.DType{true: ir.Float32, false: ir.Float8E5M2}[ys == 0]; got.DType != want {
				t.Fatalf("y_scale %g: output %s, want %s", ys, got.DType, want)
			}
			kinds := map[string]int{}
			for i := range M {
				for j := range N {
					acc := 0.0
					for k := range K {
						acc += e5m2Ref(x.Data[i*K+k]) * e4m3Ref(w.Data[k*N+j])
					}
					m := float32(float32(xs) * ws[j])
					y := float32(float32(acc) * m)
					y = float32(y + bias.F32()[j])
					y = float32(y + z.F32()[i*N+j])
					if act == "Relu" && y < 0 {
						y = 0
					}
					idx := i*N + j
					if ys == 0 {
						if g := got.F32()[idx]; math.Float32bits(g) != math.Float32bits(y) {
							t.Fatalf("act %q: [%d,%d] = %v, want %v", act, i, j, g, y)
						}
						continue
					}
					q := float64(float32(y / ys))
					want := quantizeE5M2Ref(q)
					switch a := math.Abs(q); {
					case a > 57344:
						kinds["saturated"]++
					case a < 0x1p-14:
						kinds["subnormal or zero"]++
					default:
						kinds["normal"]++
					}
					if g := got.Data[idx]; g != want {
						t.Fatalf("act %q y_scale %g: [%d,%d] y/y_scale = %v: code %#02x (%v), want %#02x (%v)", act, ys, i, j, q, g, e5m2Ref(g), want, e5m2Ref(want))
					}
				}
			}
			if ys == 3e-3 {
				t.Logf("act %q: E5M2 output codes %v", act, kinds)
			}
			if ys == 3e-3 && (kinds["saturated"] == 0 || kinds["subnormal or zero"] == 0 || kinds["normal"] == 0) {
				t.Errorf("act %q: outputs do not cover E5M2's range: %v", act, kinds)
			}
		}
	}
}
