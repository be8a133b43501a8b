package kilnq_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
	"github.com/kilnml/kiln/ops/kiln"
	"github.com/kilnml/kiln/ops/kilnq"
)

// residualCodes returns random codes of dt (every byte value for float8,
// NaN codes included) and a zero-point tensor of the same type.
func residualCodes(dt ir.DType, dims []int64, zero int64, seed uint64) (*ir.Tensor, *ir.Tensor) {
	r := rand.New(rand.NewPCG(seed, 7))
	t := ir.NewTensor(dt, dims)
	for i := range t.Data { // raw bytes: codes of any 8-bit type
		t.Data[i] = uint8(r.IntN(256))
	}
	zp := ir.NewTensor(dt, nil)
	if dt == ir.Int8 || dt == ir.Uint8 {
		zp.SetInt64At(0, zero)
	}
	return t, zp
}

func withResidualAttrs(n *ir.Node, zs float32, zz int64) *ir.Node {
	n.Attrs = append(n.Attrs, &ir.Attribute{Name: "z_scale", Type: ir.AttrFloat, F: zs})
	if zz != 0 {
		n.Attrs = append(n.Attrs, &ir.Attribute{Name: "z_zero", Type: ir.AttrInt, I: zz})
	}
	return n
}

func sameBits(a, b *ir.Tensor) int {
	if a.DType == ir.Float32 {
		for i := range a.F32() {
			x, y := a.F32()[i], b.F32()[i]
			if math.Float32bits(x) != math.Float32bits(y) && !(x != x && y != y) {
				return i
			}
		}
		return -1
	}
	for i := range a.Data {
		if a.Data[i] != b.Data[i] {
			return i
		}
	}
	return -1
}

// A quantized residual gives, bit for bit, what ONNX's DequantizeLinear
// followed by the float-residual layer gives, for every residual type,
// zero point and output form.
func TestQuantizedResidualMatchesDequantizeLinear(t *testing.T) {
	qconv, err := ops.Lookup(kiln.Domain, "QConv", 1)
	if err != nil {
		t.Fatal(err)
	}
	dql, err := ops.Lookup("", "DequantizeLinear", 21)
	if err != nil {
		t.Fatal(err)
	}
	x := codes([]int64{2, 4, 5, 5}, 1, -128, 127)
	w := codes([]int64{3, 4, 3, 3}, 2, -127, 127)
	b := ir.FromFloat32s([]int64{3}, []float32{0.5, -1, 0.25})
	cases := []struct {
		dt   ir.DType
		zero int64
	}{{ir.Int8, 0}, {ir.Int8, -5}, {ir.Uint8, 128}, {ir.Uint8, 0}, {ir.Float8E4M3FN, 0}, {ir.Float8E5M2, 0}}
	for ci, tc := range cases {
		for _, zs := range []float32{0.037, 3e-5, 1.5} {
			z, zp := residualCodes(tc.dt, []int64{2, 3, 5, 5}, tc.zero, uint64(ci+1))
			dq, err := dql.Run(ops.NewCtx(&ir.Node{OpType: "DequantizeLinear"}, 21), []*ir.Tensor{z, ir.FromFloat32s(nil, []float32{zs}), zp})
			if err != nil {
				t.Fatal(err)
			}
			for _, ys := range []float32{0, 0.1} {
				for _, act := range []string{"", "Relu"} {
					want, err := qconv.Run(ops.NewCtx(qconvNode(ys, act), 1), []*ir.Tensor{x, w, b, dq[0]})
					if err != nil {
						t.Fatal(err)
					}
					n := withResidualAttrs(qconvNode(ys, act), zs, tc.zero)
					got, err := qconv.Run(ops.NewCtx(n, 1), []*ir.Tensor{x, w, b, z})
					if err != nil {
						t.Fatalf("%s zero %d: %v", tc.dt, tc.zero, err)
					}
					if i := sameBits(want[0], got[0]); i >= 0 {
						t.Fatalf("%s zero %d z_scale %g y_scale %g %q: element %d differs from DequantizeLinear + add", tc.dt, tc.zero, zs, ys, act, i)
					}
				}
			}
		}
	}
}

func TestBadQuantizedResiduals(t *testing.T) {
	op, _ := ops.Lookup(kiln.Domain, "QConv", 1)
	x := codes([]int64{1, 4, 5, 5}, 1, -128, 127)
	w := codes([]int64{3, 4, 3, 3}, 2, -127, 127)
	b := ir.FromFloat32s([]int64{3}, []float32{0, 0, 0})
	f := ir.NewTensor(ir.Float32, []int64{1, 3, 5, 5})
	i8, _ := residualCodes(ir.Int8, []int64{1, 3, 5, 5}, 0, 1)
	e4, _ := residualCodes(ir.Float8E4M3FN, []int64{1, 3, 5, 5}, 0, 1)
	short, _ := residualCodes(ir.Int8, []int64{1, 3, 5, 4}, 0, 1)
	for _, c := range []struct {
		what string
		zs   float32
		zz   int64
		z    *ir.Tensor
	}{
		{"float residual with z_scale", 0.1, 0, f},
		{"int8 residual without z_scale", 0, 0, i8},
		{"z_zero outside int8", 0.1, 200, i8},
		{"z_zero with float8", 0.1, 3, e4},
		{"negative z_scale", -0.1, 0, i8},
		{"infinite z_scale", float32(math.Inf(1)), 0, i8},
		{"z_zero without z_scale", 0, 2, f},
		{"wrong residual dims", 0.1, 0, short},
	} {
		n := qconvNode(0, "")
		if c.zs != 0 || c.zz != 0 {
			n = withResidualAttrs(n, c.zs, c.zz)
		}
		if _, err := op.Run(ops.NewCtx(n, 1), []*ir.Tensor{x, w, b, c.z}); err == nil {
			t.Errorf("%s accepted", c.what)
		}
	}
	// Kernels that read float residuals only parse layers with LayerOf,
	// which refuses a quantized residual so that they decline it.
	n := withResidualAttrs(qconvNode(0, ""), 0.1, 0)
	if _, err := kilnq.LayerOf(n, ir.Int8); err == nil {
		t.Error("LayerOf accepted a quantized residual")
	}
	if l, err := kilnq.ParseLayer(n, ir.Int8); err != nil || l.ZScale != 0.1 {
		t.Errorf("ParseLayer: %v, %+v", err, l)
	}
}
