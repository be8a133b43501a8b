package kilnq_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
	_ "github.com/kilnml/kiln/ops/all"
	"github.com/kilnml/kiln/ops/kiln"
	"github.com/kilnml/kiln/ops/kilnq"
)

func codes(dims []int64, seed uint64, lo, hi int) *ir.Tensor {
	r := rand.New(rand.NewPCG(seed, 2))
	t := ir.NewTensor(ir.Int8, dims)
	for i := range t.I8() {
		t.I8()[i] = int8(lo + r.IntN(hi-lo+1))
	}
	return t
}

func qconvNode(yScale float32, act string) *ir.Node {
	attrs := []*ir.Attribute{
		{Name: "x_scale", Type: ir.AttrFloat, F: 0.05},
		{Name: "w_scales", Type: ir.AttrFloats, Floats: []float32{0.01, 0.02, 0.004}},
		{Name: "y_scale", Type: ir.AttrFloat, F: yScale},
		{Name: "pads", Type: ir.AttrInts, Ints: []int64{1, 1, 1, 1}},
	}
	attrs = append(attrs, kiln.Activation{Kind: act}.Attrs()...)
	return &ir.Node{Name: "q", OpType: "QConv", Domain: kiln.Domain, Inputs: []string{"x", "w", "b", "z"}, Outputs: []string{"y"}, Attrs: attrs}
}

// QConv equals an independent int32 loop followed by the documented
// float32 epilogue, bit for bit.
func TestQConvBitExact(t *testing.T) {
	x := codes([]int64{2, 4, 5, 5}, 1, -128, 127)
	w := codes([]int64{3, 4, 3, 3}, 2, -127, 127)
	b := ir.FromFloat32s([]int64{3}, []float32{0.5, -1, 0.25})
	z := ir.NewTensor(ir.Float32, []int64{2, 3, 5, 5})
	for i := range z.F32() {
		z.F32()[i] = float32(i%7) * 0.1
	}
	for _, ys := range []float32{0, 0.1} {
		n := qconvNode(ys, "Relu")
		op, err := ops.Lookup(kiln.Domain, "QConv", 1)
		if err != nil {
			t.Fatal(err)
		}
		c := ops.NewCtx(n, 1)
		out, err := op.Run(c, []*ir.Tensor{x, w, b, z})
		if err != nil {
			t.Fatal(err)
		}
		l, _ := kilnq.LayerOf(n, ir.Int8)
		xv, wv := x.I8(), w.I8()
		for nb := 0; nb < 2; nb++ {
			for oc := 0; oc < 3; oc++ {
				for oy := 0; oy < 5; oy++ {
					for ox := 0; ox < 5; ox++ {
						var acc int32
						for ic := 0; ic < 4; ic++ {
							for ky := 0; ky < 3; ky++ {
								for kx := 0; kx < 3; kx++ {
									iy, ix := oy+ky-1, ox+kx-1
									if iy < 0 || iy >= 5 || ix < 0 || ix >= 5 {
										continue
									}
									acc += int32(xv[((nb*4+ic)*5+iy)*5+ix]) * int32(wv[((oc*4+ic)*3+ky)*3+kx])
								}
							}
						}
						i := ((nb*3+oc)*5+oy)*5 + ox
						y := l.Epilogue(float32(acc), oc, b.F32()[oc], z.F32()[i])
						if ys == 0 {
							if got := out[0].F32()[i]; got != y {
								t.Fatalf("float out [%d]: %v want %v", i, got, y)
							}
						} else if got, want := int64(out[0].I8()[i]), l.QuantizeOut(y); got != want {
							t.Fatalf("int8 out [%d]: %v want %v", i, got, want)
						}
					}
				}
			}
		}
	}
}

// A QMatMul over E4M3 codes matches the float product of the decoded values.
func TestQMatMulFP8(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	a := ir.NewTensor(ir.Float32, []int64{2, 3})
	bm := ir.NewTensor(ir.Float32, []int64{3, 4})
	for i := range a.F32() {
		a.F32()[i] = float32(r.NormFloat64())
	}
	for i := range bm.F32() {
		bm.F32()[i] = float32(r.NormFloat64())
	}
	aq := ir.NewTensor(ir.Float8E4M3FN, a.Dims)
	bq := ir.NewTensor(ir.Float8E4M3FN, bm.Dims)
	for i, v := range a.F32() {
		aq.SetFloat64At(int64(i), float64(v)/0.01)
	}
	for i, v := range bm.F32() {
		bq.SetFloat64At(int64(i), float64(v)/0.02)
	}
	n := &ir.Node{Name: "mm", OpType: "QMatMul", Domain: kiln.Domain, Inputs: []string{"a", "b"}, Outputs: []string{"y"}, Attrs: []*ir.Attribute{
		{Name: "x_scale", Type: ir.AttrFloat, F: 0.01}, {Name: "w_scales", Type: ir.AttrFloats, Floats: []float32{0.02}}}}
	op, _ := ops.Lookup(kiln.Domain, "QMatMul", 1)
	out, err := op.Run(ops.NewCtx(n, 1), []*ir.Tensor{aq, bq})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		for j := 0; j < 4; j++ {
			want := 0.0
			for k := 0; k < 3; k++ {
				want += a.Float64At(int64(i*3+k)) * bm.Float64At(int64(k*4+j))
			}
			if got := float64(out[0].F32()[i*4+j]); math.Abs(got-want) > 0.1*(1+math.Abs(want)) {
				t.Errorf("[%d,%d] = %v, want about %v", i, j, got, want)
			}
		}
	}
}

func TestBadQuantizedLayers(t *testing.T) {
	op, _ := ops.Lookup(kiln.Domain, "QConv", 1)
	x := codes([]int64{1, 4, 5, 5}, 1, -128, 127)
	w := codes([]int64{3, 4, 3, 3}, 2, -127, 127)
	bad := qconvNode(0.1, "")
	bad.Attrs[1].Floats = []float32{0.1, 0.2} // 2 scales for 3 channels
	if _, err := op.Run(ops.NewCtx(bad, 1), []*ir.Tensor{x, w}); err == nil {
		t.Error("wrong number of w_scales accepted")
	}
	bad = qconvNode(0.1, "")
	bad.Attrs[0].F = 0
	if _, err := op.Run(ops.NewCtx(bad, 1), []*ir.Tensor{x, w}); err == nil {
		t.Error("zero x_scale accepted")
	}
	f := ir.NewTensor(ir.Float32, x.Dims)
	if _, err := op.Run(ops.NewCtx(qconvNode(0.1, ""), 1), []*ir.Tensor{f, w}); err == nil {
		t.Error("float activation accepted")
	}
}

// With y_scale set, an E4M3 layer writes codes (the bytes), not the codes'
// numeric values re-encoded.
func TestFP8OutputCodes(t *testing.T) {
	aq := ir.NewTensor(ir.Float8E4M3FN, []int64{1, 2})
	bq := ir.NewTensor(ir.Float8E4M3FN, []int64{2, 1})
	aq.SetFloat64At(0, 3)
	aq.SetFloat64At(1, -1.5)
	bq.SetFloat64At(0, 2)
	bq.SetFloat64At(1, 4)
	n := &ir.Node{Name: "mm", OpType: "QMatMul", Domain: kiln.Domain, Inputs: []string{"a", "b"}, Outputs: []string{"y"}, Attrs: []*ir.Attribute{
		{Name: "x_scale", Type: ir.AttrFloat, F: 0.5}, {Name: "w_scales", Type: ir.AttrFloats, Floats: []float32{0.25}},
		{Name: "y_scale", Type: ir.AttrFloat, F: 0.125}}}
	op, _ := ops.Lookup(kiln.Domain, "QMatMul", 1)
	out, err := op.Run(ops.NewCtx(n, 1), []*ir.Tensor{aq, bq})
	if err != nil {
		t.Fatal(err)
	}
	// acc = 3·2 − 1.5·4 = 0 → y = 0; use a second case with a non-zero result.
	aq.SetFloat64At(1, 1.5)
	out, _ = op.Run(ops.NewCtx(n, 1), []*ir.Tensor{aq, bq})
	// acc = 12, y = 12·0.5·0.25 = 1.5, code for 1.5/0.125 = 12.
	if out[0].DType != ir.Float8E4M3FN || out[0].Float64At(0) != 12 {
		t.Fatalf("got %s %v, want E4M3 12", out[0].DType, out[0].Float64s())
	}
}
