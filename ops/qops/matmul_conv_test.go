package qops

import (
	"math"
	"math/rand"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

func randInts(r *rand.Rand, dt ir.DType, dims []int64) *ir.Tensor {
	n, _ := ir.NumElements(dims)
	lo, hi := dt.IntRange()
	v := make([]int64, n)
	for i := range v {
		v[i] = lo + r.Int63n(hi-lo+1)
	}
	return ir.FromInt64s(dt, dims, v)
}

func TestMatMulIntegerHand(t *testing.T) {
	a := ints(ir.Uint8, []int64{2, 3}, 1, 2, 3, 4, 5, 6)
	b := ints(ir.Uint8, []int64{3, 2}, 7, 8, 9, 10, 11, 12)
	y := mustRun(t, 10, "MatMulInteger", nil, a, b, ints(ir.Uint8, nil, 1), ints(ir.Uint8, []int64{1}, 2))
	checkInts(t, "per tensor", y, ir.Int32, []int64{2, 2}, 25, 28, 88, 100)
	y = mustRun(t, 10, "MatMulInteger", nil, a, b, ints(ir.Uint8, []int64{2}, 1, 4), ints(ir.Uint8, []int64{2}, 2, 3))
	checkInts(t, "per row/column", y, ir.Int32, []int64{2, 2}, 25, 25, 25, 25)
	y = mustRun(t, 10, "MatMulInteger", nil, ints(ir.Uint8, []int64{3}, 1, 2, 3), b)
	checkInts(t, "vector", y, ir.Int32, []int64{2}, 58, 64)
	y = mustRun(t, 10, "MatMulInteger", nil, ints(ir.Int8, []int64{1, 2}, -1, 2), ints(ir.Uint8, []int64{2, 1}, 200, 3))
	checkInts(t, "int8 x uint8", y, ir.Int32, []int64{1, 1}, -194)

	wantErr(t, "inner", 10, "MatMulInteger", nil, a, ints(ir.Uint8, []int64{2, 2}, 1, 2, 3, 4))
	wantErr(t, "a_zero_point", 10, "MatMulInteger", nil, a, b, ints(ir.Uint8, []int64{3}, 1, 2, 3))
	wantErr(t, "b_zero_point", 10, "MatMulInteger", nil, a, b, nil, ints(ir.Uint8, []int64{3}, 1, 2, 3))
	wantErr(t, "operand's type", 10, "MatMulInteger", nil, a, b, ints(ir.Int8, nil, 1))
	wantErr(t, "want int8 or uint8", 10, "MatMulInteger", nil, f32([]int64{1, 1}, 1), b)
	wantErr(t, "batch", 10, "MatMulInteger", nil, ints(ir.Uint8, []int64{2, 1, 1}, 1, 2), ints(ir.Uint8, []int64{3, 1, 1}, 1, 2, 3))
}

// TestMatMulIntegerBatched compares a broadcast batched product with
// per-row (N-D) and per-column zero points against explicit loops.
func TestMatMulIntegerBatched(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	a := randInts(r, ir.Int8, []int64{2, 1, 3, 4})
	b := randInts(r, ir.Uint8, []int64{5, 4, 2})
	azp := randInts(r, ir.Int8, []int64{2, 1, 3, 1})
	bzp := randInts(r, ir.Uint8, []int64{2})
	y := mustRun(t, 10, "MatMulInteger", nil, a, b, azp, bzp)
	if !sameDims(y.Dims, []int64{2, 5, 3, 2}) {
		t.Fatalf("dims %v", y.Dims)
	}
	for i0 := int64(0); i0 < 2; i0++ {
		for i1 := int64(0); i1 < 5; i1++ {
			for m := int64(0); m < 3; m++ {
				for n := int64(0); n < 2; n++ {
					var want int64
					for k := int64(0); k < 4; k++ {
						av := a.Int64At(i0*12+m*4+k) - azp.Int64At(i0*3+m)
						bv := b.Int64At(i1*8+k*2+n) - bzp.Int64At(n)
						want += av * bv
					}
					if got := y.Int64At(((i0*5+i1)*3+m)*2 + n); got != want {
						t.Fatalf("[%d,%d,%d,%d] = %d, want %d", i0, i1, m, n, got, want)
					}
				}
			}
		}
	}
}

func TestQLinearMatMul(t *testing.T) {
	one := f32(nil, 1)
	u0 := ints(ir.Uint8, nil, 0)
	y := mustRun(t, 10, "QLinearMatMul", nil, ints(ir.Uint8, []int64{1, 2}, 2, 4), f32(nil, 0.5), u0,
		ints(ir.Uint8, []int64{2, 1}, 1, 3), f32(nil, 2), ints(ir.Uint8, nil, 1), one, ints(ir.Uint8, nil, 10))
	checkInts(t, "hand", y, ir.Uint8, []int64{1, 1}, 18)
	// ONNX's reference rounds after adding the zero point: 5*0.5 + 1 = 3.5 -> 4
	y = mustRun(t, 10, "QLinearMatMul", nil, ints(ir.Uint8, []int64{1, 1}, 5), f32(nil, 0.5), u0,
		ints(ir.Uint8, []int64{1, 1}, 1), one, u0, one, ints(ir.Uint8, nil, 1))
	checkInts(t, "tie", y, ir.Uint8, []int64{1, 1}, 4)
	y = mustRun(t, 10, "QLinearMatMul", nil, ints(ir.Int8, []int64{1, 2}, 127, 127), one, ints(ir.Int8, nil, 0),
		ints(ir.Int8, []int64{2, 1}, 127, 127), one, ints(ir.Int8, nil, 0), one, ints(ir.Int8, nil, 0))
	checkInts(t, "saturate", y, ir.Int8, []int64{1, 1}, 127)
	// per-column b scale, per-row a scale
	y = mustRun(t, 21, "QLinearMatMul", nil, ints(ir.Uint8, []int64{1, 1}, 3), one, u0,
		ints(ir.Uint8, []int64{1, 2}, 1, 1), f32([]int64{2}, 1, 2), u0, one, u0)
	checkInts(t, "per column", y, ir.Uint8, []int64{1, 2}, 3, 6)
	y = mustRun(t, 21, "QLinearMatMul", nil, ints(ir.Uint8, []int64{2, 1}, 3, 3), f32([]int64{2}, 1, 2), u0,
		ints(ir.Uint8, []int64{1, 1}, 1), one, u0, one, u0)
	checkInts(t, "per row", y, ir.Uint8, []int64{2, 1}, 3, 6)

	a := ints(ir.Uint8, []int64{1, 1}, 1)
	wantErr(t, "want float32", 21, "QLinearMatMul", nil, a, ints(ir.Int32, nil, 1), u0, a, one, u0, one, u0)
	wantErr(t, "a_scale", 21, "QLinearMatMul", nil, a, f32([]int64{3}, 1, 1, 1), u0, a, one, u0, one, u0)
	wantErr(t, "y_scale", 21, "QLinearMatMul", nil, a, one, u0, a, one, u0, nil, u0)
}

// refConv2D is an independent 2-D grouped convolution: it builds the
// zero-padded input explicitly and correlates, with dilation and stride.
func refConv2D(x, w []int64, n, c, h, wd, m, kh, kw, group, sh, sw, dh, dw, pt, pl, pb, pr int64) ([]int64, int64, int64) {
	ph, pw := h+pt+pb, wd+pl+pr
	padded := make([]int64, n*c*ph*pw)
	for i := int64(0); i < n*c; i++ {
		for y := int64(0); y < h; y++ {
			for z := int64(0); z < wd; z++ {
				padded[(i*ph+y+pt)*pw+z+pl] = x[(i*h+y)*wd+z]
			}
		}
	}
	oh := (ph-(kh-1)*dh-1)/sh + 1
	ow := (pw-(kw-1)*dw-1)/sw + 1
	cg, mg := c/group, m/group
	out := make([]int64, n*m*oh*ow)
	for b := int64(0); b < n; b++ {
		for oc := int64(0); oc < m; oc++ {
			g := oc / mg
			for oy := int64(0); oy < oh; oy++ {
				for ox := int64(0); ox < ow; ox++ {
					var s int64
					for ic := int64(0); ic < cg; ic++ {
						for ky := int64(0); ky < kh; ky++ {
							for kx := int64(0); kx < kw; kx++ {
								iy, ix := oy*sh+ky*dh, ox*sw+kx*dw
								s += padded[((b*c+g*cg+ic)*ph+iy)*pw+ix] * w[((oc*cg+ic)*kh+ky)*kw+kx]
							}
						}
					}
					out[((b*m+oc)*oh+oy)*ow+ox] = s
				}
			}
		}
	}
	return out, oh, ow
}

func TestConvIntegerRandom(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	type cfg struct{ n, c, h, w, m, kh, kw, group, sh, sw, dh, dw, pt, pl, pb, pr int64 }
	for _, cf := range []cfg{
		{1, 1, 5, 5, 1, 3, 3, 1, 1, 1, 1, 1, 0, 0, 0, 0},
		{2, 4, 6, 7, 6, 3, 2, 2, 2, 1, 1, 2, 1, 0, 2, 1},
		{1, 3, 7, 7, 3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1},
		{1, 2, 4, 5, 4, 1, 1, 1, 3, 2, 1, 1, 0, 2, 0, 2},
	} {
		x := randInts(r, ir.Uint8, []int64{cf.n, cf.c, cf.h, cf.w})
		w := randInts(r, ir.Int8, []int64{cf.m, cf.c / cf.group, cf.kh, cf.kw})
		xzp := randInts(r, ir.Uint8, nil)
		wzp := randInts(r, ir.Int8, []int64{cf.m})
		attrs := []*ir.Attribute{aInt("group", cf.group), aInts("strides", cf.sh, cf.sw), aInts("dilations", cf.dh, cf.dw),
			aInts("pads", cf.pt, cf.pl, cf.pb, cf.pr), aInts("kernel_shape", cf.kh, cf.kw)}
		y := mustRun(t, 10, "ConvInteger", attrs, x, w, xzp, wzp)
		xs := x.Int64s()
		for i := range xs {
			xs[i] -= xzp.Int64At(0)
		}
		ws := w.Int64s()
		per := int64(len(ws)) / cf.m
		for i := range ws {
			ws[i] -= wzp.Int64At(int64(i) / per)
		}
		want, oh, ow := refConv2D(xs, ws, cf.n, cf.c, cf.h, cf.w, cf.m, cf.kh, cf.kw, cf.group, cf.sh, cf.sw, cf.dh, cf.dw, cf.pt, cf.pl, cf.pb, cf.pr)
		checkInts(t, "conv", y, ir.Int32, []int64{cf.n, cf.m, oh, ow}, want...)
	}
}

func TestConvIntegerShapes(t *testing.T) {
	x := ints(ir.Uint8, []int64{1, 1, 4}, 1, 2, 3, 4)
	w := ints(ir.Uint8, []int64{1, 1, 2}, 1, 1)
	y := mustRun(t, 10, "ConvInteger", []*ir.Attribute{aStr("auto_pad", "SAME_UPPER")}, x, w)
	checkInts(t, "1-D SAME_UPPER", y, ir.Int32, []int64{1, 1, 4}, 3, 5, 7, 4)
	y = mustRun(t, 10, "ConvInteger", []*ir.Attribute{aStr("auto_pad", "SAME_LOWER")}, x, w)
	checkInts(t, "1-D SAME_LOWER", y, ir.Int32, []int64{1, 1, 4}, 1, 3, 5, 7)
	y = mustRun(t, 10, "ConvInteger", []*ir.Attribute{aStr("auto_pad", "VALID"), aInts("strides", 2)}, x, w)
	checkInts(t, "1-D VALID stride 2", y, ir.Int32, []int64{1, 1, 2}, 3, 7)
	ones := ints(ir.Uint8, []int64{1, 1, 2, 2, 2}, 1, 1, 1, 1, 1, 1, 1, 1)
	y = mustRun(t, 10, "ConvInteger", nil, ones, ones)
	checkInts(t, "3-D", y, ir.Int32, []int64{1, 1, 1, 1, 1}, 8)

	wantErr(t, "auto_pad", 10, "ConvInteger", []*ir.Attribute{aStr("auto_pad", "MIDDLE")}, x, w)
	wantErr(t, "smaller than", 10, "ConvInteger", nil, x, ints(ir.Uint8, []int64{1, 1, 5}, 1, 1, 1, 1, 1))
	wantErr(t, "channels", 10, "ConvInteger", nil, x, ints(ir.Uint8, []int64{1, 2, 2}, 1, 1, 1, 1))
	wantErr(t, "kernel_shape", 10, "ConvInteger", []*ir.Attribute{aInts("kernel_shape", 3)}, x, w)
	wantErr(t, "strides", 10, "ConvInteger", []*ir.Attribute{aInts("strides", 0)}, x, w)
	wantErr(t, "pads", 10, "ConvInteger", []*ir.Attribute{aInts("pads", 1)}, x, w)
	wantErr(t, "x_zero_point", 10, "ConvInteger", nil, x, w, ints(ir.Uint8, []int64{2}, 1, 1))
	wantErr(t, "w_zero_point", 10, "ConvInteger", nil, x, w, nil, ints(ir.Uint8, []int64{2}, 1, 1))
	wantErr(t, "rank", 10, "ConvInteger", nil, ints(ir.Uint8, []int64{4}, 1, 2, 3, 4), w)
}

func TestQLinearConv(t *testing.T) {
	x := ints(ir.Uint8, []int64{1, 1, 2, 2}, 10, 20, 30, 40)
	w := ints(ir.Int8, []int64{2, 1, 1, 1}, 2, -3)
	in := []*ir.Tensor{x, f32(nil, 0.5), ints(ir.Uint8, nil, 10), w, f32([]int64{2}, 1, 0.25), ints(ir.Int8, nil, 0),
		f32(nil, 2), ints(ir.Uint8, nil, 100), ints(ir.Int32, []int64{2}, 1, 4)}
	y := mustRun(t, 10, "QLinearConv", nil, in...)
	checkInts(t, "hand", y, ir.Uint8, []int64{1, 2, 2, 2}, 100, 105, 110, 115, 100, 98, 96, 95)

	bad := append([]*ir.Tensor{}, in...)
	bad[8] = ints(ir.Int32, []int64{3}, 1, 2, 3)
	wantErr(t, "bias", 10, "QLinearConv", nil, bad...)
	bad = append([]*ir.Tensor{}, in...)
	bad[1] = f32([]int64{2}, 1, 1)
	wantErr(t, "x_scale", 10, "QLinearConv", nil, bad...)
	bad = append([]*ir.Tensor{}, in...)
	bad[4] = f32([]int64{3}, 1, 1, 1)
	wantErr(t, "w_scale", 10, "QLinearConv", nil, bad...)
	bad = append([]*ir.Tensor{}, in...)
	bad[7] = ints(ir.Int32, nil, 0)
	wantErr(t, "y_zero_point", 10, "QLinearConv", nil, bad...)
}

// TestQLinearConvRandom checks the requantization of a random grouped conv
// against the integer reference conv and the spec's formula.
func TestQLinearConvRandom(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	x := randInts(r, ir.Int8, []int64{1, 4, 5, 5})
	w := randInts(r, ir.Int8, []int64{4, 2, 3, 3})
	xs, ws, ys := float32(0.05), []float32{0.01, 0.02, 0.003, 0.04}, float32(0.7)
	xzp, yzp := int64(3), int64(-5)
	bias := []int64{100, -200, 0, 7}
	attrs := []*ir.Attribute{aInt("group", 2), aInts("pads", 1, 1, 1, 1)}
	y := mustRun(t, 10, "QLinearConv", attrs, x, f32(nil, float64(xs)), ints(ir.Int8, nil, xzp), w,
		ir.FromFloat64s(ir.Float32, []int64{4}, []float64{float64(ws[0]), float64(ws[1]), float64(ws[2]), float64(ws[3])}),
		ints(ir.Int8, nil, 0), f32(nil, float64(ys)), ints(ir.Int8, nil, yzp), ints(ir.Int32, []int64{4}, bias...))
	xv := x.Int64s()
	for i := range xv {
		xv[i] -= xzp
	}
	acc, oh, ow := refConv2D(xv, w.Int64s(), 1, 4, 5, 5, 4, 3, 3, 2, 1, 1, 1, 1, 1, 1, 1, 1)
	want := make([]int64, len(acc))
	for i, a := range acc {
		m := int64(i) / (oh * ow)
		mult := xs * ws[m] / ys // float32 arithmetic, as the scales' type
		v := math.RoundToEven(float64(a+bias[m])*float64(mult) + float64(yzp))
		want[i] = int64(math.Max(-128, math.Min(127, v)))
	}
	checkInts(t, "qlinearconv", y, ir.Int8, []int64{1, 4, oh, ow}, want...)
}

func TestMatMulConvInfer(t *testing.T) {
	n := &ir.Node{Name: "node1", OpType: "MatMulInteger", Inputs: []string{"a", "b"}, Outputs: []string{"y"}}
	in := []*ir.Type{ir.TensorType(ir.Uint8, ir.Shape{ir.Sym("batch"), ir.D(1), ir.D(3), ir.D(4)}),
		ir.TensorType(ir.Int8, ir.Shape{ir.D(5), ir.D(4), ir.D(2)})}
	c := ops.NewInferCtx(n, 10, in, make([]*ir.Tensor, 2), make([]ir.Shape, 2))
	if err := matMulIntegerInfer(c); err != nil {
		t.Fatal(err)
	}
	if got := c.Out[0].String(); got != "int32[batch,5,3,2]" {
		t.Errorf("MatMulInteger type %s", got)
	}
	in[1] = ir.TensorType(ir.Int8, ir.Shape{ir.D(3), ir.D(2)})
	c = ops.NewInferCtx(n, 10, in, make([]*ir.Tensor, 2), make([]ir.Shape, 2))
	if err := matMulIntegerInfer(c); err == nil {
		t.Error("MatMulInteger inference accepts inner dims 4 and 3")
	}

	n = &ir.Node{Name: "node1", OpType: "ConvInteger", Inputs: []string{"x", "w"}, Outputs: []string{"y"},
		Attrs: []*ir.Attribute{aInts("strides", 2, 2), aInts("pads", 1, 1, 1, 1)}}
	in = []*ir.Type{ir.TensorType(ir.Uint8, ir.Shape{ir.Sym("N"), ir.D(3), ir.D(224), ir.Sym("W")}),
		ir.TensorType(ir.Uint8, ir.Shape{ir.D(8), ir.D(3), ir.D(3), ir.D(3)})}
	c = ops.NewInferCtx(n, 10, in, make([]*ir.Tensor, 2), make([]ir.Shape, 2))
	if err := convIntegerInfer(c); err != nil {
		t.Fatal(err)
	}
	if got := c.Out[0].String(); got != "int32[N,8,112,?]" {
		t.Errorf("ConvInteger type %s, want int32[N,8,112,?]", got)
	}
}
