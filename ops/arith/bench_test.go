package arith

import (
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

func benchOp(b *testing.B, op string, opset int64, a []*ir.Attribute, in ...*ir.Tensor) {
	impl, err := ops.Lookup("", op, opset)
	if err != nil {
		b.Fatal(err)
	}
	n := &ir.Node{Name: "n", OpType: op, Outputs: []string{"y"}, Attrs: a}
	for range in {
		n.Inputs = append(n.Inputs, "x")
	}
	b.SetBytes(in[0].Len() * 4)
	for b.Loop() {
		if _, err := impl.Run(ops.NewCtx(n, opset), in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAddBiasNCHW(b *testing.B) {
	benchOp(b, "Add", 14, nil, ir.NewTensor(ir.Float32, dims(1, 64, 56, 56)), ir.NewTensor(ir.Float32, dims(64, 1, 1)))
}

func BenchmarkRelu(b *testing.B) {
	benchOp(b, "Relu", 14, nil, ir.NewTensor(ir.Float32, dims(1, 64, 56, 56)))
}

func BenchmarkSoftmax(b *testing.B) {
	benchOp(b, "Softmax", 13, nil, ir.NewTensor(ir.Float32, dims(4, 128, 128)))
}

func BenchmarkReduceMeanLastAxis(b *testing.B) {
	benchOp(b, "ReduceMean", 18, nil, ir.NewTensor(ir.Float32, dims(128, 256)), i64(dims(1), -1))
}
