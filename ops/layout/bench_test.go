package layout

import (
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

func benchOp(b *testing.B, op string, in []*ir.Tensor, attrs ...*ir.Attribute) {
	n := mkNode(op, in, 1, attrs...)
	o, err := ops.Lookup("", op, 17)
	if err != nil {
		b.Fatal(err)
	}
	c := ops.NewCtx(n, 17)
	bytes := int64(0)
	for _, t := range in {
		bytes += int64(len(t.Data))
	}
	b.SetBytes(bytes)
	b.ResetTimer()
	for range b.N {
		if _, err := o.Run(c, in); err != nil {
			b.Fatal(err)
		}
	}
}

// BERT-style head split: [batch, seq, heads, dim] -> [batch, heads, seq, dim].
func BenchmarkTransposeHeads(b *testing.B) {
	benchOp(b, "Transpose", []*ir.Tensor{iota(8, 128, 4, 64)}, aInts("perm", 0, 2, 1, 3))
}

// Last-two-axes swap: the inner loop is strided.
func BenchmarkTransposeLast2(b *testing.B) {
	benchOp(b, "Transpose", []*ir.Tensor{iota(8, 4, 128, 64)}, aInts("perm", 0, 1, 3, 2))
}

func BenchmarkConcatChannels(b *testing.B) {
	benchOp(b, "Concat", []*ir.Tensor{iota(8, 64, 28, 28), iota(8, 64, 28, 28)}, aInt("axis", 1))
}

func BenchmarkGatherEmbedding(b *testing.B) {
	idx := ir.NewTensor(ir.Int64, dims(8, 128))
	for i := range idx.I64() {
		idx.I64()[i] = int64(i*7919) % 30000
	}
	benchOp(b, "Gather", []*ir.Tensor{iota(30000, 256), idx})
}

func BenchmarkSliceStep2(b *testing.B) {
	benchOp(b, "Slice", []*ir.Tensor{iota(8, 64, 56, 56), vec(0, 0), vec(56, 56), vec(2, 3), vec(2, 2)})
}

func BenchmarkPadReflect(b *testing.B) {
	benchOp(b, "Pad", []*ir.Tensor{iota(8, 64, 56, 56), vec(0, 0, 1, 1, 0, 0, 1, 1)}, aStr("mode", "reflect"))
}
