package cudabackend

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/gpu/cuda"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops/kiln"
)

func ints(name string, v ...int64) *ir.Attribute {
	return &ir.Attribute{Name: name, Type: ir.AttrInts, Ints: v}
}
func intA(name string, v int64) *ir.Attribute {
	return &ir.Attribute{Name: name, Type: ir.AttrInt, I: v}
}
func floatA(name string, v float32) *ir.Attribute {
	return &ir.Attribute{Name: name, Type: ir.AttrFloat, F: v}
}
func floats(name string, v ...float32) *ir.Attribute {
	return &ir.Attribute{Name: name, Type: ir.AttrFloats, Floats: v}
}
func str(name, v string) *ir.Attribute {
	return &ir.Attribute{Name: name, Type: ir.AttrString, S: []byte(v)}
}

// layerOf makes a builder layer: consts[i] non-nil marks a constant input.
func layerOf(n *ir.Node, opset int64, in []*ir.Tensor, consts []bool, out []ir.DType, outDims [][]int64) *engine.Layer {
	l := &engine.Layer{Node: n, Opset: opset}
	for i, t := range in {
		if t == nil {
			l.In, l.Const = append(l.In, nil), append(l.Const, nil)
			continue
		}
		l.In = append(l.In, ir.TensorType(t.DType, ir.ShapeOf(t.Dims)))
		if consts[i] {
			l.Const = append(l.Const, t)
		} else {
			l.Const = append(l.Const, nil)
		}
	}
	for i, d := range out {
		l.Out = append(l.Out, ir.TensorType(d, ir.ShapeOf(outDims[i])))
	}
	return l
}

func TestWithoutGPUNothingIsOffered(t *testing.T) {
	if Available() == nil {
		t.Skip("a GPU is usable here")
	}
	err := Enable()
	if !errors.Is(err, cuda.ErrNoDevice) {
		t.Fatalf("Enable without a GPU: %v", err)
	}
	if Enabled() {
		t.Fatal("enabled without a GPU")
	}
	n := &ir.Node{Name: "r", OpType: "Relu", Inputs: []string{"x"}, Outputs: []string{"y"}}
	x := ir.NewTensor(ir.Float32, []int64{2})
	if tac := (Backend{}).Tactics(layerOf(n, 17, []*ir.Tensor{x}, []bool{false}, []ir.DType{ir.Float32}, [][]int64{{2}})); tac != nil {
		t.Fatal("tactics offered without a GPU")
	}
	// a plan with CUDA steps fails to load with the loader's reason
	low, err := lowerOp(layerOf(n, 17, []*ir.Tensor{x}, []bool{false}, []ir.DType{ir.Float32}, [][]int64{{2}}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeOp(low.Params, low.Weights); err != nil {
		t.Fatal("decoding needs no device for weight-less ops:", err)
	}
	w := ir.NewTensor(ir.Float32, []int64{4, 1, 3, 3})
	conv := &ir.Node{Name: "c", OpType: "Conv", Inputs: []string{"x", "w"}, Outputs: []string{"y"}}
	xc := ir.NewTensor(ir.Float32, []int64{1, 1, 5, 5})
	low, err = lowerGemm(layerOf(conv, 17, []*ir.Tensor{xc, w}, []bool{false, true}, []ir.DType{ir.Float32}, [][]int64{{1, 4, 3, 3}}), modeIm2col)
	if err != nil {
		t.Fatal(err)
	}
	// plans decode without a GPU (so the builder plans memory and kiln
	// inspects them anywhere); running says why not
	k, err := decodeGemm(low.Params, low.Weights)
	if err != nil {
		t.Fatal(err)
	}
	y := ir.NewTensor(ir.Float32, []int64{1, 4, 3, 3})
	if err := k.Run(newExec(), []*ir.Tensor{xc}, []*ir.Tensor{y}); !errors.Is(err, cuda.ErrNoDevice) {
		t.Fatalf("running without a GPU: %v", err)
	}
}

func TestLowerConvPacksPaddedWeights(t *testing.T) {
	w := ir.NewTensor(ir.Float32, []int64{3, 2, 3, 3})
	for i := range w.F32() {
		w.F32()[i] = float32(i + 1)
	}
	b := ir.FromFloat32s([]int64{3}, []float32{1, 2, 3})
	x := ir.NewTensor(ir.Float32, []int64{1, 2, 8, 8})
	n := &ir.Node{Name: "c", OpType: "Conv", Domain: kiln.Domain, Inputs: []string{"x", "w", "b"}, Outputs: []string{"y"},
		Attrs: []*ir.Attribute{ints("pads", 1, 1, 1, 1), ints("strides", 2, 2), str("activation", "Relu")}}
	low, err := lowerGemm(layerOf(n, 1, []*ir.Tensor{x, w, b}, []bool{false, true, true}, []ir.DType{ir.Float32}, [][]int64{{1, 3, 4, 4}}), modeIm2col)
	if err != nil {
		t.Fatal(err)
	}
	var p gemmParams
	if err := json.Unmarshal(low.Params, &p); err != nil {
		t.Fatal(err)
	}
	if p.N != 3 || p.K != 18 || p.Np != 16 || p.Kp != 32 || p.SH != 2 || p.PH != 1 || p.Act != 1 || !p.HasBias || p.HasScale {
		t.Fatalf("params %+v", p)
	}
	if len(low.Inputs) != 1 || low.Inputs[0] != 0 {
		t.Errorf("runtime inputs %v", low.Inputs)
	}
	pw := low.Weights[0]
	if pw.Dims[0] != 16 || pw.Dims[1] != 32 {
		t.Fatalf("packed dims %v", pw.Dims)
	}
	for r := 0; r < 16; r++ {
		for c := 0; c < 32; c++ {
			want := float32(0)
			if r < 3 && c < 18 {
				want = float32(r*18 + c + 1)
			}
			if got := pw.F32()[r*32+c]; got != want {
				t.Fatalf("packed[%d][%d] = %v, want %v", r, c, got, want)
			}
		}
	}
	sh, err := p.Shape.decode()
	if err != nil {
		t.Fatal(err)
	}
	dims, err := sh.Shapes([]*ir.Tensor{{DType: ir.Float32, Dims: []int64{5, 2, 8, 8}}})
	if err != nil || len(dims) != 1 || len(dims[0]) != 4 || dims[0][0] != 5 || dims[0][1] != 3 || dims[0][2] != 4 {
		t.Fatalf("shapes %v %v", dims, err)
	}
}

func TestLowerGemmTransposesAndScales(t *testing.T) {
	// Gemm with transB=0: B is [K,N] and must be packed as [N,K].
	bw := ir.NewTensor(ir.Int8, []int64{2, 3})
	for i := range bw.Data {
		bw.Data[i] = byte(i + 1)
	}
	x := ir.NewTensor(ir.Int8, []int64{4, 2})
	c := ir.FromFloat32s([]int64{1, 3}, []float32{0.5, 0.25, 0.125})
	n := &ir.Node{Name: "g", OpType: "QGemm", Domain: kiln.Domain, Inputs: []string{"x", "w", "c"}, Outputs: []string{"y"},
		Attrs: []*ir.Attribute{floatA("x_scale", 0.5), floats("w_scales", 1, 2, 4), floatA("y_scale", 0.1)}}
	low, err := lowerGemm(layerOf(n, 1, []*ir.Tensor{x, bw, c}, []bool{false, true, true}, []ir.DType{ir.Int8}, [][]int64{{4, 3}}), modeIm2col)
	if err != nil {
		t.Fatal(err)
	}
	pw := low.Weights[0]
	// row r of the packed weights is column r of B
	for r := 0; r < 3; r++ {
		for k := 0; k < 2; k++ {
			if got, want := int8(pw.Data[r*16+k]), int8(bw.Data[k*3+r]); got != want {
				t.Fatalf("packed[%d][%d] = %d, want %d", r, k, got, want)
			}
		}
	}
	if got := low.Weights[1].F32(); got[0] != 0.5 || got[2] != 0.125 {
		t.Errorf("bias %v", got)
	}
	if got := low.Weights[2].F32(); got[0] != 0.5 || got[1] != 1 || got[2] != 2 {
		t.Errorf("scales %v", got)
	}
	// zero points (uint8) and grouped convolutions are not offered
	n.Attrs = append(n.Attrs, intA("transA", 1))
	if _, err := lowerGemm(layerOf(n, 1, []*ir.Tensor{x, bw, c}, []bool{false, true, true}, []ir.DType{ir.Int8}, [][]int64{{4, 3}}), modeIm2col); err == nil {
		t.Error("transA accepted")
	}
	w := ir.NewTensor(ir.Float32, []int64{4, 1, 3, 3})
	xc := ir.NewTensor(ir.Float32, []int64{1, 4, 5, 5})
	gc := &ir.Node{Name: "dw", OpType: "Conv", Inputs: []string{"x", "w"}, Outputs: []string{"y"}, Attrs: []*ir.Attribute{intA("group", 4)}}
	if _, err := lowerGemm(layerOf(gc, 17, []*ir.Tensor{xc, w}, []bool{false, true}, []ir.DType{ir.Float32}, [][]int64{{1, 4, 3, 3}}), modeIm2col); err == nil {
		t.Error("grouped conv accepted")
	}
}

func TestLowerOps(t *testing.T) {
	x := ir.NewTensor(ir.Float32, []int64{2, 3, 4, 4})
	for _, c := range []struct {
		node *ir.Node
		in   []*ir.Tensor
		cst  []bool
		out  ir.DType
		kind string // "" = must be refused
	}{
		{&ir.Node{OpType: "Relu"}, []*ir.Tensor{x}, []bool{false}, ir.Float32, "act"},
		{&ir.Node{OpType: "Add"}, []*ir.Tensor{x, ir.NewTensor(ir.Float32, []int64{3, 1, 1})}, []bool{false, true}, ir.Float32, "binary"},
		{&ir.Node{OpType: "MaxPool", Attrs: []*ir.Attribute{ints("kernel_shape", 2, 2), ints("strides", 2, 2)}}, []*ir.Tensor{x}, []bool{false}, ir.Float32, "maxpool"},
		{&ir.Node{OpType: "Softmax"}, []*ir.Tensor{x}, []bool{false}, ir.Float32, "softmax"},
		{&ir.Node{OpType: "Softmax", Attrs: []*ir.Attribute{intA("axis", 1)}}, []*ir.Tensor{x}, []bool{false}, ir.Float32, ""},
		{&ir.Node{OpType: "QuantizeLinear"}, []*ir.Tensor{x, ir.ScalarFloat32(0.1), ir.NewTensor(ir.Int8, nil)}, []bool{false, true, true}, ir.Int8, "quant"},
		{&ir.Node{OpType: "Cast"}, []*ir.Tensor{x}, []bool{false}, ir.Float16, "cast"},
		{&ir.Node{OpType: "Cast"}, []*ir.Tensor{x}, []bool{false}, ir.Int64, ""},
		{&ir.Node{OpType: "Sqrt"}, []*ir.Tensor{x}, []bool{false}, ir.Float32, ""},
		{&ir.Node{OpType: "Add"}, []*ir.Tensor{ir.NewTensor(ir.Float16, x.Dims), ir.NewTensor(ir.Float16, x.Dims)}, []bool{false, false}, ir.Float16, "binary"},
		{&ir.Node{OpType: "Add"}, []*ir.Tensor{ir.NewTensor(ir.Float16, x.Dims), x}, []bool{false, false}, ir.Float16, ""},
		{&ir.Node{OpType: "Add"}, []*ir.Tensor{ir.NewTensor(ir.Int64, x.Dims), ir.NewTensor(ir.Int64, x.Dims)}, []bool{false, false}, ir.Int64, ""},
		{&ir.Node{OpType: "Transpose"}, []*ir.Tensor{x}, []bool{false}, ir.Float32, "transpose"},
		{&ir.Node{OpType: "Transpose", Attrs: []*ir.Attribute{ints("perm", 0, 2, 3, 1)}}, []*ir.Tensor{x}, []bool{false}, ir.Float32, "transpose"},
		{&ir.Node{OpType: "Transpose", Attrs: []*ir.Attribute{ints("perm", 0, 2, 2, 1)}}, []*ir.Tensor{x}, []bool{false}, ir.Float32, ""},
		{&ir.Node{OpType: "Concat", Attrs: []*ir.Attribute{intA("axis", -3)}}, []*ir.Tensor{x, x}, []bool{false, false}, ir.Float32, "concat"},
		{&ir.Node{OpType: "Concat", Attrs: []*ir.Attribute{intA("axis", 1)}}, []*ir.Tensor{x, x}, []bool{false, true}, ir.Float32, ""},
		{&ir.Node{OpType: "Concat", Attrs: []*ir.Attribute{intA("axis", 4)}}, []*ir.Tensor{x, x}, []bool{false, false}, ir.Float32, ""},
	} {
		n := c.node
		n.Name, n.Outputs = n.OpType, []string{"y"}
		for i := range c.in {
			n.Inputs = append(n.Inputs, string(rune('a'+i)))
		}
		low, err := lowerOp(layerOf(n, 17, c.in, c.cst, []ir.DType{c.out}, [][]int64{x.Dims}))
		if c.kind == "" {
			if err == nil {
				t.Errorf("%s accepted", n.OpType)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", n.OpType, err)
			continue
		}
		var p opParams
		json.Unmarshal(low.Params, &p)
		if p.Kind != c.kind {
			t.Errorf("%s: kind %s", n.OpType, p.Kind)
		}
		if p.Kind == "concat" && (p.Axis != 1 || len(low.Inputs) != 2) {
			t.Errorf("Concat axis -3 of rank 4: axis %d, run-time inputs %v", p.Axis, low.Inputs)
		}
	}
}

// Before opset 13 Softmax takes its input as 2D at axis, so any axis runs
// on the GPU (rows of everything from the axis on); from 13 only the last.
func TestLowerSoftmaxAxis(t *testing.T) {
	x := ir.NewTensor(ir.Float32, []int64{2, 1000, 1, 1})
	for _, c := range []struct {
		opset, axis int64
		want        int // normalized axis; -1: refused
	}{{11, 1, 1}, {11, -3, 1}, {12, 3, 3}, {13, 1, -1}, {13, -1, 3}, {11, 4, -1}} {
		n := &ir.Node{Name: "sm", OpType: "Softmax", Inputs: []string{"a"}, Outputs: []string{"y"}, Attrs: []*ir.Attribute{intA("axis", c.axis)}}
		low, err := lowerOp(layerOf(n, c.opset, []*ir.Tensor{x}, []bool{false}, []ir.DType{ir.Float32}, [][]int64{x.Dims}))
		if c.want < 0 {
			if err == nil {
				t.Errorf("opset %d axis %d accepted", c.opset, c.axis)
			}
			continue
		}
		if err != nil {
			t.Errorf("opset %d axis %d: %v", c.opset, c.axis, err)
			continue
		}
		var p opParams
		json.Unmarshal(low.Params, &p)
		if p.Kind != "softmax" || p.Axis != c.want {
			t.Errorf("opset %d axis %d: kind %s axis %d, want softmax %d", c.opset, c.axis, p.Kind, p.Axis, c.want)
		}
	}
}

// transposeArgs, walked as transpose_b* walks it, sends every output
// element to the input element the permutation names.
func TestTransposeArgs(t *testing.T) {
	for _, c := range []struct {
		dims []int64
		perm []int
	}{{[]int64{2, 3, 4}, []int{2, 0, 1}}, {[]int64{1, 2, 58, 7, 5}, []int{0, 2, 1, 3, 4}}, {[]int64{5}, []int{0}}, {[]int64{2, 1, 3, 2, 2, 3}, []int{5, 4, 3, 2, 1, 0}}} {
		d, s, err := transposeArgs(c.dims, c.perm)
		if err != nil {
			t.Fatal(err)
		}
		r := len(c.dims)
		in := make([]int64, r) // input strides
		st := int64(1)
		for i := r - 1; i >= 0; i-- {
			in[i], st = st, st*c.dims[i]
		}
		n := st
		coord := make([]int64, r) // output coordinates, last fastest
		for i := int64(0); i < n; i++ {
			rem, got := i, int64(0)
			for k := 5; k >= 0; k-- { // the kernel's loop
				q := rem % d[k]
				rem /= d[k]
				got += q * s[k]
			}
			want := int64(0)
			for k := 0; k < r; k++ {
				want += coord[k] * in[c.perm[k]]
			}
			if got != want {
				t.Fatalf("%v by %v: output %d reads %d, want %d", c.dims, c.perm, i, got, want)
			}
			for k := r - 1; k >= 0; k-- { // next output coordinate
				if coord[k]++; coord[k] < c.dims[c.perm[k]] {
					break
				}
				coord[k] = 0
			}
		}
	}
	for _, bad := range [][]int{{0}, {0, 0}, {0, 2}, {-1, 0}} {
		if _, _, err := transposeArgs([]int64{2, 3}, bad); err == nil {
			t.Errorf("perm %v of rank 2 accepted", bad)
		}
	}
}

// kiln.LayerNorm (the transformer pass's fused LayerNormalization) lowers to
// the same layernorm kernel as the ONNX op, with its epsilon and constants.
func TestLowerKilnLayerNorm(t *testing.T) {
	x := ir.NewTensor(ir.Float32, []int64{2, 128, 256})
	g, b := ir.NewTensor(ir.Float32, []int64{256}), ir.NewTensor(ir.Float32, []int64{256})
	n := &ir.Node{Name: "ln", OpType: "LayerNorm", Domain: kiln.Domain, Inputs: []string{"a", "b", "c"}, Outputs: []string{"y"},
		Attrs: []*ir.Attribute{intA("axis", -1), floatA("epsilon", 1e-12)}}
	l := layerOf(n, 1, []*ir.Tensor{x, g, b}, []bool{false, true, true}, []ir.DType{ir.Float32}, [][]int64{x.Dims})
	offerWithoutDevice = true
	tacs := (Backend{}).Tactics(l)
	offerWithoutDevice = false
	if len(tacs) != 1 {
		t.Fatalf("%d tactics offered for kiln.LayerNorm", len(tacs))
	}
	low, err := tacs[0].Lower(l)
	if err != nil {
		t.Fatal(err)
	}
	var p opParams
	json.Unmarshal(low.Params, &p)
	if p.Kind != "layernorm" || p.Eps != 1e-12 || !p.HasG || !p.HasB2 || len(low.Weights) != 2 {
		t.Errorf("lowered as %+v with %d weights", p, len(low.Weights))
	}
}

func TestBroadcast6(t *testing.T) {
	d, sa, sb, err := broadcast6([]int64{2, 3, 4}, []int64{2, 3, 4}, []int64{3, 1})
	if err != nil {
		t.Fatal(err)
	}
	if d != [6]int64{1, 1, 1, 2, 3, 4} || sa != [6]int64{0, 0, 0, 12, 4, 1} || sb != [6]int64{0, 0, 0, 0, 1, 0} {
		t.Fatalf("%v %v %v", d, sa, sb)
	}
	if _, _, _, err := broadcast6([]int64{2, 3}, []int64{2, 3}, []int64{4}); err == nil {
		t.Error("bad broadcast accepted")
	}
	if _, _, _, err := broadcast6(make([]int64, 7), nil, nil); err == nil {
		t.Error("rank 7 accepted")
	}
}
