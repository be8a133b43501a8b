package nn

import (
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// benchOp runs op on in b.N times and reports GFLOP/s for flops per call.
func benchOp(b *testing.B, op string, opset int64, at []*ir.Attribute, flops float64, in ...*ir.Tensor) {
	impl, err := ops.Lookup("", op, opset)
	if err != nil {
		b.Fatal(err)
	}
	n := &ir.Node{Name: "bench", OpType: op, Attrs: at, Outputs: []string{"y"}}
	for range in {
		n.Inputs = append(n.Inputs, "x")
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := impl.Run(ops.NewCtx(n, opset), in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func f32Rand(r *rand.Rand, d ...int64) *ir.Tensor {
	return ir.FromFloat64s(ir.Float32, d, randT(r, d...).Float64s())
}

// ResNet-50 layer shapes: the 7x7/2 stem, a 3x3 bottleneck conv and a 1x1.
func BenchmarkConvStem(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	x, w := f32Rand(r, 1, 3, 224, 224), f32Rand(r, 64, 3, 7, 7)
	benchOp(b, "Conv", 11, attrs(aInts("strides", 2, 2), aInts("pads", 3, 3, 3, 3)), 2*64*3*49*112*112, x, w)
}

func BenchmarkConv3x3(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	x, w := f32Rand(r, 1, 128, 28, 28), f32Rand(r, 128, 128, 3, 3)
	benchOp(b, "Conv", 11, attrs(aInts("pads", 1, 1, 1, 1)), 2*128*128*9*28*28, x, w)
}

func BenchmarkConv1x1(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 3))
	x, w := f32Rand(r, 1, 1024, 14, 14), f32Rand(r, 256, 1024, 1, 1)
	benchOp(b, "Conv", 11, nil, 2*256*1024*14*14, x, w)
}

func BenchmarkMatMul(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 4))
	x, w := f32Rand(r, 128, 256), f32Rand(r, 256, 256)
	benchOp(b, "MatMul", 13, nil, 2*128*256*256, x, w)
}
