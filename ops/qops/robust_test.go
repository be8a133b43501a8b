package qops

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// TestNoPanics feeds every kernel and inference function of this package
// random mixes of odd inputs (absent, empty, wrong types and shapes) and
// attributes: each must return a value or an error, never panic.
func TestNoPanics(t *testing.T) {
	pool := []*ir.Tensor{
		nil, f32(nil, 1), f32([]int64{0}), f32([]int64{2, 3}, 1, 2, 3, 4, 5, 6), f32([]int64{3}, 0, -1, 2),
		ints(ir.Uint8, []int64{2, 3}, 1, 2, 3, 4, 5, 6), ints(ir.Int8, []int64{3}, 1, -2, 3), ints(ir.Int32, []int64{1}, 7),
		ints(ir.Uint8, nil, 3), ints(ir.Int8, nil, -1), ints(ir.Int4, []int64{3}, 1, -8, 7), ints(ir.Uint2, []int64{5}, 1, 2, 3, 0, 1),
		ir.FromFloat64s(ir.Float16, []int64{2}, []float64{1, 2}), ir.FromFloat64s(ir.Float8E4M3FN, []int64{2}, []float64{1, 2}),
		ir.FromFloat64s(ir.Float4E2M1, []int64{3}, []float64{1, 2, 3}), ints(ir.Bool, []int64{1}, 1),
		ints(ir.Uint8, []int64{1, 1, 2, 2}, 1, 2, 3, 4), ints(ir.Int8, []int64{2, 1, 1, 1}, 1, 2), ir.NewTensor(ir.Uint8, []int64{1, 2, 3, 3}),
		ir.NewTensor(ir.Int8, []int64{4, 1, 2, 2}), ints(ir.Uint64, []int64{2}, 1, 2), ints(ir.Int64, []int64{2}, -1, 5),
		{DType: ir.String, Dims: []int64{2}, Strings: [][]byte{[]byte("1.5"), []byte("x")}},
		{DType: ir.Float32, Dims: []int64{4}, Data: make([]byte, 3)}, // corrupt
	}
	attrPool := []*ir.Attribute{
		aInt("axis", 5), aInt("axis", -1), aInt("axis", 0), aInt("block_size", 2), aInt("block_size", -3),
		aInt("saturate", 0), aInt("output_dtype", int64(ir.Int4)), aInt("output_dtype", 99), aInt("precision", int64(ir.Float16)),
		aInt("to", int64(ir.Float8E5M2)), aInt("to", int64(ir.String)), aInt("to", 0), aInt("to", int64(ir.Int2)),
		aStr("round_mode", "nearest"), aStr("round_mode", "x"), aInt("group", 0), aInt("group", 2), aInts("kernel_shape", 2),
		aInts("kernel_shape", 1, 1), aInts("pads", 1, 1, 1, 1), aInts("pads", -1, 0, 0, 0), aInts("strides", 0, 1),
		aInts("dilations", 2, 2), aStr("auto_pad", "SAME_LOWER"), aStr("auto_pad", "VALID"), aStr("axis", "wrong type"),
	}
	opsets := []int64{10, 13, 19, 21, 25}
	types := []*ir.Type{nil, {Kind: ir.KindTensor, DType: ir.Float32}, ir.TensorType(ir.Uint8, ir.Shape{ir.D(1), ir.D(1), ir.D(3), ir.D(3)}),
		ir.TensorType(ir.Int8, ir.Shape{ir.Sym("n"), ir.D(2)}), ir.TensorType(ir.Float16, ir.Shape{}), ir.TensorType(ir.Int32, ir.Shape{ir.D(3)})}
	r := rand.New(rand.NewSource(5))
	for _, op := range []string{"Cast", "CastLike", "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear",
		"QLinearMatMul", "QLinearConv", "ConvInteger", "MatMulInteger"} {
		for trial := 0; trial < 1500; trial++ {
			in := make([]*ir.Tensor, r.Intn(10))
			for i := range in {
				in[i] = pool[r.Intn(len(pool))]
			}
			var attrs []*ir.Attribute
			for k := r.Intn(4); k > 0; k-- {
				attrs = append(attrs, attrPool[r.Intn(len(attrPool))])
			}
			opset := opsets[r.Intn(len(opsets))]
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("%s opset %d panicked on inputs %v attrs %v: %v", op, opset, in, attrNames(attrs), p)
					}
				}()
				run(opset, op, attrs, in...)
			}()
			ts := make([]*ir.Type, len(in))
			for i := range ts {
				ts[i] = types[r.Intn(len(types))]
			}
			n := &ir.Node{Name: "node1", OpType: op, Attrs: attrs, Inputs: make([]string, len(in)), Outputs: []string{"y", "s", "z"}}
			o, err := ops.Lookup("", op, opset)
			if err != nil {
				continue
			}
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("%s inference panicked on %v attrs %v: %v", op, ts, attrNames(attrs), p)
					}
				}()
				o.Infer(ops.NewInferCtx(n, opset, ts, make([]*ir.Tensor, len(ts)), make([]ir.Shape, len(ts))))
			}()
		}
	}
}

func attrNames(as []*ir.Attribute) []string {
	var s []string
	for _, a := range as {
		s = append(s, fmt.Sprintf("%s=%d%s%v", a.Name, a.I, a.S, a.Ints))
	}
	return s
}
