package cudabackend

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/floatx"
	"github.com/kilnml/kiln/gpu/cuda"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
	"github.com/kilnml/kiln/ops/kiln"
)

// needGPU enables the backend, or skips with the loader's reason where
// there is no CUDA device (CI). Any other error (kiln.cu not compiling on
// the device) fails the test: it used to skip, which hid a compile error
// behind a passing run.
// everyE4M3 is a tensor of E4M3 codes cycling through every non-NaN code
// (both zeros included) in a shuffled order.
func everyE4M3(r *rand.Rand, dims ...int64) *ir.Tensor {
	t := ir.NewTensor(ir.Float8E4M3FN, dims)
	codes := make([]byte, 0, 254)
	for c := 0; c < 256; c++ {
		if c&0x7f != 0x7f {
			codes = append(codes, byte(c))
		}
	}
	for i := range t.Data {
		if i%len(codes) == 0 {
			r.Shuffle(len(codes), func(a, b int) { codes[a], codes[b] = codes[b], codes[a] })
		}
		t.Data[i] = codes[i%len(codes)]
	}
	return t
}

func needGPU(t *testing.T) {
	t.Helper()
	if err := Enable(); err != nil {
		if errors.Is(err, cuda.ErrNoDevice) {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	t.Cleanup(Disable)
}

func newExec() *engine.Exec {
	return &engine.Exec{Threads: 1, Scratch: func(n int) []byte { return make([]byte, n) }}
}

// randTensor fills a tensor with random values of its type (codes for
// int8/fp8, values in [-2, 2) for floats).
func randTensor(r *rand.Rand, dt ir.DType, dims []int64) *ir.Tensor {
	t := ir.NewTensor(dt, dims)
	for i := int64(0); i < t.Len(); i++ {
		switch dt {
		case ir.Int8, ir.Uint8:
			t.Data[i] = byte(r.IntN(256))
		case ir.Float8E4M3FN:
			t.Data[i] = floatx.F32ToF8(r.Float32()*4-2, floatx.E4M3FN, true)
		default:
			t.SetFloat64At(i, r.Float64()*4-2)
		}
	}
	return t
}

type kcase struct {
	name   string
	node   *ir.Node
	opset  int64
	in     []*ir.Tensor
	cst    []bool
	bound  float64 // normalized MSE; 0 means bit-exact
	notRan bool    // expected to be refused by the backend
	// nhwc: input 0 is on the device channels-last, as an NHWC producer
	// step leaves it (stageNHWCInput), for the kernels that read that
	// layout (pooling); otherwise every input comes from the host, NCHW
	nhwc bool
}

// runCase runs a layer through the reference op and through the CUDA
// kernel and compares every output.
func runCase(t *testing.T, c kcase) {
	n := c.node
	n.Name = c.name
	n.Inputs, n.Outputs = nil, []string{"y"}
	for i, x := range c.in {
		if x == nil {
			n.Inputs = append(n.Inputs, "")
		} else {
			n.Inputs = append(n.Inputs, string(rune('a'+i)))
		}
	}
	op, err := ops.Lookup(n.Domain, n.OpType, c.opset)
	if err != nil {
		t.Fatal(err)
	}
	rc := ops.NewCtx(n, c.opset)
	want, err := op.Run(rc, c.in)
	if err == nil {
		err = rc.Err()
	}
	if err != nil {
		t.Fatalf("reference: %v", err)
	}
	l := layerOf(n, c.opset, c.in, c.cst, []ir.DType{want[0].DType}, [][]int64{want[0].Dims})
	tacs := (Backend{}).Tactics(l)
	if len(tacs) == 0 {
		t.Fatal("no CUDA tactic")
	}
	// with the channels-last tactic offered alone, also run the NCHW ones
	if NHWC() {
		SetNHWC(false)
		for _, tac := range (Backend{}).Tactics(l) {
			if !slices.ContainsFunc(tacs, func(u engine.Tactic) bool { return u.Name() == tac.Name() }) {
				tacs = append(tacs, tac)
			}
		}
		SetNHWC(true)
	}
	ran := 0
	for _, tac := range tacs {
		low, err := tac.Lower(l)
		if err != nil {
			t.Logf("%s: tactic %s does not lower: %v", c.name, tac.Name(), err)
			continue
		}
		ran++
		checkLowered(t, c.name+" ["+tac.Name()+"]", low, c.in, want[0], c.bound, strings.HasSuffix(tac.Name(), fastTacticSuffix), c.nhwc)
	}
	if ran == 0 {
		t.Fatal("no CUDA tactic lowers")
	}
}

// checkLowered runs one lowered step on poisoned outputs and compares it
// with the reference output. fast: the step has the fast epilogue
// (fastepi.go), whose integer codes where bit-exactness is expected (bound
// 0) may be one apart from the reference's, in at most fastCodeFraction of
// them (and 2). nhwcIn: the step's input 0 is staged on the device
// channels-last first (stageNHWCInput).
func checkLowered(t *testing.T, name string, low *engine.Lowered, all []*ir.Tensor, want *ir.Tensor, bound float64, fast, nhwcIn bool) {
	t.Helper()
	dec, err := engine.LookupKernel(low.Kernel)
	if err != nil {
		t.Fatal(err)
	}
	k, err := dec(low.Params, low.Weights)
	if err != nil {
		t.Fatalf("%s: decode: %v", name, err)
	}
	var rin []*ir.Tensor
	for _, i := range low.Inputs {
		rin = append(rin, all[i])
	}
	shapeIn := make([]*ir.Tensor, len(rin))
	for i, x := range rin {
		shapeIn[i] = &ir.Tensor{DType: x.DType, Dims: x.Dims}
	}
	dims, err := k.Shapes(shapeIn)
	if err != nil {
		t.Fatalf("%s: shapes: %v", name, err)
	}
	got := ir.NewTensor(want.DType, dims[0])
	for i := range got.Data {
		got.Data[i] = 0xA5 // poison: every element must be written
	}
	x := newExec()
	if nhwcIn {
		stageNHWCInput(t, x, k, rin)
	}
	if err := k.Run(x, rin, []*ir.Tensor{got}); err != nil {
		t.Fatalf("%s: run: %v", name, err)
	}
	if got.Len() != want.Len() {
		t.Fatalf("%s: dims %v, want %v", name, got.Dims, want.Dims)
	}
	var num, den float64
	diff := 0
	for i := int64(0); i < got.Len(); i++ {
		g, w := got.Float64At(i), want.Float64At(i)
		if math.IsNaN(g) != math.IsNaN(w) {
			t.Fatalf("%s: element %d: %v, want %v", name, i, g, w)
		}
		if g != w {
			diff++
			if fast && bound == 0 && math.Abs(g-w) > 1 {
				t.Fatalf("%s: element %d: %v, want %v (the fast epilogue's codes are at most one apart)", name, i, g, w)
			}
		}
		num += (g - w) * (g - w)
		den += w * w
	}
	nmse := num / max(den, 1e-30)
	t.Logf("%s: %d elements, %d differ, normalized MSE %.3g", name, got.Len(), diff, nmse)
	if fast && bound == 0 {
		if float64(diff) > max(2, fastCodeFraction*float64(got.Len())) {
			t.Errorf("%s: %d of %d codes one apart from the reference (fast epilogue: at most %g of them)", name, diff, got.Len(), fastCodeFraction)
		}
	} else if bound == 0 && diff > 0 {
		t.Errorf("%s: %d of %d elements differ from the reference (bit-exact expected)", name, diff, got.Len())
	}
	if nmse > bound && bound > 0 {
		t.Errorf("%s: normalized MSE %.3g > %g", name, nmse, bound)
	}
}

// stageNHWCInput puts the 4D in[0] on x's context as a channels-last
// producer step would leave it: its device copy written NHWC and marked so
// (setNHWC). k is then linked to read input 0 from there, its outputs
// going to the host.
func stageNHWCInput(t *testing.T, x *engine.Exec, k engine.Kernel, in []*ir.Tensor) {
	t.Helper()
	X := in[0]
	if X.Rank() != 4 || !layoutMatters(X.Dims) {
		t.Fatalf("NHWC input %v: the layouts do not differ", X.Dims)
	}
	nb, c, hw, esz := X.Dims[0], X.Dims[1], X.Dims[2]*X.Dims[3], X.DType.ByteSize(1)
	b := make([]byte, len(X.Data))
	for n := range nb {
		for ci := range c {
			for p := range hw {
				copy(b[((n*hw+p)*c+ci)*esz:][:esz], X.Data[((n*c+ci)*hw+p)*esz:])
			}
		}
	}
	err := step(x, in[:1], nil, func(g *device, st *execState, mark func(int) error) (bool, error) {
		p, err := st.residentFor(g, X)
		if err != nil {
			return false, err
		}
		if err := st.s.HtoD(p, b); err != nil {
			return false, err
		}
		st.setNHWC(X, true)
		if err := mark(1); err != nil {
			return false, err
		}
		return true, mark(2) // wait for the copy
	})
	if err != nil {
		t.Fatalf("staging NHWC input: %v", err)
	}
	dk, ok := k.(engine.DeviceKernel)
	if !ok {
		t.Fatal("not a device kernel")
	}
	onDev := make([]bool, len(in))
	onDev[0] = true
	dk.Link(onDev, []bool{true})
}

// fp8MMABound is the normalized MSE allowed for FP8-MMA conv tactics with
// float32 output against the exact reference: cuBLASLt's FP8 GEMMs measured
// ~1e-8 at K = 272 on the H100 (docs/GPU.md).
const fp8MMABound = 1e-6

func TestKernelsMatchReference(t *testing.T) {
	needGPU(t)
	SetHaloTiles(true) // not offered to builds by default, tested here
	defer SetHaloTiles(os.Getenv("KILN_CUDA_HALO") == "1")
	// every tactic that lowers a case is run (im2col + cuBLASLt, implicit
	// GEMM for 16- and 8-bit inputs, direct for K ≤ 32 and groups)
	r := rand.New(rand.NewPCG(1, 2))
	f32 := func(d ...int64) *ir.Tensor { return randTensor(r, ir.Float32, d) }
	conv := func(dom, op string, attrs ...*ir.Attribute) *ir.Node {
		return &ir.Node{OpType: op, Domain: dom, Attrs: attrs}
	}
	q := func(dt ir.DType, d ...int64) *ir.Tensor { return randTensor(r, dt, d) }
	wsc := make([]float32, 24)
	for i := range wsc {
		wsc[i] = 0.002 + 0.001*float32(i)
	}
	wscN := func(n int) []float32 { // n per-channel weight scales
		v := make([]float32, n)
		for i := range v {
			v[i] = 0.002 + 0.0003*float32(i%37)
		}
		return v
	}
	qattrs := func(ys float32, act string) []*ir.Attribute {
		a := []*ir.Attribute{floatA("x_scale", 0.05), floats("w_scales", wsc...), floatA("y_scale", ys), ints("pads", 1, 1, 1, 1)}
		if act != "" {
			a = append(a, str("activation", act))
		}
		return a
	}
	cases := []kcase{
		{name: "conv f32 3x3 pad1", node: conv("", "Conv", ints("pads", 1, 1, 1, 1)), opset: 17, in: []*ir.Tensor{f32(3, 5, 13, 11), f32(24, 5, 3, 3), f32(24)}, cst: []bool{false, true, true}, bound: 1e-10},
		{name: "conv f32 stride2 dil2 asym", node: conv("", "Conv", ints("pads", 0, 1, 2, 0), ints("strides", 2, 2), ints("dilations", 2, 1)), opset: 17, in: []*ir.Tensor{f32(2, 3, 17, 15), f32(7, 3, 3, 2)}, cst: []bool{false, true}, bound: 1e-10},
		{name: "kiln.Conv relu+residual", node: conv(kiln.Domain, "Conv", ints("pads", 1, 1, 1, 1), str("activation", "Relu")), opset: 1, in: []*ir.Tensor{f32(2, 8, 9, 9), f32(8, 8, 3, 3), f32(8), f32(2, 8, 9, 9)}, cst: []bool{false, true, true, false}, bound: 1e-10},
		{name: "kiln.Conv gelu", node: conv(kiln.Domain, "Conv", str("activation", "Gelu")), opset: 1, in: []*ir.Tensor{f32(1, 4, 6, 6), f32(6, 4, 1, 1), f32(6)}, cst: []bool{false, true, true}, bound: 1e-10},
		{name: "conv f16", node: conv("", "Conv", ints("pads", 1, 1, 1, 1)), opset: 17, in: []*ir.Tensor{q(ir.Float16, 2, 8, 10, 10), q(ir.Float16, 16, 8, 3, 3), q(ir.Float16, 16)}, cst: []bool{false, true, true}, bound: 1e-5},
		{name: "gemm f32 transB", node: conv("", "Gemm", intA("transB", 1)), opset: 13, in: []*ir.Tensor{f32(37, 50), f32(20, 50), f32(20)}, cst: []bool{false, true, true}, bound: 1e-10},
		{name: "gemm f32 C row", node: conv("", "Gemm"), opset: 13, in: []*ir.Tensor{f32(33, 64), f32(64, 10), f32(1, 10)}, cst: []bool{false, true, true}, bound: 1e-10},
		{name: "matmul f32 3D", node: conv("", "MatMul"), opset: 13, in: []*ir.Tensor{f32(2, 7, 48), f32(48, 40)}, cst: []bool{false, true}, bound: 1e-10},
		{name: "matmul bf16", node: conv("", "MatMul"), opset: 13, in: []*ir.Tensor{q(ir.BFloat16, 64, 96), q(ir.BFloat16, 96, 32)}, cst: []bool{false, true}, bound: 1e-4},
		{name: "QConv int8 → int8 relu", node: conv(kiln.Domain, "QConv", qattrs(0.02, "Relu")...), opset: 1, in: []*ir.Tensor{q(ir.Int8, 2, 5, 9, 9), q(ir.Int8, 24, 5, 3, 3), f32(24)}, cst: []bool{false, true, true}},
		// GELU in the quantized epilogue: kilnq's float32 GELU (kiln.Gelu32), bit for bit.
		{name: "QConv int8 → int8 gelu", node: conv(kiln.Domain, "QConv", qattrs(0.02, "Gelu")...), opset: 1, in: []*ir.Tensor{q(ir.Int8, 2, 5, 9, 9), q(ir.Int8, 24, 5, 3, 3), f32(24)}, cst: []bool{false, true, true}},
		{name: "QConv int8 → f32 gelu", node: conv(kiln.Domain, "QConv", qattrs(0, "Gelu")...), opset: 1, in: []*ir.Tensor{q(ir.Int8, 2, 5, 9, 9), q(ir.Int8, 24, 5, 3, 3), f32(24)}, cst: []bool{false, true, true}},
		{name: "QConv int8 → f32 residual", node: conv(kiln.Domain, "QConv", qattrs(0, "")...), opset: 1, in: []*ir.Tensor{q(ir.Int8, 2, 5, 9, 9), q(ir.Int8, 24, 5, 3, 3), f32(24), f32(2, 24, 9, 9)}, cst: []bool{false, true, true, false}},
		{name: "QConv fp8 → fp8", node: conv(kiln.Domain, "QConv", qattrs(0.02, "")...), opset: 1, in: []*ir.Tensor{q(ir.Float8E4M3FN, 2, 5, 9, 9), q(ir.Float8E4M3FN, 24, 5, 3, 3), f32(24)}, cst: []bool{false, true, true}, bound: 2e-3},
		{name: "QConv fp8 → f32", node: conv(kiln.Domain, "QConv", qattrs(0, "")...), opset: 1, in: []*ir.Tensor{q(ir.Float8E4M3FN, 2, 5, 9, 9), q(ir.Float8E4M3FN, 24, 5, 3, 3), f32(24)}, cst: []bool{false, true, true}, bound: 1e-6},
		{name: "QConv int8 zero points → int8", node: conv(kiln.Domain, "QConv", append(qattrs(0.02, ""), intA("x_zero", -7), intA("y_zero", 5))...), opset: 1, in: []*ir.Tensor{q(ir.Int8, 2, 5, 9, 9), q(ir.Int8, 24, 5, 3, 3), f32(24)}, cst: []bool{false, true, true}},
		{name: "QConv uint8 zero points → uint8 relu", node: conv(kiln.Domain, "QConv", append(qattrs(0.02, "Relu"), intA("x_zero", 131), intA("y_zero", 3))...), opset: 1, in: []*ir.Tensor{q(ir.Uint8, 2, 5, 9, 9), q(ir.Int8, 24, 5, 3, 3), f32(24)}, cst: []bool{false, true, true}},
		{name: "conv SAME_UPPER stride2", node: conv("", "Conv", str("auto_pad", "SAME_UPPER"), ints("strides", 2, 2)), opset: 17, in: []*ir.Tensor{f32(2, 3, 10, 9), f32(4, 3, 5, 5)}, cst: []bool{false, true}, bound: 1e-10},
		{name: "maxpool SAME_UPPER", node: conv("", "MaxPool", ints("kernel_shape", 3, 3), ints("strides", 3, 3), str("auto_pad", "SAME_UPPER")), opset: 12, in: []*ir.Tensor{f32(1, 4, 14, 14)}, cst: []bool{false}},
		{name: "maxpool f16", node: conv("", "MaxPool", ints("kernel_shape", 2, 2), ints("strides", 2, 2)), opset: 12, in: []*ir.Tensor{q(ir.Float16, 2, 3, 10, 10)}, cst: []bool{false}},
		{name: "maxpool uint8", node: conv("", "MaxPool", ints("kernel_shape", 2, 2), ints("strides", 2, 2)), opset: 12, in: []*ir.Tensor{q(ir.Uint8, 2, 3, 10, 10)}, cst: []bool{false}},
		{name: "quantize uint8 zero point", node: conv("", "QuantizeLinear"), opset: 19, in: []*ir.Tensor{f32(400), ir.ScalarFloat32(0.02), ir.FromInt64s(ir.Uint8, nil, []int64{128})}, cst: []bool{false, true, true}, bound: 1e-6},
		{name: "dequantize uint8 zero point", node: conv("", "DequantizeLinear"), opset: 19, in: []*ir.Tensor{q(ir.Uint8, 400), ir.ScalarFloat32(0.02), ir.FromInt64s(ir.Uint8, nil, []int64{100})}, cst: []bool{false, true, true}},
		// implicit GEMM tiles: M, N and K not multiples of the 128×64×(32|64) tile, several tiles each
		{name: "conv f16 tiles 3x3", node: conv("", "Conv", ints("pads", 1, 1, 1, 1)), opset: 17, in: []*ir.Tensor{q(ir.Float16, 3, 40, 17, 19), q(ir.Float16, 80, 40, 3, 3), q(ir.Float16, 80)}, cst: []bool{false, true, true}, bound: 1e-5},
		{name: "conv bf16 1x1 stride2", node: conv("", "Conv", ints("strides", 2, 2)), opset: 17, in: []*ir.Tensor{q(ir.BFloat16, 2, 72, 15, 15), q(ir.BFloat16, 136, 72, 1, 1)}, cst: []bool{false, true}, bound: 1e-4},
		{name: "kiln.Conv f16 relu + f16 residual", node: conv(kiln.Domain, "Conv", ints("pads", 1, 1, 1, 1), str("activation", "Relu")), opset: 1, in: []*ir.Tensor{q(ir.Float16, 2, 24, 14, 14), q(ir.Float16, 70, 24, 3, 3), q(ir.Float16, 70), q(ir.Float16, 2, 70, 14, 14)}, cst: []bool{false, true, true, false}, bound: 1e-5},
		{name: "kiln.Conv f16 1x1 bias relu (8-pixel vectors)", node: conv(kiln.Domain, "Conv", str("activation", "Relu")), opset: 1, in: []*ir.Tensor{q(ir.Float16, 2, 24, 16, 16), q(ir.Float16, 40, 24, 1, 1), q(ir.Float16, 40)}, cst: []bool{false, true, true}, bound: 1e-5},
		{name: "kiln.Conv bf16 3x3 bias clip", node: conv(kiln.Domain, "Conv", ints("pads", 1, 1, 1, 1), str("activation", "Clip"), floatA("act_alpha", 0), floatA("act_beta", 6)), opset: 1, in: []*ir.Tensor{q(ir.BFloat16, 2, 8, 8, 8), q(ir.BFloat16, 24, 8, 3, 3), q(ir.BFloat16, 24)}, cst: []bool{false, true, true}, bound: 1e-4},
		{name: "grouped conv f16 group 4", node: conv("", "Conv", intA("group", 4), ints("pads", 1, 1, 1, 1)), opset: 17, in: []*ir.Tensor{q(ir.Float16, 2, 32, 11, 11), q(ir.Float16, 72, 8, 3, 3)}, cst: []bool{false, true}, bound: 1e-5},
		{name: "QConv int8 tiles → int8 relu", node: conv(kiln.Domain, "QConv", floatA("x_scale", 0.05), floats("w_scales", wsc[0]), floatA("y_scale", 0.3), ints("pads", 1, 1, 1, 1), str("activation", "Relu")), opset: 1, in: []*ir.Tensor{q(ir.Int8, 3, 40, 13, 17), q(ir.Int8, 100, 40, 3, 3), f32(100)}, cst: []bool{false, true, true}},
		{name: "QConv uint8 tiles zp → uint8", node: conv(kiln.Domain, "QConv", floatA("x_scale", 0.05), floats("w_scales", wsc[1]), floatA("y_scale", 0.3), intA("x_zero", 140), intA("y_zero", 9), ints("pads", 2, 2, 2, 2), ints("dilations", 2, 2)), opset: 1, in: []*ir.Tensor{q(ir.Uint8, 2, 36, 15, 15), q(ir.Int8, 70, 36, 3, 3), f32(70)}, cst: []bool{false, true, true}},
		{name: "QConv fp8 tiles → fp8", node: conv(kiln.Domain, "QConv", floatA("x_scale", 0.05), floats("w_scales", wsc[2]), floatA("y_scale", 0.5), ints("pads", 1, 1, 1, 1)), opset: 1, in: []*ir.Tensor{q(ir.Float8E4M3FN, 3, 40, 13, 17), q(ir.Float8E4M3FN, 100, 40, 3, 3), f32(100)}, cst: []bool{false, true, true}, bound: 2e-3},
		{name: "QConv fp8 tiles → f32 residual", node: conv(kiln.Domain, "QConv", floatA("x_scale", 0.05), floats("w_scales", wsc[2])), opset: 1, in: []*ir.Tensor{q(ir.Float8E4M3FN, 2, 48, 9, 9), q(ir.Float8E4M3FN, 66, 48, 1, 1), f32(66), f32(2, 66, 9, 9)}, cst: []bool{false, true, true, false}, bound: 1e-6},
		// channels-last implicit GEMM (implicit_nhwc): C a multiple of 8 (16-bit) or 16 (int8), N of 8;
		// partial tiles in M and N, K over several pipeline stages, residuals in both float types
		{name: "nhwc f16 1x1 relu + f16 residual", node: conv(kiln.Domain, "Conv", str("activation", "Relu")), opset: 1, in: []*ir.Tensor{q(ir.Float16, 2, 64, 9, 11), q(ir.Float16, 72, 64, 1, 1), q(ir.Float16, 72), q(ir.Float16, 2, 72, 9, 11)}, cst: []bool{false, true, true, false}, bound: 1e-5},
		{name: "nhwc f16 1x1 clip + f16 residual (cuBLASLt + activation pass)", node: conv(kiln.Domain, "Conv", str("activation", "Clip"), floatA("act_alpha", 0), floatA("act_beta", 1)), opset: 1, in: []*ir.Tensor{q(ir.Float16, 2, 32, 9, 8), q(ir.Float16, 48, 32, 1, 1), q(ir.Float16, 48), q(ir.Float16, 2, 48, 9, 8)}, cst: []bool{false, true, true, false}, bound: 1e-5},
		{name: "nhwc f16 3x3 K=576", node: conv("", "Conv", ints("pads", 1, 1, 1, 1)), opset: 17, in: []*ir.Tensor{q(ir.Float16, 2, 64, 10, 9), q(ir.Float16, 136, 64, 3, 3), q(ir.Float16, 136)}, cst: []bool{false, true, true}, bound: 1e-5},
		{name: "nhwc bf16 3x3 stride2 dil2 asym → f32 residual", node: conv(kiln.Domain, "Conv", ints("pads", 2, 1, 0, 2), ints("strides", 2, 2), ints("dilations", 2, 1)), opset: 1, in: []*ir.Tensor{q(ir.BFloat16, 3, 16, 13, 12), q(ir.BFloat16, 24, 16, 3, 2), q(ir.BFloat16, 24), f32(3, 24, 6, 7)}, cst: []bool{false, true, true, false}, bound: 1e-4},
		{name: "nhwc f16 1x1 stride2 K=8", node: conv("", "Conv", ints("strides", 2, 2)), opset: 17, in: []*ir.Tensor{q(ir.Float16, 2, 8, 15, 15), q(ir.Float16, 16, 8, 1, 1)}, cst: []bool{false, true}, bound: 1e-5},
		{name: "nhwc QConv int8 3x3 → int8 relu", node: conv(kiln.Domain, "QConv", floatA("x_scale", 0.05), floats("w_scales", wsc[:16]...), floatA("y_scale", 0.3), ints("pads", 1, 1, 1, 1), str("activation", "Relu")), opset: 1, in: []*ir.Tensor{q(ir.Int8, 3, 32, 13, 11), q(ir.Int8, 16, 32, 3, 3), f32(16)}, cst: []bool{false, true, true}},
		{name: "nhwc QConv int8 3x3 K=1152 → uint8 zp", node: conv(kiln.Domain, "QConv", floatA("x_scale", 0.05), floats("w_scales", wsc[3]), floatA("y_scale", 0.6), intA("y_zero", 9), ints("pads", 1, 1, 1, 1)), opset: 1, in: []*ir.Tensor{q(ir.Int8, 2, 128, 9, 9), q(ir.Int8, 72, 128, 3, 3), f32(72)}, cst: []bool{false, true, true}},
		{name: "nhwc QConv int8 1x1 stride2 → f32 residual", node: conv(kiln.Domain, "QConv", floatA("x_scale", 0.05), floats("w_scales", wsc[4]), ints("strides", 2, 2)), opset: 1, in: []*ir.Tensor{q(ir.Int8, 2, 48, 15, 17), q(ir.Int8, 136, 48, 1, 1), f32(136), f32(2, 136, 8, 9)}, cst: []bool{false, true, true, false}},
		{name: "nhwc QConv int8 C=24 (padded to 32) → int8", node: conv(kiln.Domain, "QConv", floatA("x_scale", 0.05), floats("w_scales", wsc[6]), floatA("y_scale", 0.4), ints("pads", 1, 1, 1, 1)), opset: 1, in: []*ir.Tensor{q(ir.Int8, 2, 24, 7, 9), q(ir.Int8, 16, 24, 3, 3), f32(16)}, cst: []bool{false, true, true}},
		{name: "nhwc QConv fp8 3x3 K=576 → fp8", node: conv(kiln.Domain, "QConv", floatA("x_scale", 0.05), floats("w_scales", wsc[:16]...), floatA("y_scale", 0.5), ints("pads", 1, 1, 1, 1)), opset: 1, in: []*ir.Tensor{q(ir.Float8E4M3FN, 2, 64, 9, 11), q(ir.Float8E4M3FN, 16, 64, 3, 3), f32(16)}, cst: []bool{false, true, true}, bound: 2e-3},
		{name: "nhwc QConv fp8 1x1 → f32 residual", node: conv(kiln.Domain, "QConv", floatA("x_scale", 0.05), floats("w_scales", wsc[2])), opset: 1, in: []*ir.Tensor{q(ir.Float8E4M3FN, 2, 48, 9, 9), q(ir.Float8E4M3FN, 72, 48, 1, 1), f32(72), f32(2, 72, 9, 9)}, cst: []bool{false, true, true, false}, bound: 1e-6},
		// kernel-width expansion (implicit_nhwc.*kw: kiln.cu kwexpand_*): first layers with few channels as a
		// KH×1 conv over KW·C channels; strides, dilation along the width, asymmetric pads, odd sizes
		{name: "nhwc QConv int8 7x7 stride2 C=3 → int8 relu", node: conv(kiln.Domain, "QConv", floatA("x_scale", 0.05), floats("w_scales", wsc[:16]...), floatA("y_scale", 0.3), ints("pads", 3, 3, 3, 3), ints("strides", 2, 2), str("activation", "Relu")), opset: 1, in: []*ir.Tensor{q(ir.Int8, 2, 3, 23, 21), q(ir.Int8, 16, 3, 7, 7), f32(16)}, cst: []bool{false, true, true}},
		{name: "nhwc conv f16 7x7 stride2 C=3", node: conv("", "Conv", ints("pads", 3, 3, 3, 3), ints("strides", 2, 2)), opset: 17, in: []*ir.Tensor{q(ir.Float16, 2, 3, 19, 22), q(ir.Float16, 24, 3, 7, 7), q(ir.Float16, 24)}, cst: []bool{false, true, true}, bound: 1e-5},
		{name: "nhwc QConv fp8 3x3 stride2 C=3 → fp8", node: conv(kiln.Domain, "QConv", floatA("x_scale", 0.05), floats("w_scales", wsc[:16]...), floatA("y_scale", 0.5), ints("pads", 1, 1, 1, 1), ints("strides", 2, 2)), opset: 1, in: []*ir.Tensor{q(ir.Float8E4M3FN, 2, 3, 17, 15), q(ir.Float8E4M3FN, 16, 3, 3, 3), f32(16)}, cst: []bool{false, true, true}, bound: 2e-3},
		{name: "nhwc QConv fp8 3x3 stride2 C=3 → fp8 clip (mobilenetv2's first layer)", node: conv(kiln.Domain, "QConv", floatA("x_scale", 0.05), floats("w_scales", wscN(32)...), floatA("y_scale", 0.05), ints("pads", 1, 1, 1, 1), ints("strides", 2, 2), str("activation", "Clip"), floatA("act_alpha", 0), floatA("act_beta", 6)), opset: 1, in: []*ir.Tensor{q(ir.Float8E4M3FN, 2, 3, 33, 31), q(ir.Float8E4M3FN, 32, 3, 3, 3), f32(32)}, cst: []bool{false, true, true}, bound: 2e-3},
		{name: "nhwc conv bf16 3x3 C=5 stride (1,2) dilation (1,2) asym pads", node: conv("", "Conv", ints("pads", 2, 1, 0, 2), ints("strides", 1, 2), ints("dilations", 1, 2)), opset: 17, in: []*ir.Tensor{q(ir.BFloat16, 3, 5, 11, 16), q(ir.BFloat16, 16, 5, 3, 3)}, cst: []bool{false, true}, bound: 1e-4},
		// quantized residuals (kilnq's z_scale/z_zero): 8-bit codes dequantized in the epilogue, bit-exact in
		// every tactic (im2col epilogue, NCHW implicit, NHWC implicit and its 3-block variant, direct)
		{name: "QConv int8 3x3 → int8 relu + int8 residual codes z_zero", node: conv(kiln.Domain, "QConv", floatA("x_scale", 0.05), floats("w_scales", wsc[:16]...), floatA("y_scale", 0.3), ints("pads", 1, 1, 1, 1), str("activation", "Relu"), floatA("z_scale", 0.07), intA("z_zero", -5)), opset: 1, in: []*ir.Tensor{q(ir.Int8, 3, 32, 13, 11), q(ir.Int8, 16, 32, 3, 3), f32(16), q(ir.Int8, 3, 16, 13, 11)}, cst: []bool{false, true, true, false}},
		{name: "QConv int8 1x1 K=256 → int8 + uint8 residual codes", node: conv(kiln.Domain, "QConv", floatA("x_scale", 0.05), floats("w_scales", wsc[5]), floatA("y_scale", 0.8), floatA("z_scale", 0.11), intA("z_zero", 131)), opset: 1, in: []*ir.Tensor{q(ir.Int8, 2, 256, 9, 11), q(ir.Int8, 136, 256, 1, 1), f32(136), q(ir.Uint8, 2, 136, 9, 11)}, cst: []bool{false, true, true, false}},
		{name: "QConv int8 1x1 stride2 → f32 + int8 residual codes", node: conv(kiln.Domain, "QConv", floatA("x_scale", 0.05), floats("w_scales", wsc[4]), ints("strides", 2, 2), floatA("z_scale", 0.03)), opset: 1, in: []*ir.Tensor{q(ir.Int8, 2, 48, 15, 17), q(ir.Int8, 72, 48, 1, 1), f32(72), q(ir.Int8, 2, 72, 8, 9)}, cst: []bool{false, true, true, false}},
		{name: "QConv fp8 1x1 → fp8 + E4M3 residual codes", node: conv(kiln.Domain, "QConv", floatA("x_scale", 0.05), floats("w_scales", wsc[2]), floatA("y_scale", 0.5), floatA("z_scale", 0.25)), opset: 1, in: []*ir.Tensor{q(ir.Float8E4M3FN, 2, 48, 9, 9), q(ir.Float8E4M3FN, 72, 48, 1, 1), f32(72), q(ir.Float8E4M3FN, 2, 72, 9, 9)}, cst: []bool{false, true, true, false}, bound: 2e-3},
		{name: "QConv fp8 3x3 → f32 + E5M2 residual codes", node: conv(kiln.Domain, "QConv", floatA("x_scale", 0.05), floats("w_scales", wsc[:16]...), ints("pads", 1, 1, 1, 1), floatA("z_scale", 0.5)), opset: 1, in: []*ir.Tensor{q(ir.Float8E4M3FN, 2, 32, 9, 11), q(ir.Float8E4M3FN, 16, 32, 3, 3), f32(16), q(ir.Float8E5M2, 2, 16, 9, 11)}, cst: []bool{false, true, true, false}, bound: 1e-6},
		{name: "direct QConv int8 → int8 + int8 residual codes", node: conv(kiln.Domain, "QConv", append(qattrs(0.02, "Relu"), floatA("z_scale", 0.02), intA("z_zero", 4))...), opset: 1, in: []*ir.Tensor{q(ir.Int8, 3, 2, 12, 12), q(ir.Int8, 24, 2, 3, 3), f32(24), q(ir.Int8, 3, 24, 12, 12)}, cst: []bool{false, true, true, false}},
		{name: "depthwise QConv int8 → int8 + int8 residual codes", node: conv(kiln.Domain, "QConv", floatA("x_scale", 0.05), floats("w_scales", wsc[:16]...), floatA("y_scale", 0.03), intA("group", 16), ints("pads", 1, 1, 1, 1), floatA("z_scale", 0.01), intA("z_zero", 2)), opset: 1, in: []*ir.Tensor{q(ir.Int8, 2, 16, 7, 7), q(ir.Int8, 16, 1, 3, 3), f32(16), q(ir.Int8, 2, 16, 7, 7)}, cst: []bool{false, true, true, false}},
		// more tiles than the persistent kernels' blocks (wgmmap.cu ignp_*: 2 or 3 per SM, 132 SMs on an H200), so
		// that each block loops over several tiles; pixel and channel tails in the last tiles
		{name: "nhwc QConv int8 1x1 768 tiles → int8 relu + int8 residual codes", node: conv(kiln.Domain, "QConv", floatA("x_scale", 0.05), floats("w_scales", wscN(136)...), floatA("y_scale", 0.3), str("activation", "Relu"), floatA("z_scale", 0.07), intA("z_zero", -5)), opset: 1, in: []*ir.Tensor{q(ir.Int8, 8, 32, 61, 67), q(ir.Int8, 136, 32, 1, 1), f32(136), q(ir.Int8, 8, 136, 61, 67)}, cst: []bool{false, true, true, false}},
		{name: "nhwc QConv int8 3x3 400 tiles → uint8 zp clip", node: conv(kiln.Domain, "QConv", floatA("x_scale", 0.05), floats("w_scales", wscN(80)...), floatA("y_scale", 0.2), intA("y_zero", 17), ints("pads", 1, 1, 1, 1), str("activation", "Clip"), floatA("act_alpha", -1), floatA("act_beta", 6)), opset: 1, in: []*ir.Tensor{q(ir.Int8, 8, 64, 49, 65), q(ir.Int8, 80, 64, 3, 3), f32(80)}, cst: []bool{false, true, true}},
		{name: "nhwc QConv int8 3x3 K=1152 N=256 → int8 relu (128-channel tiles)", node: conv(kiln.Domain, "QConv", floatA("x_scale", 0.05), floats("w_scales", wscN(256)...), floatA("y_scale", 0.9), ints("pads", 1, 1, 1, 1), str("activation", "Relu")), opset: 1, in: []*ir.Tensor{q(ir.Int8, 4, 128, 20, 21), q(ir.Int8, 256, 128, 3, 3), f32(256)}, cst: []bool{false, true, true}},
		{name: "nhwc QConv fp8 3x3 N=144 → fp8 relu + E4M3 residual codes (128-channel tiles, a partial one)", node: conv(kiln.Domain, "QConv", floatA("x_scale", 0.05), floats("w_scales", wscN(144)...), floatA("y_scale", 0.5), ints("pads", 1, 1, 1, 1), str("activation", "Relu"), floatA("z_scale", 0.25)), opset: 1, in: []*ir.Tensor{q(ir.Float8E4M3FN, 4, 64, 30, 33), q(ir.Float8E4M3FN, 144, 64, 3, 3), f32(144), q(ir.Float8E4M3FN, 4, 144, 30, 33)}, cst: []bool{false, true, true, false}, bound: 2e-3},
		// without a residual (ignr_*: 3 stages, each tile's codes staged in the stage its last step read):
		// one and two reduction steps per tile, so that the staging stage takes every position of the ring
		{name: "nhwc QConv int8 3x3 512 tiles N=136 → uint8 zp relu, no residual", node: conv(kiln.Domain, "QConv", floatA("x_scale", 0.05), floats("w_scales", wscN(136)...), floatA("y_scale", 0.15), intA("y_zero", 3), ints("pads", 1, 1, 1, 1), str("activation", "Relu")), opset: 1, in: []*ir.Tensor{q(ir.Int8, 8, 16, 61, 67), q(ir.Int8, 136, 16, 3, 3), f32(136)}, cst: []bool{false, true, true}},
		{name: "nhwc QConv fp8 1x1 512 tiles N=136 → fp8, no residual", node: conv(kiln.Domain, "QConv", floatA("x_scale", 0.05), floats("w_scales", wscN(136)...), floatA("y_scale", 0.5)), opset: 1, in: []*ir.Tensor{q(ir.Float8E4M3FN, 8, 48, 61, 67), q(ir.Float8E4M3FN, 136, 48, 1, 1), f32(136)}, cst: []bool{false, true, true}, bound: 2e-3},
		// the halo-tile 3×3 kernels (wgmmah.cu ignh_*/ignhq_*): two channel blocks (the halo's double buffer), a
		// partial block (96 channels: three 32-byte steps per tap), tiles cut by the image's edges
		{name: "nhwc QConv fp8 3x3 C=256 N=128 → fp8 relu, no residual (halo tiles, two channel blocks)", node: conv(kiln.Domain, "QConv", floatA("x_scale", 0.05), floats("w_scales", wscN(128)...), floatA("y_scale", 0.5), ints("pads", 1, 1, 1, 1), str("activation", "Relu")), opset: 1, in: []*ir.Tensor{q(ir.Float8E4M3FN, 2, 256, 17, 19), q(ir.Float8E4M3FN, 128, 256, 3, 3), f32(128)}, cst: []bool{false, true, true}, bound: 2e-3},
		{name: "nhwc QConv int8 3x3 C=64 N=64 16×56×56 → int8 relu (res2's 3×3: persistent halo sub-tiles, three a warpgroup)", node: conv(kiln.Domain, "QConv", floatA("x_scale", 0.05), floats("w_scales", wscN(64)...), floatA("y_scale", 0.7), ints("pads", 1, 1, 1, 1), str("activation", "Relu")), opset: 1, in: []*ir.Tensor{q(ir.Int8, 16, 64, 56, 56), q(ir.Int8, 64, 64, 3, 3), f32(64)}, cst: []bool{false, true, true}},
		{name: "nhwc QConv int8 3x3 C=96 N=64 → int8, no residual (halo tiles, a partial channel block)", node: conv(kiln.Domain, "QConv", floatA("x_scale", 0.05), floats("w_scales", wscN(64)...), floatA("y_scale", 0.6), ints("pads", 1, 1, 1, 1)), opset: 1, in: []*ir.Tensor{q(ir.Int8, 3, 96, 23, 9), q(ir.Int8, 64, 96, 3, 3), f32(64)}, cst: []bool{false, true, true}},
		{name: "nhwc QConv fp8 1x1 512 tiles → fp8 + E4M3 residual codes", node: conv(kiln.Domain, "QConv", floatA("x_scale", 0.05), floats("w_scales", wscN(72)...), floatA("y_scale", 0.5), str("activation", "Relu"), floatA("z_scale", 0.25)), opset: 1, in: []*ir.Tensor{q(ir.Float8E4M3FN, 8, 48, 61, 67), q(ir.Float8E4M3FN, 72, 48, 1, 1), f32(72), q(ir.Float8E4M3FN, 8, 72, 61, 67)}, cst: []bool{false, true, true, false}, bound: 2e-3},
		// the NHWC epilogue's division (igemm.cu qdivr, Markstein's correction) against kilnq's v / y_scale:
		// scales with full mantissas, outputs spread over the whole code range
		{name: "nhwc QConv int8 1x1 → int8, y_scale 0.0123457", node: conv(kiln.Domain, "QConv", floatA("x_scale", 0.05), floats("w_scales", wsc[:16]...), floatA("y_scale", 0.0123457)), opset: 1, in: []*ir.Tensor{q(ir.Int8, 2, 64, 11, 13), q(ir.Int8, 16, 64, 1, 1), f32(16)}, cst: []bool{false, true, true}},
		{name: "nhwc QConv fp8 1x1 → fp8, y_scale 0.0371", node: conv(kiln.Domain, "QConv", floatA("x_scale", 0.05), floats("w_scales", wsc[:16]...), floatA("y_scale", 0.0371)), opset: 1, in: []*ir.Tensor{q(ir.Float8E4M3FN, 2, 64, 11, 13), q(ir.Float8E4M3FN, 16, 64, 1, 1), f32(16)}, cst: []bool{false, true, true}, bound: 2e-3},
		// FP8 MMA tactics (implicit_nhwc.f8/.x3f8): the tensor cores' FP8 accumulation is not exact; a long
		// reduction bounds its error against the exact reference (the widening tactics stay bit-exact)
		{name: "nhwc QConv fp8 1x1 K=512 → f32", node: conv(kiln.Domain, "QConv", floatA("x_scale", 0.05), floats("w_scales", wsc[:16]...)), opset: 1, in: []*ir.Tensor{q(ir.Float8E4M3FN, 2, 512, 7, 9), q(ir.Float8E4M3FN, 16, 512, 1, 1), f32(16)}, cst: []bool{false, true, true}, bound: fp8MMABound},
		// K ≤ 32: the direct convolution kernel
		{name: "direct QConv int8 zp → int8", node: conv(kiln.Domain, "QConv", append(qattrs(0.02, "Relu"), intA("x_zero", 9))...), opset: 1, in: []*ir.Tensor{q(ir.Int8, 3, 2, 12, 12), q(ir.Int8, 24, 2, 3, 3), f32(24)}, cst: []bool{false, true, true}},
		{name: "direct QConv uint8 → uint8", node: conv(kiln.Domain, "QConv", append(qattrs(0.02, ""), intA("x_zero", 120), intA("y_zero", 7))...), opset: 1, in: []*ir.Tensor{q(ir.Uint8, 3, 2, 12, 12), q(ir.Int8, 24, 2, 3, 3)}, cst: []bool{false, true}},
		{name: "direct QConv fp8 → f32 residual", node: conv(kiln.Domain, "QConv", qattrs(0, "")...), opset: 1, in: []*ir.Tensor{q(ir.Float8E4M3FN, 3, 2, 12, 12), q(ir.Float8E4M3FN, 24, 2, 3, 3), f32(24), f32(3, 24, 12, 12)}, cst: []bool{false, true, true, false}, bound: 1e-10},
		{name: "direct conv f16", node: conv("", "Conv", ints("pads", 1, 1, 1, 1)), opset: 17, in: []*ir.Tensor{q(ir.Float16, 2, 3, 10, 10), q(ir.Float16, 16, 3, 3, 3), q(ir.Float16, 16)}, cst: []bool{false, true, true}, bound: 1e-5},
		{name: "direct conv f32 1 channel relu", node: conv(kiln.Domain, "Conv", str("activation", "Relu")), opset: 1, in: []*ir.Tensor{f32(5, 1, 28, 28), f32(32, 1, 3, 3), f32(32)}, cst: []bool{false, true, true}, bound: 1e-10},
		{name: "direct depthwise conv f32 relu6", node: conv(kiln.Domain, "Conv", intA("group", 16), ints("pads", 1, 1, 1, 1), ints("strides", 2, 2), str("activation", "Clip"), floatA("act_alpha", 0), floatA("act_beta", 6)), opset: 1, in: []*ir.Tensor{f32(2, 16, 15, 15), f32(16, 1, 3, 3), f32(16)}, cst: []bool{false, true, true}, bound: 1e-10},
		{name: "direct grouped conv f16 group 2", node: conv("", "Conv", intA("group", 2)), opset: 17, in: []*ir.Tensor{q(ir.Float16, 2, 4, 9, 9), q(ir.Float16, 6, 2, 3, 3)}, cst: []bool{false, true}, bound: 1e-5},
		{name: "direct depthwise QConv int8", node: conv(kiln.Domain, "QConv", floatA("x_scale", 0.05), floats("w_scales", wsc[:8]...), floatA("y_scale", 0.03), intA("group", 8), ints("pads", 1, 1, 1, 1)), opset: 1, in: []*ir.Tensor{q(ir.Int8, 2, 8, 7, 7), q(ir.Int8, 8, 1, 3, 3), f32(8)}, cst: []bool{false, true, true}},
		{name: "QGemm int8 transB", node: conv(kiln.Domain, "QGemm", floatA("x_scale", 0.1), floats("w_scales", 0.01), floatA("y_scale", 0.5), intA("transB", 1)), opset: 1, in: []*ir.Tensor{q(ir.Int8, 30, 100), q(ir.Int8, 12, 100), f32(12)}, cst: []bool{false, true, true}},
		// matrix products of a 2D input on the channels-last implicit GEMMs too (a 1×1 conv over the rows):
		// ResNet-50's classifier shape, several row and channel tiles with partial ones, 8-bit and 16-bit outputs
		{name: "QGemm int8 [64,256]x[1000,256]ᵀ → f32 (NHWC GEMM over rows)", node: conv(kiln.Domain, "QGemm", floatA("x_scale", 0.05), floats("w_scales", wscN(1000)...), intA("transB", 1)), opset: 1, in: []*ir.Tensor{q(ir.Int8, 64, 256), q(ir.Int8, 1000, 256), f32(1000)}, cst: []bool{false, true, true}},
		{name: "QGemm int8 [200,256]x[256,1000] → int8 relu (NHWC GEMM over rows, persistent kernels)", node: conv(kiln.Domain, "QGemm", floatA("x_scale", 0.05), floats("w_scales", wscN(1000)...), floatA("y_scale", 0.5), str("activation", "Relu")), opset: 1, in: []*ir.Tensor{q(ir.Int8, 200, 256), q(ir.Int8, 256, 1000), f32(1000)}, cst: []bool{false, true, true}},
		{name: "gemm f16 [40,64]x[64,24] (NHWC GEMM over rows)", node: conv("", "Gemm"), opset: 13, in: []*ir.Tensor{q(ir.Float16, 40, 64), q(ir.Float16, 64, 24), q(ir.Float16, 24)}, cst: []bool{false, true, true}, bound: 1e-5},
		{name: "QMatMul int8 → f32", node: conv(kiln.Domain, "QMatMul", floatA("x_scale", 0.1), floats("w_scales", 0.01)), opset: 1, in: []*ir.Tensor{q(ir.Int8, 3, 10, 64), q(ir.Int8, 64, 24)}, cst: []bool{false, true}},
		{name: "relu f32", node: conv("", "Relu"), opset: 14, in: []*ir.Tensor{f32(1000)}, cst: []bool{false}},
		{name: "relu int8", node: conv("", "Relu"), opset: 14, in: []*ir.Tensor{q(ir.Int8, 999)}, cst: []bool{false}},
		{name: "sigmoid f16", node: conv("", "Sigmoid"), opset: 13, in: []*ir.Tensor{q(ir.Float16, 500)}, cst: []bool{false}, bound: 1e-6},
		{name: "clip", node: conv("", "Clip"), opset: 13, in: []*ir.Tensor{f32(300), ir.ScalarFloat32(-0.5), ir.ScalarFloat32(1)}, cst: []bool{false, true, true}},
		{name: "add bias broadcast", node: conv("", "Add"), opset: 14, in: []*ir.Tensor{f32(2, 8, 5, 5), f32(8, 1, 1)}, cst: []bool{false, true}},
		{name: "mul both runtime", node: conv("", "Mul"), opset: 14, in: []*ir.Tensor{f32(4, 1, 6), f32(3, 1)}, cst: []bool{false, false}},
		{name: "sub const first", node: conv("", "Sub"), opset: 14, in: []*ir.Tensor{f32(6), f32(2, 6)}, cst: []bool{true, false}},
		{name: "maxpool f32", node: conv("", "MaxPool", ints("kernel_shape", 3, 3), ints("strides", 2, 2), ints("pads", 1, 1, 1, 1)), opset: 12, in: []*ir.Tensor{f32(2, 3, 11, 12)}, cst: []bool{false}},
		{name: "maxpool int8 ceil", node: conv("", "MaxPool", ints("kernel_shape", 2, 2), ints("strides", 2, 2), intA("ceil_mode", 1)), opset: 12, in: []*ir.Tensor{q(ir.Int8, 2, 3, 11, 11)}, cst: []bool{false}},
		{name: "avgpool", node: conv("", "AveragePool", ints("kernel_shape", 3, 3), ints("pads", 1, 1, 1, 1)), opset: 19, in: []*ir.Tensor{f32(2, 3, 7, 7)}, cst: []bool{false}, bound: 1e-12},
		{name: "maxpool fp8", node: conv("", "MaxPool", ints("kernel_shape", 3, 3), ints("strides", 2, 2), ints("pads", 1, 1, 1, 1)), opset: 19, in: []*ir.Tensor{q(ir.Float8E4M3FN, 2, 3, 11, 12)}, cst: []bool{false}},
		// every E4M3 code but NaN (the reference's NaN rule differs): +0 and −0 compare equal (the first kept),
		// ±448 at the ends
		{name: "maxpool fp8 every code", node: conv("", "MaxPool", ints("kernel_shape", 2, 3), ints("strides", 1, 2)), opset: 19, in: []*ir.Tensor{everyE4M3(r, 2, 16, 9, 10)}, cst: []bool{false}},
		{name: "avgpool f16", node: conv("", "AveragePool", ints("kernel_shape", 7, 7)), opset: 19, in: []*ir.Tensor{q(ir.Float16, 2, 40, 7, 7)}, cst: []bool{false}, bound: 1e-6},
		{name: "global avgpool bf16", node: conv("", "GlobalAveragePool"), opset: 1, in: []*ir.Tensor{q(ir.BFloat16, 3, 70, 7, 7)}, cst: []bool{false}, bound: 1e-4},
		{name: "global avgpool", node: conv("", "GlobalAveragePool"), opset: 1, in: []*ir.Tensor{f32(3, 70, 7, 7)}, cst: []bool{false}, bound: 1e-12},
		// pooling of channels-last input (as an NHWC conv leaves it): gpool_nhwc for windows over the whole
		// plane and global pools whose channels fill 16-byte vectors (partial channel blocks, pixel counts
		// that are not a multiple of its 8 pixel groups, fewer pixels than groups), the one-thread-per-output
		// kernels otherwise
		{name: "avgpool f32 7x7 whole plane, NHWC input (gpool_nhwc, a partial channel block)", node: conv("", "AveragePool", ints("kernel_shape", 7, 7)), opset: 19, in: []*ir.Tensor{f32(3, 200, 7, 7)}, cst: []bool{false}, bound: 1e-12, nhwc: true},
		{name: "avgpool f16 7x7 whole plane count_include_pad, NHWC input (gpool_nhwc)", node: conv("", "AveragePool", ints("kernel_shape", 7, 7), intA("count_include_pad", 1)), opset: 19, in: []*ir.Tensor{q(ir.Float16, 2, 40, 7, 7)}, cst: []bool{false}, bound: 1e-6, nhwc: true},
		{name: "avgpool f16 5x5 whole plane C=36, NHWC input (avgpool_any)", node: conv("", "AveragePool", ints("kernel_shape", 5, 5)), opset: 19, in: []*ir.Tensor{q(ir.Float16, 2, 36, 5, 5)}, cst: []bool{false}, bound: 1e-6, nhwc: true},
		{name: "avgpool f32 7x7 pads 1 over 5x5, NHWC input (avgpool_any)", node: conv("", "AveragePool", ints("kernel_shape", 7, 7), ints("pads", 1, 1, 1, 1)), opset: 19, in: []*ir.Tensor{f32(2, 16, 5, 5)}, cst: []bool{false}, bound: 1e-12, nhwc: true},
		{name: "avgpool f32 3x3, NHWC input (avgpool_any)", node: conv("", "AveragePool", ints("kernel_shape", 3, 3), ints("pads", 1, 1, 1, 1)), opset: 19, in: []*ir.Tensor{f32(2, 8, 7, 7)}, cst: []bool{false}, bound: 1e-12, nhwc: true},
		{name: "global avgpool f32, NHWC input (gpool_nhwc, a partial channel block)", node: conv("", "GlobalAveragePool"), opset: 1, in: []*ir.Tensor{f32(4, 264, 7, 7)}, cst: []bool{false}, bound: 1e-12, nhwc: true},
		{name: "global avgpool bf16 5x3, NHWC input (gpool_nhwc)", node: conv("", "GlobalAveragePool"), opset: 1, in: []*ir.Tensor{q(ir.BFloat16, 3, 72, 5, 3)}, cst: []bool{false}, bound: 1e-4, nhwc: true},
		{name: "global avgpool f32 1x3, NHWC input (gpool_nhwc, fewer pixels than groups)", node: conv("", "GlobalAveragePool"), opset: 1, in: []*ir.Tensor{f32(2, 16, 1, 3)}, cst: []bool{false}, bound: 1e-12, nhwc: true},
		{name: "global avgpool f16 C=70, NHWC input (gavgpool_nhwc)", node: conv("", "GlobalAveragePool"), opset: 1, in: []*ir.Tensor{q(ir.Float16, 3, 70, 7, 7)}, cst: []bool{false}, bound: 1e-6, nhwc: true},
		{name: "add f16 broadcast of a runtime row", node: conv("", "Add"), opset: 14, in: []*ir.Tensor{q(ir.Float16, 2, 8, 16), q(ir.Float16, 16)}, cst: []bool{false, false}, bound: 1e-6},
		{name: "mul bf16 by a constant", node: conv("", "Mul"), opset: 14, in: []*ir.Tensor{q(ir.BFloat16, 3, 5, 7), q(ir.BFloat16, 5, 1)}, cst: []bool{false, true}, bound: 1e-4},
		{name: "sub f16 same shapes, NHWC input 0", node: conv("", "Sub"), opset: 14, in: []*ir.Tensor{q(ir.Float16, 2, 8, 3, 3), q(ir.Float16, 2, 8, 3, 3)}, cst: []bool{false, false}, bound: 1e-6, nhwc: true},
		{name: "softmax", node: conv("", "Softmax"), opset: 13, in: []*ir.Tensor{f32(37, 1000)}, cst: []bool{false}, bound: 1e-12},
		{name: "softmax opset 11 axis 1 of [N,1000,1,1] (SqueezeNet)", node: conv("", "Softmax", intA("axis", 1)), opset: 11, in: []*ir.Tensor{f32(3, 1000, 1, 1)}, cst: []bool{false}, bound: 1e-12},
		{name: "softmax opset 11 axis 1 of rank 3 (rows of 30)", node: conv("", "Softmax", intA("axis", 1)), opset: 11, in: []*ir.Tensor{f32(4, 5, 6)}, cst: []bool{false}, bound: 1e-12},
		{name: "layernorm", node: conv("", "LayerNormalization"), opset: 17, in: []*ir.Tensor{f32(20, 256), f32(256), f32(256)}, cst: []bool{false, true, true}, bound: 1e-10},
		{name: "kiln.LayerNorm (the transformer pass's fused form)", node: conv(kiln.Domain, "LayerNorm", intA("axis", -1), floatA("epsilon", 1e-12)), opset: 1, in: []*ir.Tensor{f32(20, 256), f32(256), f32(256)}, cst: []bool{false, true, true}, bound: 1e-10},
		{name: "quantize int8 per tensor", node: conv("", "QuantizeLinear"), opset: 19, in: []*ir.Tensor{f32(2, 3, 40), ir.ScalarFloat32(0.013), ir.NewTensor(ir.Int8, nil)}, cst: []bool{false, true, true}, bound: 1e-6},
		{name: "quantize fp8", node: conv("", "QuantizeLinear"), opset: 19, in: []*ir.Tensor{f32(500), ir.ScalarFloat32(0.01), ir.NewTensor(ir.Float8E4M3FN, nil)}, cst: []bool{false, true, true}, bound: 1e-6},
		{name: "dequantize int8 per axis", node: conv("", "DequantizeLinear", intA("axis", 1)), opset: 19, in: []*ir.Tensor{q(ir.Int8, 2, 3, 40), ir.FromFloat32s([]int64{3}, []float32{0.1, 0.2, 0.3}), ir.NewTensor(ir.Int8, []int64{3})}, cst: []bool{false, true, true}},
		{name: "dequantize fp8", node: conv("", "DequantizeLinear"), opset: 19, in: []*ir.Tensor{q(ir.Float8E4M3FN, 300), ir.ScalarFloat32(0.5)}, cst: []bool{false, true}},
		// Concat: one strided copy per input, 16-, 4- or 1-byte elements as widths, pitch and addresses allow
		{name: "concat f32 axis 1 (4-byte copies)", node: conv("", "Concat", intA("axis", 1)), opset: 13, in: []*ir.Tensor{f32(2, 3, 5, 5), f32(2, 5, 5, 5), f32(2, 1, 5, 5)}, cst: []bool{false, false, false}},
		{name: "concat f32 axis 1 of 512-byte pieces, NHWC input 0 (16-byte copies)", node: conv("", "Concat", intA("axis", 1)), opset: 13, in: []*ir.Tensor{f32(2, 8, 4, 4), f32(2, 8, 4, 4)}, cst: []bool{false, false}, nhwc: true},
		{name: "concat f16 axis -1 (byte copies)", node: conv("", "Concat", intA("axis", -1)), opset: 13, in: []*ir.Tensor{q(ir.Float16, 3, 4, 5), q(ir.Float16, 3, 4, 3)}, cst: []bool{false, false}},
		{name: "concat int8 axis 0", node: conv("", "Concat", intA("axis", 0)), opset: 13, in: []*ir.Tensor{q(ir.Int8, 2, 3, 4), q(ir.Int8, 1, 3, 4)}, cst: []bool{false, false}},
		// Transpose: a gather over permuted strides, 1-, 2-, 4- and 8-byte elements
		{name: "transpose f32 NCHW→NHWC, NHWC device input", node: conv("", "Transpose", ints("perm", 0, 2, 3, 1)), opset: 13, in: []*ir.Tensor{f32(2, 8, 4, 5)}, cst: []bool{false}, nhwc: true},
		{name: "transpose f32 rank 5 channel shuffle (ShuffleNet)", node: conv("", "Transpose", ints("perm", 0, 2, 1, 3, 4)), opset: 13, in: []*ir.Tensor{f32(2, 2, 8, 3, 3)}, cst: []bool{false}},
		{name: "transpose f16 default (reversed axes)", node: conv("", "Transpose"), opset: 13, in: []*ir.Tensor{q(ir.Float16, 3, 4, 5)}, cst: []bool{false}},
		{name: "transpose int8", node: conv("", "Transpose", ints("perm", 1, 0, 2)), opset: 13, in: []*ir.Tensor{q(ir.Int8, 2, 3, 4)}, cst: []bool{false}},
		{name: "transpose int64", node: conv("", "Transpose", ints("perm", 1, 0)), opset: 13, in: []*ir.Tensor{q(ir.Int64, 5, 7)}, cst: []bool{false}},
		{name: "cast f32→bf16", node: conv("", "Cast", intA("to", int64(ir.BFloat16))), opset: 19, in: []*ir.Tensor{f32(777)}, cst: []bool{false}},
		{name: "cast f16→f32", node: conv("", "Cast", intA("to", int64(ir.Float32))), opset: 19, in: []*ir.Tensor{q(ir.Float16, 777)}, cst: []bool{false}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runCase(t, c) })
	}
	t.Logf("timing: %v", ReadTiming())
}
