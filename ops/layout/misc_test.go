package layout

import (
	"math"
	"testing"

	"github.com/kilnml/kiln/ir"
)

func TestShapeSizeIdentity(t *testing.T) {
	x := iota(3, 4, 5)
	expectInts(t, must(t, "Shape", 13, 1, []*ir.Tensor{x})[0], dims(3), 3, 4, 5)
	for _, c := range []struct {
		attrs []*ir.Attribute
		want  []int64
	}{
		{[]*ir.Attribute{aInt("start", 1)}, []int64{4, 5}},
		{[]*ir.Attribute{aInt("end", -1)}, []int64{3, 4}},
		{[]*ir.Attribute{aInt("start", -10)}, []int64{3, 4, 5}},
		{[]*ir.Attribute{aInt("end", 10)}, []int64{3, 4, 5}},
		{[]*ir.Attribute{aInt("start", 2), aInt("end", 1)}, []int64{}},
	} {
		expectInts(t, must(t, "Shape", 15, 1, []*ir.Tensor{x}, c.attrs...)[0], dims(int64(len(c.want))), c.want...)
	}
	expectInts(t, must(t, "Size", 13, 1, []*ir.Tensor{x})[0], nil, 60)
	if out := must(t, "Identity", 13, 1, []*ir.Tensor{x})[0]; out != x {
		t.Error("Identity should pass its input through")
	}

	outs := must(t, "Dropout", 13, 2, []*ir.Tensor{x})
	expectF32(t, outs[0], x.Dims, x.F32()...)
	if outs[1].DType != ir.Bool || outs[1].Int64At(59) != 1 {
		t.Error("Dropout mask should be all true")
	}
	outs = must(t, "Dropout", 13, 2, []*ir.Tensor{x, ir.ScalarFloat32(0.5), ir.FromInt64s(ir.Bool, nil, []int64{1})}, aInt("seed", 3))
	kept := 0
	for i, v := range outs[0].F32() {
		m := outs[1].Data[i] != 0
		switch {
		case m && v != 2*x.F32()[i], !m && v != 0:
			t.Fatalf("training dropout element %d: %v (mask %v)", i, v, m)
		}
		if m {
			kept++
		}
	}
	if kept < 15 || kept > 45 {
		t.Errorf("training dropout kept %d of 60 at ratio 0.5", kept)
	}
	outs = must(t, "Dropout", 7, 2, []*ir.Tensor{x}, aFloat("ratio", 0.3))
	if outs[1].DType != ir.Float32 || outs[1].F32()[0] != 1 {
		t.Error("opset 7 Dropout mask has the input's type, all ones")
	}
}

func TestConstants(t *testing.T) {
	w := f32(dims(2), 1, 2)
	expectF32(t, must(t, "Constant", 13, 1, nil, aTensor("value", w))[0], dims(2), 1, 2)
	expectF32(t, must(t, "Constant", 13, 1, nil, aFloat("value_float", 3))[0], nil, 3)
	expectF32(t, must(t, "Constant", 13, 1, nil, &ir.Attribute{Name: "value_floats", Type: ir.AttrFloats, Floats: []float32{4, 5}})[0], dims(2), 4, 5)
	expectInts(t, must(t, "Constant", 13, 1, nil, aInt("value_int", -7))[0], nil, -7)
	expectInts(t, must(t, "Constant", 13, 1, nil, aInts("value_ints", 1, 2, 3))[0], dims(3), 1, 2, 3)
	s := must(t, "Constant", 13, 1, nil, &ir.Attribute{Name: "value_strings", Type: ir.AttrStrings, Strings: [][]byte{[]byte("a"), []byte("bc")}})[0]
	if s.DType != ir.String || string(s.Strings[1]) != "bc" {
		t.Errorf("value_strings: %v", s)
	}
	s = must(t, "Constant", 13, 1, nil, aStr("value_string", "hi"))[0]
	if s.Rank() != 0 || string(s.Strings[0]) != "hi" {
		t.Errorf("value_string: %v", s)
	}
	mustFail(t, "exactly one", "Constant", 13, 1, nil)
	mustFail(t, "exactly one", "Constant", 13, 1, nil, aInt("value_int", 1), aFloat("value_float", 1))
	mustFail(t, "want", "Constant", 13, 1, nil, aInt("value_float", 1))

	out := must(t, "ConstantOfShape", 13, 1, []*ir.Tensor{vec(2, 3)})[0]
	expectF32(t, out, dims(2, 3), 0, 0, 0, 0, 0, 0)
	out = must(t, "ConstantOfShape", 13, 1, []*ir.Tensor{vec(5)}, aTensor("value", ir.FromInt64s(ir.Int32, dims(1), []int64{-2})))[0]
	expectInts(t, out, dims(5), -2, -2, -2, -2, -2)
	out = must(t, "ConstantOfShape", 13, 1, []*ir.Tensor{vec(0)}, aTensor("value", ir.FromInt64s(ir.Int32, dims(1), []int64{1})))[0]
	expectInts(t, out, dims(0))
	out = must(t, "ConstantOfShape", 21, 1, []*ir.Tensor{vec(3)}, aTensor("value", ir.FromInt64s(ir.Int4, dims(1), []int64{-3})))[0]
	expectInts(t, out, dims(3), -3, -3, -3)
	mustFail(t, "more than the limit", "ConstantOfShape", 13, 1, []*ir.Tensor{vec(1 << 40)})
	mustFail(t, "more than the limit", "ConstantOfShape", 13, 1, []*ir.Tensor{vec(1<<20, 1<<20)})
	mustFail(t, "negative", "ConstantOfShape", 13, 1, []*ir.Tensor{vec(2, -1)})
	mustFail(t, "overflow", "ConstantOfShape", 13, 1, []*ir.Tensor{vec(1<<40, 1<<40)})

	out = must(t, "EyeLike", 13, 1, []*ir.Tensor{iota(3, 4)}, aInt("k", 1))[0]
	expectF32(t, out, dims(3, 4), 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1)
	o2 := must(t, "EyeLike", 13, 1, []*ir.Tensor{iota(2, 2)}, aInt("dtype", int64(ir.Int32)), aInt("k", -1))[0]
	expectInts(t, o2, dims(2, 2), 0, 0, 1, 0)
	mustFail(t, "2-D", "EyeLike", 13, 1, []*ir.Tensor{iota(2)})
}

func TestRange(t *testing.T) {
	expectInts(t, must(t, "Range", 11, 1, []*ir.Tensor{ir.ScalarInt64(10), ir.ScalarInt64(4), ir.ScalarInt64(-3)})[0], dims(2), 10, 7)
	expectInts(t, must(t, "Range", 11, 1, []*ir.Tensor{ir.ScalarInt64(1), ir.ScalarInt64(1), ir.ScalarInt64(1)})[0], dims(0))
	out := must(t, "Range", 11, 1, []*ir.Tensor{ir.ScalarFloat32(3), ir.ScalarFloat32(9), ir.ScalarFloat32(3)})[0]
	expectF32(t, out, dims(2), 3, 6)
	out = must(t, "Range", 11, 1, []*ir.Tensor{ir.ScalarFloat32(0), ir.ScalarFloat32(1), ir.ScalarFloat32(0.25)})[0]
	expectF32(t, out, dims(4), 0, 0.25, 0.5, 0.75)
	mustFail(t, "delta is 0", "Range", 11, 1, []*ir.Tensor{ir.ScalarInt64(0), ir.ScalarInt64(4), ir.ScalarInt64(0)})
	mustFail(t, "more than the limit", "Range", 11, 1, []*ir.Tensor{ir.ScalarInt64(0), ir.ScalarInt64(math.MaxInt64), ir.ScalarInt64(1)})
	mustFail(t, "more than the limit", "Range", 11, 1, []*ir.Tensor{ir.ScalarFloat32(0), ir.ScalarFloat32(1e30), ir.ScalarFloat32(1e-30)})
	mustFail(t, "invalid range", "Range", 11, 1, []*ir.Tensor{ir.ScalarFloat32(0), ir.ScalarFloat32(1), ir.ScalarFloat32(float32(math.NaN()))})
	mustFail(t, "but start is", "Range", 11, 1, []*ir.Tensor{ir.ScalarInt64(0), ir.ScalarFloat32(1), ir.ScalarInt64(1)})
}

func TestSelectOps(t *testing.T) {
	// OneHot: ONNX doc example with axis=1 and negative index.
	idx := i64(dims(2, 2), 1, 9, -8, 2)
	vals := f32(dims(2), 2, 3)
	out := must(t, "OneHot", 11, 1, []*ir.Tensor{idx, ir.ScalarFloat32(10), vals}, aInt("axis", 1))[0]
	want := make([]float32, 2*10*2)
	for i := range want {
		want[i] = 2
	}
	// out[i, depth, j]: (0,1,0)=3 (0,9,1)=3 (1,2,0)=3 (-8+10=2) (1,2,1)=3
	for _, p := range [][3]int{{0, 1, 0}, {0, 9, 1}, {1, 2, 0}, {1, 2, 1}} {
		want[p[0]*20+p[1]*2+p[2]] = 3
	}
	expectF32(t, out, dims(2, 10, 2), want...)
	out = must(t, "OneHot", 11, 1, []*ir.Tensor{vec(0, 5), ir.ScalarInt64(3), vals})[0]
	expectF32(t, out, dims(2, 3), 3, 2, 2, 2, 2, 2)
	out = must(t, "OneHot", 9, 1, []*ir.Tensor{vec(-1, 1), ir.ScalarInt64(2), vals})[0]
	expectF32(t, out, dims(2, 2), 2, 2, 2, 3) // opset 9: a negative index is out of range
	mustFail(t, "must be positive", "OneHot", 11, 1, []*ir.Tensor{vec(0), ir.ScalarInt64(0), vals})

	nz := must(t, "NonZero", 13, 1, []*ir.Tensor{f32(dims(2, 2), 1, 0, float32(math.Copysign(0, -1)), 3)})[0]
	expectInts(t, nz, dims(2, 2), 0, 1, 0, 1)
	nz = must(t, "NonZero", 13, 1, []*ir.Tensor{ir.NewTensor(ir.Float32, dims(3))})[0]
	expectInts(t, nz, dims(1, 0))

	b := func(v ...int64) *ir.Tensor { return ir.FromInt64s(ir.Bool, dims(int64(len(v))), v) }
	x := iota(3, 2)
	expectF32(t, must(t, "Compress", 13, 1, []*ir.Tensor{x, b(0, 1, 1)}, aInt("axis", 0))[0], dims(2, 2), 2, 3, 4, 5)
	expectF32(t, must(t, "Compress", 13, 1, []*ir.Tensor{x, b(0, 1)}, aInt("axis", 1))[0], dims(3, 1), 1, 3, 5)
	expectF32(t, must(t, "Compress", 13, 1, []*ir.Tensor{x, b(0, 1, 0, 0, 1)})[0], dims(2), 1, 4)
	mustFail(t, "selects index 3", "Compress", 13, 1, []*ir.Tensor{x, b(0, 0, 0, 1)}, aInt("axis", 0))

	y := iota(2, 3, 3)
	up := must(t, "Trilu", 14, 1, []*ir.Tensor{y})[0]
	lo := must(t, "Trilu", 14, 1, []*ir.Tensor{y, ir.ScalarInt64(-1)}, aInt("upper", 0))[0]
	for m := 0; m < 2; m++ {
		for i := 0; i < 3; i++ {
			for j := 0; j < 3; j++ {
				k := m*9 + i*3 + j
				wantUp, wantLo := float32(0), float32(0)
				if j >= i {
					wantUp = float32(k)
				}
				if j-i <= -1 {
					wantLo = float32(k)
				}
				if up.F32()[k] != wantUp || lo.F32()[k] != wantLo {
					t.Fatalf("Trilu at %d: upper %v lower %v", k, up.F32()[k], lo.F32()[k])
				}
			}
		}
	}
	out = must(t, "Trilu", 14, 1, []*ir.Tensor{iota(2, 3), ir.ScalarInt64(5)})[0]
	expectF32(t, out, dims(2, 3), 0, 0, 0, 0, 0, 0)

	// ReverseSequence: ONNX doc example (time_axis 0, batch_axis 1).
	z := f32(dims(4, 4), 0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15)
	out = must(t, "ReverseSequence", 10, 1, []*ir.Tensor{z, vec(4, 3, 2, 1)}, aInt("time_axis", 0), aInt("batch_axis", 1))[0]
	expectF32(t, out, dims(4, 4), 3, 6, 9, 12, 2, 5, 8, 13, 1, 4, 10, 14, 0, 7, 11, 15)
	out = must(t, "ReverseSequence", 10, 1, []*ir.Tensor{iota(4, 4), vec(1, 2, 3, 4)}, aInt("time_axis", 1), aInt("batch_axis", 0))[0]
	expectF32(t, out, dims(4, 4), 0, 1, 2, 3, 5, 4, 6, 7, 10, 9, 8, 11, 15, 14, 13, 12)
	mustFail(t, "outside", "ReverseSequence", 10, 1, []*ir.Tensor{iota(4, 4), vec(1, 2, 3, 5)})
}

func TestSpaceDepth(t *testing.T) {
	// ONNX doc example (DCR and CRD) on a [1, 8, 2, 3] input 0..47.
	x := iota(1, 8, 2, 3)
	dcr := must(t, "DepthToSpace", 13, 1, []*ir.Tensor{x}, aInt("blocksize", 2))[0]
	expectF32(t, dcr, dims(1, 2, 4, 6), 0, 12, 1, 13, 2, 14, 24, 36, 25, 37, 26, 38, 3, 15, 4, 16, 5, 17, 27, 39, 28, 40, 29, 41,
		6, 18, 7, 19, 8, 20, 30, 42, 31, 43, 32, 44, 9, 21, 10, 22, 11, 23, 33, 45, 34, 46, 35, 47)
	crd := must(t, "DepthToSpace", 13, 1, []*ir.Tensor{x}, aInt("blocksize", 2), aStr("mode", "CRD"))[0]
	expectF32(t, crd, dims(1, 2, 4, 6), 0, 6, 1, 7, 2, 8, 12, 18, 13, 19, 14, 20, 3, 9, 4, 10, 5, 11, 15, 21, 16, 22, 17, 23,
		24, 30, 25, 31, 26, 32, 36, 42, 37, 43, 38, 44, 27, 33, 28, 34, 29, 35, 39, 45, 40, 46, 41, 47)
	// SpaceToDepth inverts DCR DepthToSpace.
	back := must(t, "SpaceToDepth", 13, 1, []*ir.Tensor{dcr}, aInt("blocksize", 2))[0]
	expectF32(t, back, x.Dims, x.F32()...)
	mustFail(t, "divisible", "DepthToSpace", 13, 1, []*ir.Tensor{iota(1, 6, 2, 2)}, aInt("blocksize", 2))
	mustFail(t, "divisible", "SpaceToDepth", 13, 1, []*ir.Tensor{iota(1, 1, 3, 2)}, aInt("blocksize", 2))
	mustFail(t, "must be positive", "SpaceToDepth", 13, 1, []*ir.Tensor{iota(1, 1, 2, 2)})
}

func TestSortOps(t *testing.T) {
	x := f32(dims(3, 4), 0, 1, 2, 3, 4, 5, 6, 7, 11, 10, 9, 8)
	outs := must(t, "TopK", 11, 2, []*ir.Tensor{x, vec(3)})
	expectF32(t, outs[0], dims(3, 3), 3, 2, 1, 7, 6, 5, 11, 10, 9)
	expectInts(t, outs[1], dims(3, 3), 3, 2, 1, 3, 2, 1, 0, 1, 2)
	outs = must(t, "TopK", 11, 2, []*ir.Tensor{x, vec(2)}, aInt("largest", 0), aInt("axis", 0))
	expectF32(t, outs[0], dims(2, 4), 0, 1, 2, 3, 4, 5, 6, 7)
	// Ties: the lower index comes first.
	outs = must(t, "TopK", 11, 2, []*ir.Tensor{f32(dims(5), 1, 3, 3, 1, 3), vec(4)})
	expectInts(t, outs[1], dims(4), 1, 2, 4, 0)
	outs = must(t, "TopK", 1, 2, []*ir.Tensor{f32(dims(3), 2, float32(math.NaN()), 1)}, aInt("k", 1))
	expectInts(t, outs[1], dims(1), 1)
	mustFail(t, "outside", "TopK", 11, 2, []*ir.Tensor{x, vec(5)})

	c := must(t, "CumSum", 14, 1, []*ir.Tensor{f32(dims(5), 1, 2, 3, 4, 5), ir.ScalarInt64(0)})[0]
	expectF32(t, c, dims(5), 1, 3, 6, 10, 15)
	c = must(t, "CumSum", 14, 1, []*ir.Tensor{f32(dims(5), 1, 2, 3, 4, 5), ir.ScalarInt64(0)}, aInt("exclusive", 1), aInt("reverse", 1))[0]
	expectF32(t, c, dims(5), 14, 12, 9, 5, 0)
	c = must(t, "CumSum", 14, 1, []*ir.Tensor{iota(2, 3), ir.FromInt64s(ir.Int32, nil, []int64{1})})[0]
	expectF32(t, c, dims(2, 3), 0, 1, 3, 3, 7, 12)
	ci := must(t, "CumSum", 14, 1, []*ir.Tensor{i64(dims(2, 2), 1, 2, 3, 4), ir.ScalarInt64(-2)}, aInt("exclusive", 1))[0]
	expectInts(t, ci, dims(2, 2), 0, 0, 1, 2)

	// Unique: ONNX doc examples.
	outs = must(t, "Unique", 11, 4, []*ir.Tensor{f32(dims(6), 2, 1, 1, 3, 4, 3)}, aInt("sorted", 0))
	expectF32(t, outs[0], dims(4), 2, 1, 3, 4)
	expectInts(t, outs[1], dims(4), 0, 1, 3, 4)
	expectInts(t, outs[2], dims(6), 0, 1, 1, 2, 3, 2)
	expectInts(t, outs[3], dims(4), 1, 2, 2, 1)
	outs = must(t, "Unique", 11, 4, []*ir.Tensor{f32(dims(6), 2, 1, 1, 3, 4, 3)})
	expectF32(t, outs[0], dims(4), 1, 2, 3, 4)
	expectInts(t, outs[1], dims(4), 1, 0, 3, 4)
	expectInts(t, outs[2], dims(6), 1, 0, 0, 2, 3, 2)
	expectInts(t, outs[3], dims(4), 2, 1, 2, 1)
	outs = must(t, "Unique", 11, 4, []*ir.Tensor{f32(dims(3, 3), 1, 0, 0, 1, 0, 0, 2, 3, 4)}, aInt("axis", 0))
	expectF32(t, outs[0], dims(2, 3), 1, 0, 0, 2, 3, 4)
	expectInts(t, outs[2], dims(3), 0, 0, 1)
	outs = must(t, "Unique", 11, 4, []*ir.Tensor{f32(dims(2, 4, 2), 1, 1, 0, 1, 2, 1, 0, 1, 1, 1, 0, 1, 2, 1, 0, 1)}, aInt("axis", 1))
	expectF32(t, outs[0], dims(2, 3, 2), 0, 1, 1, 1, 2, 1, 0, 1, 1, 1, 2, 1)
	expectInts(t, outs[1], dims(3), 1, 0, 2)
	expectInts(t, outs[2], dims(4), 1, 0, 2, 0)
	expectInts(t, outs[3], dims(3), 2, 1, 1)
}

func TestHostileValues(t *testing.T) {
	x := iota(1, 4, 2, 2)
	mustFail(t, "at most", "DepthToSpace", 13, 1, []*ir.Tensor{x}, aInt("blocksize", 1<<32))
	mustFail(t, "at most", "SpaceToDepth", 13, 1, []*ir.Tensor{x}, aInt("blocksize", 1<<40))
	mustFail(t, "out of range", "Pad", 13, 1, []*ir.Tensor{x, vec(0, 0, 0, math.MaxInt64, 0, 0, 0, 0)})
	mustFail(t, "out of range", "Pad", 13, 1, []*ir.Tensor{x, vec(0, 0, 0, math.MinInt64, 0, 0, 0, 0)})
	mustFail(t, "more than the limit", "Pad", 13, 1, []*ir.Tensor{x, vec(0, 0, 1<<16, 1<<16, 0, 0, 1<<16, 1<<16)})
	mustFail(t, "more than the limit", "OneHot", 11, 1, []*ir.Tensor{vec(1, 2, 3, 4), ir.ScalarInt64(1 << 40), f32(dims(2), 0, 1)})
	mustFail(t, "overflows", "Reshape", 13, 1, []*ir.Tensor{x, vec(1<<40, 1<<40, 0, -1)})
	mustFail(t, "outside", "TopK", 11, 2, []*ir.Tensor{x, vec(math.MaxInt64)})
	mustFail(t, "outside", "Dropout", 13, 2, []*ir.Tensor{x, ir.ScalarFloat32(float32(math.NaN()))})
	mustFail(t, "larger than the axis", "Split", 13, 2, []*ir.Tensor{iota(4), vec(math.MaxInt64, math.MinInt64+4)})
	mustFail(t, "larger than the axis", "Split", 13, 3, []*ir.Tensor{ir.NewTensor(ir.Float32, dims(0)), vec(math.MaxInt64, math.MaxInt64, 2)})
}

func TestCenterCropPad(t *testing.T) {
	x := iota(5, 4)
	// Crop rows 5->3 (start 1), pad cols 4->7 (1 before, 2 after).
	out := must(t, "CenterCropPad", 18, 1, []*ir.Tensor{x, vec(3, 7)})[0]
	expectF32(t, out, dims(3, 7),
		0, 4, 5, 6, 7, 0, 0,
		0, 8, 9, 10, 11, 0, 0,
		0, 12, 13, 14, 15, 0, 0)
	// Crop 4->1 starts at (4-1)/2 = 1; axes attribute.
	out = must(t, "CenterCropPad", 18, 1, []*ir.Tensor{x, vec(1)}, aInts("axes", -1))[0]
	expectF32(t, out, dims(5, 1), 1, 5, 9, 13, 17)
	mustFail(t, "2 axes", "CenterCropPad", 18, 1, []*ir.Tensor{x, vec(1)})
	mustFail(t, "invalid size", "CenterCropPad", 18, 1, []*ir.Tensor{x, vec(1, -1)})
}
