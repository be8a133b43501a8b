package nn

import (
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

func TestResize(t *testing.T) {
	x := f32(dims(1, 1, 2, 2), 1, 2, 3, 4)
	rep := []float64{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4}
	scales := f32(dims(4), 1, 1, 2, 2)
	near(t, "upsample 9", mustCall(t, "Upsample", 9, nil, x, scales), dims(1, 1, 4, 4), rep, 0)
	near(t, "upsample 7", mustCall(t, "Upsample", 7, attrs(&ir.Attribute{Name: "scales", Type: ir.AttrFloats,
		Floats: []float32{1, 1, 2, 2}}), x), dims(1, 1, 4, 4), rep, 0)
	near(t, "resize 10", mustCall(t, "Resize", 10, nil, x, scales), dims(1, 1, 4, 4), rep, 0)
	near(t, "resize 13 sizes", mustCall(t, "Resize", 13, nil, x, nil, nil, i64(dims(4), 1, 1, 4, 4)), dims(1, 1, 4, 4), rep, 0)
	near(t, "resize 11 empty roi and scales", mustCall(t, "Resize", 11, nil, x, f32(dims(0)), f32(dims(0)),
		i64(dims(4), 1, 1, 4, 4)), dims(1, 1, 4, 4), rep, 0)

	// Resize-10 downsampling takes the ceiling (x_original 0, 1.67, 3.33)
	near(t, "resize 10 down", mustCall(t, "Resize", 10, nil, f64(dims(5), 0, 1, 2, 3, 4), f32(dims(1), 0.6)),
		dims(3), []float64{0, 2, 4}, 0)
	wantErr(t, "Resize", 13, attrs(aStr("nearest_mode", "legacy")), "nearest_mode", x, nil, scales)

	v := f64(dims(2), 0, 10)
	lin := aStr("mode", "linear")
	near(t, "linear align_corners", mustCall(t, "Resize", 13, attrs(lin, aStr("coordinate_transformation_mode", "align_corners")),
		v, nil, nil, i64(dims(1), 3)), dims(3), []float64{0, 5, 10}, 1e-15)
	near(t, "linear half_pixel", mustCall(t, "Resize", 13, attrs(lin), v, nil, nil, i64(dims(1), 4)),
		dims(4), []float64{0, 2.5, 7.5, 10}, 1e-15)
	near(t, "linear asymmetric", mustCall(t, "Resize", 13, attrs(lin, aStr("coordinate_transformation_mode", "asymmetric")),
		v, nil, f32(dims(1), 2)), dims(4), []float64{0, 5, 10, 10}, 1e-15)
	near(t, "tf_crop_and_resize", mustCall(t, "Resize", 13, attrs(lin, aStr("coordinate_transformation_mode", "tf_crop_and_resize"),
		aFloat("extrapolation_value", -1)), v, f32(dims(2), 0.5, 1.5), nil, i64(dims(1), 3)), dims(3), []float64{5, 10, -1}, 1e-15)
	for mode, want := range map[string][]float64{
		"round_prefer_floor": {0, 0, 10, 10, 10}, "round_prefer_ceil": {0, 0, 10, 10, 10},
		"floor": {0, 0, 0, 10, 10}, "ceil": {0, 10, 10, 10, 10},
	} {
		// asymmetric, scale 2.5: x_original = 0, 0.4, 0.8, 1.2, 1.6
		y := mustCall(t, "Resize", 13, attrs(aStr("nearest_mode", mode), aStr("coordinate_transformation_mode", "asymmetric")),
			v, nil, nil, i64(dims(1), 5))
		near(t, "nearest "+mode, y, dims(5), want, 0)
	}
	// ties (x_original 0.5 at scale 2) tell the two rounding modes apart
	for mode, want := range map[string][]float64{"round_prefer_floor": {0, 0, 10, 10}, "round_prefer_ceil": {0, 10, 10, 10}} {
		y := mustCall(t, "Resize", 13, attrs(aStr("nearest_mode", mode), aStr("coordinate_transformation_mode", "asymmetric")),
			v, nil, nil, i64(dims(1), 4))
		near(t, "tie "+mode, y, dims(4), want, 0)
	}

	// opset 18: axes and keep_aspect_ratio_policy
	near(t, "axes", mustCall(t, "Resize", 18, attrs(aInts("axes", 3)), x, nil, f32(dims(1), 2)), dims(1, 1, 2, 4),
		[]float64{1, 1, 2, 2, 3, 3, 4, 4}, 0)
	y := mustCall(t, "Resize", 18, attrs(aInts("axes", 2, 3), aStr("keep_aspect_ratio_policy", "not_smaller")),
		x, nil, nil, i64(dims(2), 4, 3))
	near(t, "not_smaller", y, dims(1, 1, 4, 4), rep, 0)
	y = mustCall(t, "Resize", 18, attrs(aInts("axes", 2, 3), aStr("keep_aspect_ratio_policy", "not_larger")),
		x, nil, nil, i64(dims(2), 4, 3))
	near(t, "not_larger", y, dims(1, 1, 3, 3), []float64{1, 1, 2, 1, 1, 2, 3, 3, 4}, 0)

	// cubic with exclude_outside renormalizes the weights that stay inside:
	// a constant signal stays constant
	c := f64(dims(4), 7, 7, 7, 7)
	y = mustCall(t, "Resize", 13, attrs(aStr("mode", "cubic"), aInt("exclude_outside", 1), aFloat("cubic_coeff_a", -0.5)),
		c, nil, f32(dims(1), 1.5))
	near(t, "cubic constant", y, dims(6), []float64{7, 7, 7, 7, 7, 7}, 1e-12)
	// linear antialias when downsampling by 2 widens the triangle to four
	// taps weighted 1/8, 3/8, 3/8, 1/8 (edge-clamped)
	y = mustCall(t, "Resize", 18, attrs(lin, aInt("antialias", 1)), f64(dims(4), 0, 4, 8, 12), nil, f32(dims(1), 0.5))
	near(t, "antialias", y, dims(2), []float64{2.5, 9.5}, 1e-12)

	// bfloat16 and uint8 keep their type
	yb := mustCall(t, "Resize", 13, attrs(lin), ir.FromFloat64s(ir.BFloat16, dims(2), []float64{0, 10}), nil, nil, i64(dims(1), 4))
	near(t, "bfloat16", yb, dims(4), []float64{0, 2.5, 7.5, 10}, 1e-2)
	yu := mustCall(t, "Resize", 13, nil, ir.FromInt64s(ir.Uint8, dims(2), []int64{3, 200}), nil, nil, i64(dims(1), 4))
	if yu.DType != ir.Uint8 || !equalDims(yu.Int64s(), dims(3, 3, 200, 200)) {
		t.Fatalf("uint8 resize gave %s %v", yu.DType, yu.Int64s())
	}

	wantErr(t, "Resize", 13, nil, "only one of", x, nil, scales, i64(dims(4), 1, 1, 4, 4))
	wantErr(t, "Resize", 13, nil, "must be given", x, nil, nil, nil)
	wantErr(t, "Resize", 13, attrs(aStr("mode", "area")), "mode", x, nil, scales)
	wantErr(t, "Resize", 13, nil, "scales has 2 values", x, nil, f32(dims(2), 1, 2))
	wantErr(t, "Resize", 13, nil, "positive", x, nil, f32(dims(4), 1, 1, 0, 2))
	wantErr(t, "Resize", 13, attrs(aStr("coordinate_transformation_mode", "tf_crop_and_resize")), "roi", x, f32(dims(2), 0, 1), scales)
}

func TestResizeInferKeepsSymbols(t *testing.T) {
	impl, _ := ops.Lookup("", "Resize", 13)
	n := &ir.Node{Name: "n", OpType: "Resize", Inputs: []string{"x", "", "s"}, Outputs: []string{"y"}}
	x := ir.TensorType(ir.Float32, ir.Shape{ir.Sym("N"), ir.D(3), ir.D(4), ir.Sym("W")})
	s := f32(dims(4), 1, 1, 2, 2)
	c := ops.NewInferCtx(n, 13, []*ir.Type{x, nil, s.Type()}, []*ir.Tensor{nil, nil, s}, nil)
	if err := impl.Infer(c); err != nil {
		t.Fatal(err)
	}
	if want := (ir.Shape{ir.Sym("N"), ir.D(3), ir.D(8), ir.Unknown()}); !c.Out[0].Shape.Equal(want) {
		t.Fatalf("inferred %v, want %v", c.Out[0], want)
	}
	// sizes known only symbolically (from a Shape op) pass through
	n = &ir.Node{Name: "n", OpType: "Resize", Inputs: []string{"x", "", "", "sz"}, Outputs: []string{"y"}}
	sym := ir.Shape{ir.Sym("N"), ir.D(3), ir.D(16), ir.D(16)}
	c = ops.NewInferCtx(n, 13, []*ir.Type{x, nil, nil, ir.TensorType(ir.Int64, ir.ShapeOf(dims(4)))}, nil,
		[]ir.Shape{nil, nil, nil, sym})
	if err := impl.Infer(c); err != nil {
		t.Fatal(err)
	}
	if !c.Out[0].Shape.Equal(sym) {
		t.Fatalf("inferred %v, want %v", c.Out[0], sym)
	}
}

// TestEinsum checks equations against loops written out for each.
func TestEinsum(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	a, b := randT(r, 3, 4), randT(r, 4, 5)
	at := func(x *ir.Tensor, idx ...int64) float64 {
		st := ops.Strides(x.Dims)
		o := int64(0)
		for i, v := range idx {
			o += v * st[i]
		}
		return x.Float64At(o)
	}
	eq := func(e string) []*ir.Attribute { return attrs(aStr("equation", e)) }

	var mm []float64
	for i := int64(0); i < 3; i++ {
		for k := int64(0); k < 5; k++ {
			s := 0.0
			for j := int64(0); j < 4; j++ {
				s += at(a, i, j) * at(b, j, k)
			}
			mm = append(mm, s)
		}
	}
	near(t, "ij,jk->ik", mustCall(t, "Einsum", 12, eq("ij,jk->ik"), a, b), dims(3, 5), mm, 1e-12)
	near(t, "implicit ij,jk", mustCall(t, "Einsum", 12, eq("ij , jk"), a, b), dims(3, 5), mm, 1e-12)

	var tr []float64
	for j := int64(0); j < 4; j++ {
		for i := int64(0); i < 3; i++ {
			tr = append(tr, at(a, i, j))
		}
	}
	near(t, "ij->ji", mustCall(t, "Einsum", 12, eq("ij->ji"), a), dims(4, 3), tr, 0)
	near(t, "implicit ba", mustCall(t, "Einsum", 12, eq("ba"), a), dims(4, 3), tr, 0)

	total := 0.0
	for _, v := range a.Float64s() {
		total += v
	}
	near(t, "ij->", mustCall(t, "Einsum", 12, eq("ij->"), a), dims(), []float64{total}, 1e-12)

	sq := randT(r, 2, 3, 3)
	var diag []float64
	trace := []float64{0, 0}
	for bi := int64(0); bi < 2; bi++ {
		for i := int64(0); i < 3; i++ {
			diag = append(diag, at(sq, bi, i, i))
			trace[bi] += at(sq, bi, i, i)
		}
	}
	near(t, "bii->bi", mustCall(t, "Einsum", 12, eq("bii->bi"), sq), dims(2, 3), diag, 0)
	near(t, "implicit trace bii", mustCall(t, "Einsum", 12, eq("bii"), sq), dims(2), trace, 1e-12)

	u, w := randT(r, 3), randT(r, 2)
	var outer []float64
	for i := int64(0); i < 3; i++ {
		for j := int64(0); j < 2; j++ {
			outer = append(outer, at(u, i)*at(w, j))
		}
	}
	near(t, "i,j->ij", mustCall(t, "Einsum", 12, eq("i,j->ij"), u, w), dims(3, 2), outer, 1e-15)

	// broadcasting ellipsis: batch [2,1] against [3]
	p, q := randT(r, 2, 1, 2, 4), randT(r, 3, 4, 2)
	var bmm []float64
	for x := int64(0); x < 2; x++ {
		for y := int64(0); y < 3; y++ {
			for i := int64(0); i < 2; i++ {
				for k := int64(0); k < 2; k++ {
					s := 0.0
					for j := int64(0); j < 4; j++ {
						s += at(p, x, 0, i, j) * at(q, y, j, k)
					}
					bmm = append(bmm, s)
				}
			}
		}
	}
	near(t, "...ij,...jk->...ik", mustCall(t, "Einsum", 12, eq("...ij,...jk->...ik"), p, q), dims(2, 3, 2, 2), bmm, 1e-12)
	near(t, "implicit ...ij,...jk", mustCall(t, "Einsum", 12, eq("...ij,...jk"), p, q), dims(2, 3, 2, 2), bmm, 1e-12)
	// three operands, upper-case labels
	c3 := randT(r, 5)
	var three []float64
	for i := int64(0); i < 3; i++ {
		s := 0.0
		for j := int64(0); j < 4; j++ {
			for k := int64(0); k < 5; k++ {
				s += at(a, i, j) * at(b, j, k) * at(c3, k)
			}
		}
		three = append(three, s)
	}
	near(t, "IJ,JK,K->I", mustCall(t, "Einsum", 12, eq("IJ,JK,K->I"), a, b, c3), dims(3), three, 1e-12)

	wantErr(t, "Einsum", 12, eq("ij,jk->ik"), "size", a, randT(r, 3, 5))
	wantErr(t, "Einsum", 12, eq("ij->k"), "appears in no input", a)
	wantErr(t, "Einsum", 12, eq("ijk->i"), "rank", a)
	wantErr(t, "Einsum", 12, eq("ij,jk->ik"), "input terms", a)
	wantErr(t, "Einsum", 12, eq("i1->i"), "letter", randT(r, 2, 2))
}
