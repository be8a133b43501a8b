package nn

import (
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

func TestGemm(t *testing.T) {
	a := f32(dims(2, 2), 1, 2, 3, 4)
	b := f32(dims(2, 2), 5, 6, 7, 8)
	near(t, "plain", mustCall(t, "Gemm", 13, nil, a, b), dims(2, 2), []float64{19, 22, 43, 50}, 0)
	near(t, "transA", mustCall(t, "Gemm", 13, attrs(aInt("transA", 1)), a, b), dims(2, 2), []float64{26, 30, 38, 44}, 0)
	near(t, "transB", mustCall(t, "Gemm", 13, attrs(aInt("transB", 1)), a, b), dims(2, 2), []float64{17, 23, 39, 53}, 0)
	near(t, "both", mustCall(t, "Gemm", 13, attrs(aInt("transA", 1), aInt("transB", 1)), a, b), dims(2, 2),
		[]float64{23, 31, 34, 46}, 0)
	ab := attrs(aFloat("alpha", 2), aFloat("beta", 0.5))
	near(t, "row bias", mustCall(t, "Gemm", 13, ab, a, b, f32(dims(2), 10, 20)), dims(2, 2),
		[]float64{43, 54, 91, 110}, 0)
	near(t, "column bias", mustCall(t, "Gemm", 13, ab, a, b, f32(dims(2, 1), 10, 20)), dims(2, 2),
		[]float64{43, 49, 96, 110}, 0)
	near(t, "scalar bias", mustCall(t, "Gemm", 13, ab, a, b, f32(nil, 10)), dims(2, 2),
		[]float64{43, 49, 91, 105}, 0)
	// non-square with transposes against a direct loop
	r := rand.New(rand.NewPCG(5, 6))
	A, B, C := randT(r, 7, 3), randT(r, 5, 7), randT(r, 3, 5)
	want := make([]float64, 15)
	for i := int64(0); i < 3; i++ {
		for j := int64(0); j < 5; j++ {
			s := 0.0
			for k := int64(0); k < 7; k++ {
				s += A.Float64At(k*3+i) * B.Float64At(j*7+k)
			}
			want[i*5+j] = 0.25*s - 2*C.Float64At(i*5+j)
		}
	}
	y := mustCall(t, "Gemm", 13, attrs(aInt("transA", 1), aInt("transB", 1), aFloat("alpha", 0.25), aFloat("beta", -2)), A, B, C)
	near(t, "random", y, dims(3, 5), want, 1e-12)

	wantErr(t, "Gemm", 13, nil, "inner dimensions", a, f32(dims(3, 2), 1, 2, 3, 4, 5, 6))
	wantErr(t, "Gemm", 13, nil, "broadcast", a, b, f32(dims(3), 1, 2, 3))
	wantErr(t, "Gemm", 9, nil, "required", a, b)
	wantErr(t, "Gemm", 13, nil, "2-D", f32(dims(4), 1, 2, 3, 4), b)
}

// refMatMul multiplies with numpy's rules spelled out: promote 1-D operands,
// broadcast batch dims, then drop the promoted axes.
func refMatMul(a, b *ir.Tensor) ([]int64, []float64) {
	ad, bd := a.Dims, b.Dims
	if len(ad) == 1 {
		ad = []int64{1, ad[0]}
	}
	if len(bd) == 1 {
		bd = []int64{bd[0], 1}
	}
	m, k, n := ad[len(ad)-2], ad[len(ad)-1], bd[len(bd)-1]
	batch, _ := ops.BroadcastDims(ad[:len(ad)-2], bd[:len(bd)-2])
	bc := ops.NewBroadcast(batch, ad[:len(ad)-2], bd[:len(bd)-2])
	var out []float64
	for bi := int64(0); bi < bc.NumElem; bi++ {
		ao, bo := bc.Index(0, bi)*m*k, bc.Index(1, bi)*k*n
		for i := int64(0); i < m; i++ {
			for j := int64(0); j < n; j++ {
				s := 0.0
				for q := int64(0); q < k; q++ {
					s += a.Float64At(ao+i*k+q) * b.Float64At(bo+q*n+j)
				}
				out = append(out, s)
			}
		}
	}
	d := append([]int64{}, batch...)
	if len(a.Dims) > 1 {
		d = append(d, m)
	}
	if len(b.Dims) > 1 {
		d = append(d, n)
	}
	return d, out
}

func TestMatMul(t *testing.T) {
	y := mustCall(t, "MatMul", 13, nil, f32(dims(3), 1, 2, 3), f32(dims(3), 4, 5, 6))
	near(t, "dot", y, dims(), []float64{32}, 0)
	r := rand.New(rand.NewPCG(7, 8))
	for _, sh := range [][2][]int64{
		{dims(3, 4), dims(4, 5)},
		{dims(4), dims(2, 4, 3)},
		{dims(2, 3, 4), dims(4)},
		{dims(2, 1, 2, 3), dims(3, 3, 2)},
		{dims(1, 3, 1), dims(5, 1, 4)},
		{dims(2, 0, 3), dims(3, 2)},
		{dims(9, 7), dims(7, 6)},          // blocks of four rows and a remainder
		{dims(2, 1, 8, 5), dims(3, 5, 3)}, // batched, four-row blocks only
		{dims(4, 6), dims(2, 3, 6, 1)},    // broadcast A, one column
		{dims(2, 3, 0), dims(0, 2)},
	} {
		a, b := randT(r, sh[0]...), randT(r, sh[1]...)
		d, want := refMatMul(a, b)
		near(t, "matmul", mustCall(t, "MatMul", 13, nil, a, b), d, want, 1e-12)
	}
	ia := ir.FromInt64s(ir.Int32, dims(2, 2), []int64{1, -2, 3, 4})
	ib := ir.FromInt64s(ir.Int32, dims(2, 1), []int64{5, 6})
	yi := mustCall(t, "MatMul", 13, nil, ia, ib)
	if yi.DType != ir.Int32 || yi.Int64At(0) != -7 || yi.Int64At(1) != 39 {
		t.Fatalf("int32 matmul gave %v %v", yi.DType, yi.Int64s())
	}
	wantErr(t, "MatMul", 13, nil, "inner dimensions", f32(dims(2, 3), 1, 2, 3, 4, 5, 6), f32(dims(2, 2), 1, 2, 3, 4))
	wantErr(t, "MatMul", 13, nil, "batch", randT(r, 2, 2, 2), randT(r, 3, 2, 2))
	wantErr(t, "MatMul", 13, nil, "rank", f32(nil, 1), f32(dims(1), 1))
	wantErr(t, "MatMul", 13, nil, "float64", f32(dims(1), 1), f64(dims(1), 1))

	impl, _ := ops.Lookup("", "MatMul", 13)
	n := &ir.Node{Name: "n", OpType: "MatMul", Inputs: []string{"a", "b"}, Outputs: []string{"y"}}
	c := ops.NewInferCtx(n, 13, []*ir.Type{
		ir.TensorType(ir.Float32, ir.Shape{ir.Sym("batch"), ir.Sym("seq"), ir.D(256)}),
		ir.TensorType(ir.Float32, ir.ShapeOf(dims(256, 64)))}, nil, nil)
	if err := impl.Infer(c); err != nil {
		t.Fatal(err)
	}
	if want := (ir.Shape{ir.Sym("batch"), ir.Sym("seq"), ir.D(64)}); !c.Out[0].Shape.Equal(want) {
		t.Fatalf("inferred %v, want %v", c.Out[0], want)
	}
}
