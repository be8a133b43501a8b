package nn

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// TestNoPanicOnBadInput throws random shapes, dtypes, input counts and
// attribute values (negative, zero, oversized, wrongly typed) at every op
// of the package: kernels and inference must return errors, never panic.
func TestNoPanicOnBadInput(t *testing.T) {
	opList := []struct {
		name  string
		opset int64
		nIn   int
	}{
		{"Conv", 22, 3}, {"ConvTranspose", 22, 3}, {"Gemm", 13, 3}, {"MatMul", 13, 2}, {"MaxPool", 12, 1},
		{"AveragePool", 19, 1}, {"LpPool", 18, 1}, {"GlobalAveragePool", 22, 1}, {"GlobalMaxPool", 22, 1},
		{"MaxUnpool", 11, 3}, {"BatchNormalization", 15, 5}, {"BatchNormalization", 7, 5}, {"LayerNormalization", 17, 3},
		{"InstanceNormalization", 22, 3}, {"GroupNormalization", 21, 3}, {"GroupNormalization", 18, 3},
		{"RMSNormalization", 23, 2}, {"LRN", 13, 1}, {"MeanVarianceNormalization", 13, 1}, {"Resize", 19, 4},
		{"Resize", 10, 2}, {"Upsample", 9, 2}, {"Upsample", 7, 1}, {"Einsum", 12, 3}, {"Attention", 24, 7},
		{"RotaryEmbedding", 23, 4},
	}
	intAttrs := []string{"group", "transA", "transB", "ceil_mode", "storage_order", "count_include_pad", "p",
		"training_mode", "axis", "num_groups", "size", "exclude_outside", "antialias", "is_causal", "q_num_heads",
		"kv_num_heads", "qk_matmul_output_mode", "interleaved", "num_heads", "rotary_embedding_dim", "stash_type", "spatial"}
	intsAttrs := []string{"kernel_shape", "strides", "pads", "dilations", "output_padding", "output_shape", "axes"}
	strAttrs := map[string][]string{
		"auto_pad":                       {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID", "bogus"},
		"mode":                           {"nearest", "linear", "cubic", "bilinear", "x"},
		"coordinate_transformation_mode": {"half_pixel", "align_corners", "tf_crop_and_resize", "asymmetric", "pytorch_half_pixel", "half_pixel_symmetric", "z"},
		"nearest_mode":                   {"floor", "ceil", "round_prefer_ceil", "q"},
		"keep_aspect_ratio_policy":       {"stretch", "not_larger", "not_smaller", "w"},
		"equation":                       {"ij,jk->ik", "...ij->...ji", "ii->i", "i,i", "ab...,b->a", "->", "a->b", "...", "i.j", "", "ij->ii"},
	}
	dtypes := []ir.DType{ir.Float32, ir.Float32, ir.Float32, ir.Float16, ir.Float64, ir.Int64, ir.Int8, ir.Uint8, ir.Bool}
	r := rand.New(rand.NewPCG(42, 43))
	smallInt := func() int64 { return int64(r.IntN(7)) - 2 }
	randTensor := func() *ir.Tensor {
		rank := r.IntN(5)
		d := make([]int64, rank)
		for i := range d {
			d[i] = int64(r.IntN(5))
		}
		dt := dtypes[r.IntN(len(dtypes))]
		t := ir.NewTensor(dt, d)
		for i := int64(0); i < t.Len(); i++ {
			t.SetFloat64At(i, float64(r.IntN(7)-3))
		}
		return t
	}
	for iter := 0; iter < 6000; iter++ {
		o := opList[r.IntN(len(opList))]
		n := &ir.Node{Name: "fuzz", OpType: o.name, Outputs: []string{"y0"}}
		for k := 1; k < 1+r.IntN(4); k++ {
			n.Outputs = append(n.Outputs, fmt.Sprintf("y%d", k))
		}
		for k := 0; k < r.IntN(4); k++ {
			a := intAttrs[r.IntN(len(intAttrs))]
			n.Attrs = append(n.Attrs, &ir.Attribute{Name: a, Type: ir.AttrInt, I: smallInt()})
		}
		for k := 0; k < r.IntN(4); k++ {
			a := intsAttrs[r.IntN(len(intsAttrs))]
			v := make([]int64, r.IntN(7))
			for i := range v {
				v[i] = smallInt()
			}
			n.Attrs = append(n.Attrs, &ir.Attribute{Name: a, Type: ir.AttrInts, Ints: v})
		}
		for a, vals := range strAttrs {
			if r.IntN(3) == 0 {
				n.Attrs = append(n.Attrs, &ir.Attribute{Name: a, Type: ir.AttrString, S: []byte(vals[r.IntN(len(vals))])})
			}
		}
		if r.IntN(10) == 0 { // a wrongly typed attribute
			n.Attrs = append(n.Attrs, &ir.Attribute{Name: intAttrs[r.IntN(len(intAttrs))], Type: ir.AttrFloat, F: 1})
		}
		if r.IntN(4) == 0 {
			n.Attrs = append(n.Attrs, &ir.Attribute{Name: "scales", Type: ir.AttrFloats, Floats: []float32{1, 2, 0.5, -1}[:r.IntN(5)]})
		}
		var in []*ir.Tensor
		for k := 0; k < r.IntN(o.nIn+1)+1; k++ {
			var x *ir.Tensor
			if r.IntN(6) != 0 {
				x = randTensor()
			}
			in = append(in, x)
			name := ""
			if x != nil {
				name = fmt.Sprintf("x%d", k)
			}
			n.Inputs = append(n.Inputs, name)
		}
		impl, err := ops.Lookup("", o.name, o.opset)
		if err != nil {
			t.Fatal(err)
		}
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("%s opset %d panicked: %v\nattrs %s\ninputs %v", o.name, o.opset, p, describeAttrs(n), in)
				}
			}()
			_, _ = impl.Run(ops.NewCtx(n, o.opset), in)
			types := make([]*ir.Type, len(in))
			for i, x := range in {
				if x != nil {
					types[i] = x.Type()
				}
			}
			_ = impl.Infer(ops.NewInferCtx(n, o.opset, types, in, nil))
			_ = impl.Infer(ops.NewInferCtx(n, o.opset, types, make([]*ir.Tensor, len(in)), nil))
		}()
	}
}

func describeAttrs(n *ir.Node) string {
	s := ""
	for _, a := range n.Attrs {
		switch a.Type {
		case ir.AttrInt:
			s += fmt.Sprintf("%s=%d ", a.Name, a.I)
		case ir.AttrInts:
			s += fmt.Sprintf("%s=%v ", a.Name, a.Ints)
		case ir.AttrString:
			s += fmt.Sprintf("%s=%q ", a.Name, a.S)
		case ir.AttrFloats:
			s += fmt.Sprintf("%s=%v ", a.Name, a.Floats)
		default:
			s += a.Name + "=? "
		}
	}
	return s
}

// TestNoPanicNearValid mutates valid nodes one or two steps (a dim, an
// attribute value, a dropped input, a dtype) so that the random inputs reach
// deep into the kernels: errors are fine, panics are not.
func TestNoPanicNearValid(t *testing.T) {
	type base struct {
		op    string
		opset int64
		at    []*ir.Attribute
		dims  [][]int64
		nOut  int
	}
	bases := []base{
		{"Conv", 22, attrs(aInts("pads", 1, 1, 1, 1), aInts("strides", 2, 1), aInt("group", 2)), [][]int64{{1, 4, 5, 6}, {4, 2, 3, 3}, {4}}, 1},
		{"Conv", 22, attrs(aStr("auto_pad", "SAME_LOWER"), aInts("dilations", 2)), [][]int64{{2, 3, 7}, {2, 3, 3}}, 1},
		{"ConvTranspose", 22, attrs(aInts("strides", 2, 2), aInts("output_padding", 1, 0), aInt("group", 2)), [][]int64{{1, 4, 3, 3}, {4, 1, 3, 2}, {2}}, 1},
		{"ConvTranspose", 22, attrs(aInts("output_shape", 7, 5)), [][]int64{{1, 1, 3, 3}, {1, 2, 3, 3}}, 1},
		{"MaxPool", 12, attrs(aInts("kernel_shape", 2, 2), aInts("pads", 0, 1, 1, 0), aInt("ceil_mode", 1), aInts("dilations", 1, 2)), [][]int64{{1, 2, 5, 5}}, 2},
		{"AveragePool", 19, attrs(aInts("kernel_shape", 3), aInts("strides", 2), aInt("count_include_pad", 1), aInt("ceil_mode", 1)), [][]int64{{1, 1, 6}}, 1},
		{"MaxUnpool", 11, attrs(aInts("kernel_shape", 2, 2), aInts("strides", 2, 2)), [][]int64{{1, 1, 2, 2}, {1, 1, 2, 2}, {4}}, 1},
		{"Gemm", 13, attrs(aInt("transA", 1)), [][]int64{{3, 2}, {3, 4}, {4}}, 1},
		{"MatMul", 13, nil, [][]int64{{2, 1, 3, 4}, {3, 4, 2}}, 1},
		{"BatchNormalization", 15, attrs(aInt("training_mode", 1)), [][]int64{{2, 3, 2}, {3}, {3}, {3}, {3}}, 3},
		{"LayerNormalization", 17, attrs(aInt("axis", 1)), [][]int64{{2, 3, 4}, {3, 4}, {4}}, 3},
		{"GroupNormalization", 21, attrs(aInt("num_groups", 2)), [][]int64{{2, 4, 3}, {4}, {4}}, 1},
		{"InstanceNormalization", 22, nil, [][]int64{{2, 3, 4}, {3}, {3}}, 1},
		{"LRN", 13, attrs(aInt("size", 3)), [][]int64{{1, 4, 2, 2}}, 1},
		{"Resize", 19, attrs(aStr("mode", "cubic"), aInts("axes", 2, 3), aInt("antialias", 1)), [][]int64{{1, 1, 4, 4}, {4}, {2}, nil}, 1},
		{"Resize", 19, attrs(aStr("coordinate_transformation_mode", "tf_crop_and_resize"), aStr("mode", "linear")), [][]int64{{1, 1, 4, 4}, {8}, nil, {4}}, 1},
		{"Einsum", 12, attrs(aStr("equation", "...ij,...jk->...ik")), [][]int64{{2, 1, 2, 3}, {3, 3, 2}}, 1},
		{"Attention", 24, attrs(aInt("is_causal", 1)), [][]int64{{2, 4, 3, 4}, {2, 2, 5, 4}, {2, 2, 5, 3}, {3, 5}, {2, 2, 1, 4}, {2, 2, 1, 3}, {2}}, 4},
		{"Attention", 23, attrs(aInt("q_num_heads", 2), aInt("kv_num_heads", 1)), [][]int64{{1, 3, 8}, {1, 4, 4}, {1, 4, 4}}, 4},
		{"RotaryEmbedding", 23, attrs(aInt("rotary_embedding_dim", 2)), [][]int64{{1, 2, 3, 4}, {5, 1}, {5, 1}, {1, 3}}, 1},
	}
	r := rand.New(rand.NewPCG(7, 7))
	for iter := 0; iter < 4000; iter++ {
		b := bases[r.IntN(len(bases))]
		ds := make([][]int64, len(b.dims))
		for i, d := range b.dims {
			if d != nil {
				ds[i] = append([]int64{}, d...)
			}
		}
		at := make([]*ir.Attribute, len(b.at))
		for i, a := range b.at {
			c := *a
			c.Ints = append([]int64{}, a.Ints...)
			at[i] = &c
		}
		dts := make([]ir.DType, len(ds))
		for i := range dts {
			dts[i] = ir.Float32
		}
		for m := 0; m < 1+r.IntN(2); m++ {
			switch r.IntN(5) {
			case 0, 1: // a dim
				i := r.IntN(len(ds))
				if len(ds[i]) > 0 {
					ds[i][r.IntN(len(ds[i]))] = int64(r.IntN(7))
				}
			case 2: // an attribute value
				if len(at) > 0 {
					a := at[r.IntN(len(at))]
					if a.Type == ir.AttrInt {
						a.I = int64(r.IntN(8)) - 2
					} else if len(a.Ints) > 0 {
						a.Ints[r.IntN(len(a.Ints))] = int64(r.IntN(8)) - 2
					}
				}
			case 3: // drop an input
				ds[r.IntN(len(ds))] = nil
			case 4: // another dtype
				dts[r.IntN(len(dts))] = []ir.DType{ir.Int64, ir.Float16, ir.Bool, ir.Int8}[r.IntN(4)]
			}
		}
		n := &ir.Node{Name: "fuzz", OpType: b.op, Attrs: at}
		for k := 0; k < b.nOut; k++ {
			n.Outputs = append(n.Outputs, fmt.Sprintf("y%d", k))
		}
		in := make([]*ir.Tensor, len(ds))
		types := make([]*ir.Type, len(ds))
		for i, d := range ds {
			name := ""
			if d != nil {
				x := ir.NewTensor(dts[i], d)
				for j := int64(0); j < x.Len(); j++ {
					x.SetFloat64At(j, float64(r.IntN(5)))
				}
				in[i], types[i], name = x, x.Type(), fmt.Sprintf("x%d", i)
			}
			n.Inputs = append(n.Inputs, name)
		}
		impl, err := ops.Lookup("", b.op, b.opset)
		if err != nil {
			t.Fatal(err)
		}
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("%s panicked: %v\nattrs %s\ninput dims %v dtypes %v", b.op, p, describeAttrs(n), ds, dts)
				}
			}()
			_, _ = impl.Run(ops.NewCtx(n, b.opset), in)
			_ = impl.Infer(ops.NewInferCtx(n, b.opset, types, in, nil))
			_ = impl.Infer(ops.NewInferCtx(n, b.opset, types, make([]*ir.Tensor, len(in)), nil))
		}()
	}
}

// TestParallelForPanics checks that a panic in a worker reaches the caller's
// goroutine, where the executor turns it into an error.
func TestParallelForPanics(t *testing.T) {
	var got any
	func() {
		defer func() { got = recover() }()
		parallelFor(100, func(i int64) {
			if i == 37 {
				panic("boom")
			}
		})
	}()
	if got == nil || fmt.Sprint(got) != "boom" {
		t.Fatalf("recovered %v, want boom", got)
	}
	seen := make([]bool, 1000)
	parallelFor(1000, func(i int64) { seen[i] = true })
	for i, s := range seen {
		if !s {
			t.Fatalf("index %d not visited", i)
		}
	}
}
