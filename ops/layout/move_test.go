package layout

import (
	"fmt"
	"math"
	"testing"

	"github.com/kilnml/kiln/ir"
)

func TestTransposeAgainstNaive(t *testing.T) {
	x := iota(2, 3, 4, 5)
	perms := [][]int64{{0, 1, 2, 3}, {3, 2, 1, 0}, {0, 2, 3, 1}, {1, 0, 3, 2}, {2, 0, 1, 3}}
	for _, p := range perms {
		out := must(t, "Transpose", 13, 1, []*ir.Tensor{x}, aInts("perm", p...))[0]
		od := make([]int64, 4)
		for i, a := range p {
			od[i] = x.Dims[a]
		}
		want := naiveGather(x, od, func(c []int64) []int64 {
			s := make([]int64, 4)
			for i, a := range p {
				s[a] = c[i]
			}
			return s
		})
		expectF32(t, out, od, want.F32()...)
	}
	expectF32(t, must(t, "Transpose", 13, 1, []*ir.Tensor{iota(2, 3)})[0], dims(3, 2), 0, 3, 1, 4, 2, 5)
	mustFail(t, "not a permutation", "Transpose", 13, 1, []*ir.Tensor{x}, aInts("perm", 0, 1, 1, 2))
	mustFail(t, "rank", "Transpose", 13, 1, []*ir.Tensor{x}, aInts("perm", 0, 1))
}

// Every element type moves bit-exactly, including packed int4 and strings.
func TestAnyDType(t *testing.T) {
	types := []ir.DType{ir.Int4, ir.Uint4, ir.Float4E2M1, ir.Int2, ir.Bool, ir.Uint8, ir.Float16, ir.BFloat16,
		ir.Float8E4M3FN, ir.Int32, ir.Float64, ir.Complex128, ir.String}
	for _, dt := range types {
		x := ir.NewTensor(dt, dims(3, 5))
		for i := int64(0); i < x.Len(); i++ {
			switch {
			case dt == ir.String:
				x.Strings[i] = []byte(fmt.Sprint("s", i))
			case dt.IsSubByte():
				setBits(x, i, uint8(i*7)&uint8(1<<dt.Bits()-1))
			default:
				w := int64(dt.Bits() / 8)
				for b := int64(0); b < w; b++ {
					x.Data[i*w+b] = byte(i*13 + b)
				}
				if dt == ir.Bool {
					x.Data[i] = byte(i % 2)
				}
			}
		}
		key := func(t *ir.Tensor, i int64) string {
			switch {
			case t.DType == ir.String:
				return string(t.Strings[i])
			case t.DType.IsSubByte():
				return fmt.Sprint(getBits(t, i))
			}
			w := int64(t.DType.Bits() / 8)
			return fmt.Sprint(t.Data[i*w : (i+1)*w])
		}
		tr := must(t, "Transpose", 13, 1, []*ir.Tensor{x})[0]
		for r := int64(0); r < 3; r++ {
			for c := int64(0); c < 5; c++ {
				if key(tr, c*3+r) != key(x, r*5+c) {
					t.Fatalf("%s: transpose differs at (%d,%d)", dt, r, c)
				}
			}
		}
		// Slice with a negative step, Concat, Gather and Pad(edge) on the same data.
		sl := must(t, "Slice", 13, 1, []*ir.Tensor{x, vec(-1), vec(math.MinInt64), vec(1), vec(-2)})[0]
		if fmt.Sprint(sl.Dims) != "[3 3]" || key(sl, 1) != key(x, 2) || key(sl, 5) != key(x, 5) {
			t.Fatalf("%s: slice wrong: dims %v", dt, sl.Dims)
		}
		cc := must(t, "Concat", 13, 1, []*ir.Tensor{x, sl}, aInt("axis", 1))[0]
		if key(cc, 4) != key(x, 4) || key(cc, 5) != key(sl, 0) || key(cc, 8) != key(x, 5) || key(cc, 8*2+7) != key(sl, 2*3+2) {
			t.Fatalf("%s: concat wrong", dt)
		}
		g := must(t, "Gather", 13, 1, []*ir.Tensor{x, vec(2, 0)}, aInt("axis", 0))[0]
		if key(g, 0) != key(x, 10) || key(g, 9) != key(x, 4) {
			t.Fatalf("%s: gather wrong", dt)
		}
		p := must(t, "Pad", 13, 1, []*ir.Tensor{x, vec(0, 1, 0, 1)}, aStr("mode", "edge"))[0]
		if key(p, 0) != key(x, 0) || key(p, 6) != key(x, 4) || key(p, 7) != key(x, 5) {
			t.Fatalf("%s: pad wrong", dt)
		}
	}
}

func TestConcatSplit(t *testing.T) {
	a, b := iota(2, 2), f32(dims(2, 1), 10, 11)
	expectF32(t, must(t, "Concat", 13, 1, []*ir.Tensor{a, b}, aInt("axis", -1))[0], dims(2, 3), 0, 1, 10, 2, 3, 11)
	empty := ir.NewTensor(ir.Float32, dims(2, 0))
	expectF32(t, must(t, "Concat", 13, 1, []*ir.Tensor{empty, a, empty}, aInt("axis", 1))[0], dims(2, 2), 0, 1, 2, 3)
	mustFail(t, "differ off axis", "Concat", 13, 1, []*ir.Tensor{a, iota(3, 1)}, aInt("axis", 1))
	mustFail(t, "axis is required", "Concat", 13, 1, []*ir.Tensor{a, b})
	mustFail(t, "out of range", "Concat", 13, 1, []*ir.Tensor{a, b}, aInt("axis", 2))
	mustFail(t, "int64 but input 0 is float32", "Concat", 13, 1, []*ir.Tensor{a, vec(1, 2)}, aInt("axis", 0))

	x := iota(2, 7)
	// opset 18 uneven: ceil(7/3)=3 -> 3,3,1
	outs := must(t, "Split", 18, 3, []*ir.Tensor{x}, aInt("axis", 1), aInt("num_outputs", 3))
	expectF32(t, outs[0], dims(2, 3), 0, 1, 2, 7, 8, 9)
	expectF32(t, outs[2], dims(2, 1), 6, 13)
	outs = must(t, "Split", 13, 2, []*ir.Tensor{x, vec(5, 2)}, aInt("axis", -1))
	expectF32(t, outs[1], dims(2, 2), 5, 6, 12, 13)
	outs = must(t, "Split", 11, 2, []*ir.Tensor{iota(4)}, aInts("split", 1, 3))
	expectF32(t, outs[1], dims(3), 1, 2, 3)
	outs = must(t, "Split", 13, 2, []*ir.Tensor{iota(4, 1)})
	expectF32(t, outs[1], dims(2, 1), 2, 3)
	mustFail(t, "equal parts", "Split", 13, 2, []*ir.Tensor{iota(3)})
	mustFail(t, "sums to", "Split", 13, 2, []*ir.Tensor{iota(3), vec(1, 1)})
	mustFail(t, "2 outputs", "Split", 18, 2, []*ir.Tensor{iota(3)}, aInt("num_outputs", 3))
}

func TestSlice(t *testing.T) {
	x := iota(20, 10, 5)
	// Independent reference for one axis: Python slicing semantics.
	pyIdx := func(start, end, step, dim int64) []int64 {
		var out []int64
		norm := func(v int64, lo, hi int64) int64 {
			if v < 0 {
				v += dim
			}
			return max(lo, min(v, hi))
		}
		if step > 0 {
			for i, e := norm(start, 0, dim), norm(end, 0, dim); i < e; i += step {
				out = append(out, i)
				if step > e-i {
					break
				}
			}
		} else {
			// ONNX clamps a backward start to [0, dim-1] (numpy would give
			// an empty slice for a start before the beginning).
			for i, e := norm(start, 0, dim-1), norm(end, -1, dim-1); i > e; i += step {
				out = append(out, i)
				if step < e-i {
					break
				}
			}
		}
		return out
	}
	vals := []int64{math.MinInt64, -1000, -11, -10, -3, -1, 0, 1, 3, 9, 10, 11, 1000, math.MaxInt64}
	for _, s := range vals {
		for _, e := range vals {
			for _, st := range []int64{1, 2, 3, -1, -2, -4, math.MaxInt64, math.MinInt64} {
				out := must(t, "Slice", 13, 1, []*ir.Tensor{x, vec(s), vec(e), vec(1), vec(st)})[0]
				idx := pyIdx(s, e, st, 10)
				if out.Dims[1] != int64(len(idx)) {
					t.Fatalf("slice %d:%d:%d gave %d elements, want %d", s, e, st, out.Dims[1], len(idx))
				}
				for j, i := range idx {
					if got := out.F32()[int64(j)*5]; got != float32(i*5) {
						t.Fatalf("slice %d:%d:%d element %d = %v want %v", s, e, st, j, got, i*5)
					}
				}
			}
		}
	}
	// Opset 1..9 attributes, default axes.
	out := must(t, "Slice", 9, 1, []*ir.Tensor{iota(3, 4)}, aInts("starts", 1, -2), aInts("ends", 100, 1000))[0]
	expectF32(t, out, dims(2, 2), 6, 7, 10, 11)
	out = must(t, "Slice", 13, 1, []*ir.Tensor{iota(3, 4), vec(1), vec(3), vec(-1)})[0]
	expectF32(t, out, dims(3, 2), 1, 2, 5, 6, 9, 10)
	mustFail(t, "has a 0", "Slice", 13, 1, []*ir.Tensor{x, vec(0), vec(1), vec(0), vec(0)})
	mustFail(t, "repeats", "Slice", 13, 1, []*ir.Tensor{x, vec(0, 0), vec(1, 1), vec(0, -3)})
	mustFail(t, "out of range", "Slice", 13, 1, []*ir.Tensor{x, vec(0), vec(1), vec(3)})
	mustFail(t, "differ in length", "Slice", 13, 1, []*ir.Tensor{x, vec(0, 1), vec(1)})
}

func TestGatherFamily(t *testing.T) {
	x := iota(3, 4)
	out := must(t, "Gather", 13, 1, []*ir.Tensor{x, i64(dims(2, 2), 0, -1, 2, 1)}, aInt("axis", 1))[0]
	expectF32(t, out, dims(3, 2, 2), 0, 3, 2, 1, 4, 7, 6, 5, 8, 11, 10, 9)
	out = must(t, "Gather", 13, 1, []*ir.Tensor{x, ir.ScalarInt64(-1)})[0]
	expectF32(t, out, dims(4), 8, 9, 10, 11)
	out = must(t, "Gather", 13, 1, []*ir.Tensor{x, ir.FromInt64s(ir.Int32, dims(1), []int64{1})})[0]
	expectF32(t, out, dims(1, 4), 4, 5, 6, 7)
	mustFail(t, "index 3 is out of bounds", "Gather", 13, 1, []*ir.Tensor{x, vec(0, 3)})
	mustFail(t, "index -5 is out of bounds", "Gather", 13, 1, []*ir.Tensor{x, vec(-5)}, aInt("axis", 1))
	mustFail(t, "want int32 or int64", "Gather", 13, 1, []*ir.Tensor{x, f32(dims(1), 0)})

	// GatherElements: ONNX's doc examples.
	d := f32(dims(2, 2), 1, 2, 3, 4)
	out = must(t, "GatherElements", 13, 1, []*ir.Tensor{d, i64(dims(2, 2), 0, 0, 1, 0)}, aInt("axis", 1))[0]
	expectF32(t, out, dims(2, 2), 1, 1, 4, 3)
	d = f32(dims(3, 3), 1, 2, 3, 4, 5, 6, 7, 8, 9)
	out = must(t, "GatherElements", 13, 1, []*ir.Tensor{d, i64(dims(2, 3), 1, 2, 0, 2, 0, -3)})[0]
	expectF32(t, out, dims(2, 3), 4, 8, 3, 7, 2, 3)
	mustFail(t, "out of bounds", "GatherElements", 13, 1, []*ir.Tensor{d, i64(dims(1, 1), 3)})

	// GatherND: ONNX's doc examples including batch_dims.
	d = f32(dims(2, 2, 2), 0, 1, 2, 3, 4, 5, 6, 7)
	out = must(t, "GatherND", 13, 1, []*ir.Tensor{d, i64(dims(2, 2), 0, 1, 1, 0)})[0]
	expectF32(t, out, dims(2, 2), 2, 3, 4, 5)
	out = must(t, "GatherND", 13, 1, []*ir.Tensor{d, i64(dims(2, 1, 1), 1, 0)})[0]
	expectF32(t, out, dims(2, 1, 2, 2), 4, 5, 6, 7, 0, 1, 2, 3)
	out = must(t, "GatherND", 13, 1, []*ir.Tensor{d, i64(dims(2, 1), 1, 0)}, aInt("batch_dims", 1))[0]
	expectF32(t, out, dims(2, 2), 2, 3, 4, 5)
	out = must(t, "GatherND", 13, 1, []*ir.Tensor{d, i64(dims(2, 1, 2), 0, 1, 1, 0)}, aInt("batch_dims", 1))[0]
	expectF32(t, out, dims(2, 1), 1, 6)
	mustFail(t, "out of bounds", "GatherND", 13, 1, []*ir.Tensor{d, i64(dims(1, 3), 0, 0, 2)})
	mustFail(t, "last dim", "GatherND", 13, 1, []*ir.Tensor{d, i64(dims(1, 4), 0, 0, 0, 0)})
}

func TestScatter(t *testing.T) {
	// ScatterElements doc example, then reductions.
	d := f32(dims(1, 5), 1, 2, 3, 4, 5)
	idx := i64(dims(1, 2), 1, 3)
	upd := f32(dims(1, 2), 1.1, 2.1)
	out := must(t, "ScatterElements", 13, 1, []*ir.Tensor{d, idx, upd}, aInt("axis", 1))[0]
	expectF32(t, out, dims(1, 5), 1, 1.1, 3, 2.1, 5)
	idx = i64(dims(1, 2), 1, 1)
	out = must(t, "ScatterElements", 18, 1, []*ir.Tensor{d, idx, upd}, aInt("axis", 1), aStr("reduction", "add"))[0]
	expectF32(t, out, dims(1, 5), 1, 2+1.1+2.1, 3, 4, 5)
	out = must(t, "ScatterElements", 18, 1, []*ir.Tensor{d, idx, upd}, aInt("axis", 1), aStr("reduction", "max"))[0]
	expectF32(t, out, dims(1, 5), 1, 2.1, 3, 4, 5)
	out = must(t, "ScatterElements", 18, 1, []*ir.Tensor{d, idx, upd}, aInt("axis", 1), aStr("reduction", "min"))[0]
	expectF32(t, out, dims(1, 5), 1, 1.1, 3, 4, 5)
	mustFail(t, "not supported at opset 16", "ScatterElements", 16, 1, []*ir.Tensor{d, idx, upd}, aStr("reduction", "max"))
	mustFail(t, "out of bounds", "ScatterElements", 13, 1, []*ir.Tensor{d, i64(dims(1, 1), 5), f32(dims(1, 1), 0)}, aInt("axis", 1))

	// ScatterND doc examples.
	data := iota(8)
	out = must(t, "ScatterND", 13, 1, []*ir.Tensor{data, i64(dims(4, 1), 4, 3, 1, 7), f32(dims(4), 9, 10, 11, 12)})[0]
	expectF32(t, out, dims(8), 0, 11, 2, 10, 9, 5, 6, 12)
	out = must(t, "ScatterND", 18, 1, []*ir.Tensor{data, i64(dims(2, 1), 1, 1), f32(dims(2), 5, 6)}, aStr("reduction", "mul"))[0]
	expectF32(t, out, dims(8), 0, 30, 2, 3, 4, 5, 6, 7)
	ints := ir.FromInt64s(ir.Int32, dims(2, 2), []int64{1, 2, 3, 4})
	o2 := must(t, "ScatterND", 18, 1, []*ir.Tensor{ints, i64(dims(1, 1), 1), ir.FromInt64s(ir.Int32, dims(1, 2), []int64{10, 20})}, aStr("reduction", "add"))[0]
	expectInts(t, o2, dims(2, 2), 1, 2, 13, 24)
	mustFail(t, "updates have shape", "ScatterND", 13, 1, []*ir.Tensor{data, i64(dims(1, 1), 0), f32(dims(2), 0, 0)})
	mustFail(t, "out of bounds", "ScatterND", 13, 1, []*ir.Tensor{data, i64(dims(1, 1), 8), f32(dims(1), 0)})
}

func TestPad(t *testing.T) {
	x := f32(dims(3, 2), 1, 1.2, 2.3, 3.4, 4.5, 5.7)
	// ONNX doc examples.
	out := must(t, "Pad", 13, 1, []*ir.Tensor{x, vec(0, 2, 0, 0), ir.ScalarFloat32(0)})[0]
	expectF32(t, out, dims(3, 4), 0, 0, 1, 1.2, 0, 0, 2.3, 3.4, 0, 0, 4.5, 5.7)
	out = must(t, "Pad", 13, 1, []*ir.Tensor{x, vec(0, 2, 0, 0)}, aStr("mode", "reflect"))[0]
	expectF32(t, out, dims(3, 4), 1, 1.2, 1, 1.2, 2.3, 3.4, 2.3, 3.4, 4.5, 5.7, 4.5, 5.7)
	out = must(t, "Pad", 13, 1, []*ir.Tensor{x, vec(0, 2, 0, 0)}, aStr("mode", "edge"))[0]
	expectF32(t, out, dims(3, 4), 1, 1, 1, 1.2, 2.3, 2.3, 2.3, 3.4, 4.5, 4.5, 4.5, 5.7)
	out = must(t, "Pad", 19, 1, []*ir.Tensor{x, vec(2, 1, 1, 1)}, aStr("mode", "wrap"))[0]
	expectF32(t, out, dims(6, 4), 3.4, 2.3, 3.4, 2.3, 5.7, 4.5, 5.7, 4.5, 1.2, 1, 1.2, 1, 3.4, 2.3, 3.4, 2.3,
		5.7, 4.5, 5.7, 4.5, 1.2, 1, 1.2, 1)
	// Reflect wider than the input reflects again: [1 2 3] padded by 4 on the left.
	out = must(t, "Pad", 13, 1, []*ir.Tensor{f32(dims(3), 1, 2, 3), vec(4, 0)}, aStr("mode", "reflect"))[0]
	expectF32(t, out, dims(7), 1, 2, 3, 2, 1, 2, 3)
	// Opset 2 attributes, constant value, negative pads crop; axes (opset 18).
	out = must(t, "Pad", 2, 1, []*ir.Tensor{iota(2, 3)}, aInts("pads", 0, -1, 1, 1), aFloat("value", -1))[0]
	expectF32(t, out, dims(3, 3), 1, 2, -1, 4, 5, -1, -1, -1, -1)
	out = must(t, "Pad", 18, 1, []*ir.Tensor{iota(2, 3), vec(1, 0), ir.ScalarFloat32(9), vec(-1)})[0]
	expectF32(t, out, dims(2, 4), 9, 0, 1, 2, 9, 3, 4, 5)
	mustFail(t, "not supported at opset 13", "Pad", 13, 1, []*ir.Tensor{x, vec(0, 0, 0, 0)}, aStr("mode", "wrap"))
	mustFail(t, "needs 4 entries", "Pad", 13, 1, []*ir.Tensor{x, vec(0, 0)})
	mustFail(t, "remove more", "Pad", 13, 1, []*ir.Tensor{x, vec(-2, 0, -2, 0)})
	mustFail(t, "size 0", "Pad", 13, 1, []*ir.Tensor{ir.NewTensor(ir.Float32, dims(0)), vec(1, 1)}, aStr("mode", "edge"))
}

func TestExpandTile(t *testing.T) {
	x := f32(dims(3, 1), 1, 2, 3)
	out := must(t, "Expand", 13, 1, []*ir.Tensor{x, vec(2, 1, 2)})[0]
	expectF32(t, out, dims(2, 3, 2), 1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3)
	out = must(t, "Expand", 13, 1, []*ir.Tensor{x, vec(1)})[0]
	expectF32(t, out, dims(3, 1), 1, 2, 3)
	mustFail(t, "cannot expand", "Expand", 13, 1, []*ir.Tensor{x, vec(2, 2)})
	mustFail(t, "more than the limit", "Expand", 13, 1, []*ir.Tensor{x, vec(1<<20, 1<<20, 1, 1)})

	y := f32(dims(2, 2), 1, 2, 3, 4)
	out = must(t, "Tile", 13, 1, []*ir.Tensor{y, vec(2, 3)})[0]
	want := naiveGather(y, dims(4, 6), func(c []int64) []int64 { return []int64{c[0] % 2, c[1] % 2} })
	expectF32(t, out, dims(4, 6), want.F32()...)
	out = must(t, "Tile", 13, 1, []*ir.Tensor{y, vec(0, 1)})[0]
	expectF32(t, out, dims(0, 2))
	mustFail(t, "negative", "Tile", 13, 1, []*ir.Tensor{y, vec(-1, 1)})
	mustFail(t, "for an input of rank 2", "Tile", 13, 1, []*ir.Tensor{y, vec(1)})
	mustFail(t, "more than the limit", "Tile", 13, 1, []*ir.Tensor{y, vec(1<<20, 1<<20)})
}
