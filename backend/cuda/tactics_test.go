package cudabackend

import (
	"encoding/binary"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/kilnml/kiln/builder"
	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/gpu/cuda"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops/kiln"
	"github.com/kilnml/kiln/quant/calib"
)

// Which convolution modes lower which layers (checked without a GPU).
func TestConvModesLower(t *testing.T) {
	f16 := func(d ...int64) *ir.Tensor { return ir.NewTensor(ir.Float16, d) }
	f32 := func(d ...int64) *ir.Tensor { return ir.NewTensor(ir.Float32, d) }
	i8 := func(d ...int64) *ir.Tensor { return ir.NewTensor(ir.Int8, d) }
	conv := func(dom, op string, a ...*ir.Attribute) *ir.Node {
		return &ir.Node{Name: "c", OpType: op, Domain: dom, Inputs: []string{"x", "w", "b", "z"}[:0], Outputs: []string{"y"}, Attrs: a}
	}
	qa := []*ir.Attribute{floatA("x_scale", 0.1), floats("w_scales", 0.01), floatA("y_scale", 0.2)}
	for _, c := range []struct {
		name string
		node *ir.Node
		in   []*ir.Tensor
		out  ir.DType
		ok   map[string]bool // mode → lowers
	}{
		{"f32 3x3", conv("", "Conv"), []*ir.Tensor{f32(1, 8, 6, 6), f32(16, 8, 3, 3)}, ir.Float32,
			map[string]bool{modeIm2col: true, modeNCHW: true, modeImplicit: false, modeDirect: false}},
		{"f32 first layer K=9", conv("", "Conv"), []*ir.Tensor{f32(1, 1, 6, 6), f32(16, 1, 3, 3)}, ir.Float32,
			map[string]bool{modeIm2col: true, modeNCHW: true, modeImplicit: false, modeDirect: true}},
		{"f16 3x3", conv("", "Conv"), []*ir.Tensor{f16(1, 8, 6, 6), f16(16, 8, 3, 3)}, ir.Float16,
			map[string]bool{modeIm2col: true, modeNCHW: true, modeImplicit: true, modeDirect: false}},
		{"f16 depthwise", conv("", "Conv", intA("group", 8)), []*ir.Tensor{f16(1, 8, 6, 6), f16(8, 1, 3, 3)}, ir.Float16,
			map[string]bool{modeIm2col: false, modeNCHW: false, modeImplicit: true, modeDirect: true}},
		{"f16 grouped K=72", conv("", "Conv", intA("group", 2)), []*ir.Tensor{f16(1, 16, 6, 6), f16(8, 8, 3, 3)}, ir.Float16,
			map[string]bool{modeIm2col: false, modeNCHW: false, modeImplicit: true, modeDirect: true}},
		{"int8 QConv", conv(kiln.Domain, "QConv", qa...), []*ir.Tensor{i8(1, 8, 6, 6), i8(16, 8, 3, 3)}, ir.Int8,
			map[string]bool{modeIm2col: true, modeNCHW: false, modeImplicit: true, modeDirect: false}},
		{"f16 1x1 Gelu K=8", conv(kiln.Domain, "Conv", str("activation", "Gelu")), []*ir.Tensor{f16(1, 8, 6, 6), f16(16, 8, 1, 1)}, ir.Float16,
			map[string]bool{modeIm2col: true, modeNCHW: true, modeImplicit: true, modeDirect: true}},
		{"f16 1x1 K=40", conv("", "Conv"), []*ir.Tensor{f16(1, 40, 6, 6), f16(16, 40, 1, 1)}, ir.Float16,
			map[string]bool{modeIm2col: true, modeNCHW: true, modeImplicit: true, modeDirect: false}},
	} {
		n := c.node
		for i := range c.in {
			n.Inputs = append(n.Inputs, string(rune('a'+i)))
		}
		l := layerOf(n, 17, c.in, []bool{false, true}, []ir.DType{c.out}, [][]int64{{1, c.in[1].Dims[0], 4, 4}})
		if n.Domain == kiln.Domain {
			l.Opset = 1
		}
		for mode, want := range c.ok {
			_, err := lowerGemm(l, mode)
			if (err == nil) != want {
				t.Errorf("%s, mode %q: lowered %v, want %v (%v)", c.name, mode, err == nil, want, err)
			}
		}
	}
	// the NCHW mode needs a residual of the output's type (cuBLASLt's C)
	n := conv(kiln.Domain, "Conv")
	n.Inputs = []string{"x", "w", "", "z"}
	l := layerOf(n, 1, []*ir.Tensor{f16(1, 8, 6, 6), f16(16, 8, 1, 1), nil, f32(1, 16, 6, 6)}, []bool{false, true, false, false}, []ir.DType{ir.Float16}, [][]int64{{1, 16, 6, 6}})
	if _, err := lowerGemm(l, modeNCHW); err == nil {
		t.Error("NCHW mode took a float32 residual with float16 output")
	}
	low, err := lowerGemm(l, modeImplicit)
	if err != nil {
		t.Fatal(err)
	}
	var p gemmParams
	if err := json.Unmarshal(low.Params, &p); err != nil || !p.Implicit || !p.HasZ || p.ZFmt != 0 {
		t.Errorf("implicit params %+v %v", p, err)
	}
}

func TestIGemmNames(t *testing.T) {
	for _, c := range []struct {
		in    cuda.DataType
		out   ir.DType
		uint8 bool
		want  string
	}{
		{cuda.R16F, ir.Float16, false, "ig_f16_16"},
		{cuda.R16BF, ir.Float32, false, "ig_bf16_f32"},
		{cuda.R8FE4M3, ir.Float8E4M3FN, false, "ig_e4m3_e4m3"},
		{cuda.R8I, ir.Uint8, false, "ig_i8_u8"},
		{cuda.R8I, ir.Int8, true, "ig_u8_i8"},
		{cuda.R8I, ir.Float8E4M3FN, false, ""},
		{cuda.R16F, ir.Int8, false, ""},
		{cuda.R32F, ir.Float32, false, ""},
	} {
		if got := igemmName(c.in, c.out, c.uint8); got != c.want {
			t.Errorf("igemmName(%v, %v, %v) = %q, want %q", c.in, c.out, c.uint8, got, c.want)
		}
	}
}

// The k table maps the group-local reduction index to (channel, row offset,
// column offset), -1 past K, and covers K rounded up to igemm.cu's step.
func TestKTable(t *testing.T) {
	p := gemmParams{KH: 3, KW: 2, DH: 2, DW: 3, K: 4 * 3 * 2}
	b := kTable(p)
	if len(b) != igemmK*16 {
		t.Fatalf("%d bytes, want %d", len(b), igemmK*16)
	}
	at := func(k, f int) int32 { return int32(binary.LittleEndian.Uint32(b[k*16+f*4:])) }
	k := 0
	for c := 0; c < 4; c++ {
		for kh := 0; kh < 3; kh++ {
			for kw := 0; kw < 2; kw++ {
				if at(k, 0) != int32(c) || at(k, 1) != int32(kh*2) || at(k, 2) != int32(kw*3) {
					t.Fatalf("k %d: {%d %d %d}, want {%d %d %d}", k, at(k, 0), at(k, 1), at(k, 2), c, kh*2, kw*3)
				}
				k++
			}
		}
	}
	for ; k < igemmK; k++ {
		if at(k, 0) != -1 {
			t.Fatalf("k %d past K: channel %d", k, at(k, 0))
		}
	}
}

// The zoo ResNet-50 becomes a batch-dynamic, opset-13 model with random
// weights, and the GPU backend takes every layer of it and of mobilenetv2
// in FP16 and FP8 (lowering needs no GPU; Deterministic: nothing is timed).
func TestBenchModelsPlacement(t *testing.T) {
	m, in := benchModel(t, "resnet50")
	if m.Opset("") != 13 || in != "gpu_0/data_0" || m.Graph.Inputs[0].Type.Shape[0].Known() {
		t.Fatalf("opset %d, input %v", m.Opset(""), m.Graph.Inputs[0].Type.Shape)
	}
	for _, n := range m.Graph.Nodes {
		if n.OpType == "ConstantOfShape" {
			t.Fatal("ConstantOfShape left")
		}
	}
	if w := m.Graph.Initializer("gpu_0/conv1_w_0"); w == nil || w.Len() != 64*3*7*7 || w.F32()[0] == w.F32()[1] {
		t.Fatalf("conv1 weights %v", w)
	}
	offerWithoutDevice = true
	defer func() { offerWithoutDevice = false }()
	shape := []int64{2, 3, 224, 224}
	for _, c := range []struct {
		model string
		fp8   bool
	}{{"resnet50", false}, {"mobilenetv2", false}, {"mobilenetv2", true}} {
		m, in := benchModel(t, c.model)
		cfg := builder.Config{FP16: !c.fp8, FP8: c.fp8, Deterministic: true,
			Profiles: []builder.Profile{{in: {Min: shape, Opt: shape, Max: shape}}}}
		if c.fp8 {
			cfg.Calibration = &builder.Calibration{Source: &RandomStream{Input: in, Shape: shape, Batches: 1}, Algorithm: calib.MinMax}
		}
		p, _, err := builder.Build(m, nil, cfg)
		if err != nil {
			t.Fatal(err)
		}
		var off []string
		for _, s := range p.Steps {
			if !s.ShapeStep && !strings.HasPrefix(s.Kernel, "cuda.") {
				off = append(off, s.Name+" ("+s.Kernel+")")
			}
		}
		if len(off) > 0 {
			t.Errorf("%s fp8=%v: not on the GPU: %s", c.model, c.fp8, strings.Join(off, "; "))
		}
	}
}

// Quantized residuals (kilnq's z_scale/z_zero): every convolution mode
// that takes quantized layers reads 8-bit residual codes; codes without
// z_scale, a float32 residual with it, and codes on float layers decline.
func TestCodeResidualLowering(t *testing.T) {
	i8 := func(d ...int64) *ir.Tensor { return ir.NewTensor(ir.Int8, d) }
	qconv := func(a ...*ir.Attribute) *ir.Node {
		a = append([]*ir.Attribute{floatA("x_scale", 0.1), floats("w_scales", 0.01), floatA("y_scale", 0.2)}, a...)
		return &ir.Node{Name: "c", OpType: "QConv", Domain: kiln.Domain, Inputs: []string{"x", "w", "", "z"}, Outputs: []string{"y"}, Attrs: a}
	}
	layer := func(n *ir.Node, x *ir.Tensor, z ir.DType) *engine.Layer {
		return layerOf(n, 1, []*ir.Tensor{x, i8(32, x.Dims[1], 1, 1), nil, ir.NewTensor(z, []int64{2, 32, 6, 6})},
			[]bool{false, true, false, false}, []ir.DType{x.DType}, [][]int64{{2, 32, 6, 6}})
	}
	for _, c := range []struct {
		z    ir.DType
		zz   int64
		fmt  int
		x    *ir.Tensor
		mode []string
	}{
		{ir.Int8, -3, 3, i8(2, 32, 6, 6), []string{modeIm2col, modeImplicit, modeNHWC, modeNHWC3}},
		{ir.Uint8, 130, 4, i8(2, 32, 6, 6), []string{modeIm2col, modeImplicit, modeNHWC, modeNHWC3}},
		{ir.Float8E4M3FN, 0, 5, ir.NewTensor(ir.Float8E4M3FN, []int64{2, 32, 6, 6}), []string{modeIm2col, modeImplicit, modeNHWC, modeNHWCF8, modeNHWC3F8}},
		{ir.Float8E5M2, 0, 6, ir.NewTensor(ir.Float8E4M3FN, []int64{2, 32, 6, 6}), []string{modeIm2col, modeImplicit, modeNHWC, modeNHWCF8}},
	} {
		n := qconv(floatA("z_scale", 0.04), intA("z_zero", c.zz))
		l := layer(n, c.x, c.z)
		l.Const[1] = ir.NewTensor(c.x.DType, []int64{32, 32, 1, 1})
		for _, mode := range c.mode {
			low, err := lowerGemm(l, mode)
			if err != nil {
				t.Errorf("%s residual, mode %q: %v", c.z, mode, err)
				continue
			}
			var p gemmParams
			if err := json.Unmarshal(low.Params, &p); err != nil || !p.HasZ || p.ZFmt != c.fmt || p.ZScale != 0.04 || p.ZZero != int(c.zz) {
				t.Errorf("%s residual, mode %q: params ZFmt %d ZScale %v ZZero %d (%v)", c.z, mode, p.ZFmt, p.ZScale, p.ZZero, err)
			}
		}
		refused := []string{modeNCHW, modeGemmNHWC}
		if c.x.DType == ir.Int8 {
			refused = append(refused, modeNHWCF8, modeNHWC3F8) // FP8 MMA takes E4M3 only
		}
		for _, mode := range refused {
			if _, err := lowerGemm(l, mode); err == nil {
				t.Errorf("%s residual: mode %q lowered a quantized layer", c.z, mode)
			}
		}
	}
	// int8 codes without z_scale, float32 with it: refused by every mode
	for name, l := range map[string]*engine.Layer{
		"codes without z_scale": layer(qconv(), i8(2, 32, 6, 6), ir.Int8),
		"float32 with z_scale":  layer(qconv(floatA("z_scale", 0.04)), i8(2, 32, 6, 6), ir.Float32),
	} {
		for _, mode := range []string{modeIm2col, modeImplicit, modeNHWC, modeNHWC3, modeDirect} {
			if _, err := lowerGemm(l, mode); err == nil {
				t.Errorf("%s: mode %q lowered it", name, mode)
			}
		}
	}
	// qdivr's range: the NHWC kernels take y_scale in [2^-40, 2^40] only
	tiny := layer(&ir.Node{Name: "c", OpType: "QConv", Domain: kiln.Domain, Inputs: []string{"x", "w"}, Outputs: []string{"y"},
		Attrs: []*ir.Attribute{floatA("x_scale", 0.1), floats("w_scales", 0.01), floatA("y_scale", 1e-13)}}, i8(2, 32, 6, 6), ir.Int8)
	tiny.In, tiny.Const = tiny.In[:2], tiny.Const[:2]
	if _, err := lowerGemm(tiny, modeNHWC); err == nil {
		t.Error("the NHWC mode took y_scale 1e-13")
	}
	if _, err := lowerGemm(tiny, modeImplicit); err != nil {
		t.Errorf("implicit mode, y_scale 1e-13: %v", err)
	}
	// a float layer never reads codes
	fn := &ir.Node{Name: "f", OpType: "Conv", Domain: kiln.Domain, Inputs: []string{"x", "w", "", "z"}, Outputs: []string{"y"}}
	fl := layerOf(fn, 1, []*ir.Tensor{ir.NewTensor(ir.Float16, []int64{2, 32, 6, 6}), ir.NewTensor(ir.Float16, []int64{32, 32, 1, 1}), nil, i8(2, 32, 6, 6)},
		[]bool{false, true, false, false}, []ir.DType{ir.Float16}, [][]int64{{2, 32, 6, 6}})
	for _, mode := range []string{modeIm2col, modeImplicit, modeNHWC, modeNCHW, modeGemmNHWC} {
		if _, err := lowerGemm(fl, mode); err == nil {
			t.Errorf("float layer with int8 residual: mode %q lowered it", mode)
		}
	}
}

// The 3-stage 128-channel kernels (ignr_*) stage each tile's codes where a
// residual's would go: implicit_nhwc.wgr lowers only layers without one,
// while the 2-stage ones (wgq) take both. The check runs after the
// residual input is parsed (it once ran before, and passed every layer).
func TestDeepTilesRefuseResiduals(t *testing.T) {
	i8 := func(d ...int64) *ir.Tensor { return ir.NewTensor(ir.Int8, d) }
	for _, resid := range []bool{false, true} {
		in := []string{"x", "w", ""}
		a := []*ir.Attribute{floatA("x_scale", 0.1), floats("w_scales", 0.01), floatA("y_scale", 0.2)}
		x := []*ir.Tensor{i8(2, 64, 6, 6), i8(128, 64, 1, 1), nil}
		cst := []bool{false, true, false}
		if resid {
			in, a = append(in, "z"), append(a, floatA("z_scale", 0.04))
			x, cst = append(x, i8(2, 128, 6, 6)), append(cst, false)
		}
		n := &ir.Node{Name: "c", OpType: "QConv", Domain: kiln.Domain, Inputs: in, Outputs: []string{"y"}, Attrs: a}
		l := layerOf(n, 1, x, cst, []ir.DType{ir.Int8}, [][]int64{{2, 128, 6, 6}})
		l.Const[1] = i8(128, 64, 1, 1)
		if _, err := lowerGemm(l, modeNHWCWGQ); err != nil {
			t.Errorf("residual %v: wgq: %v", resid, err)
		}
		low, err := lowerGemm(l, modeNHWCWGR)
		if resid != (err != nil) {
			t.Errorf("residual %v: wgr lowering error %v", resid, err)
		}
		if err == nil {
			var p gemmParams
			if err := json.Unmarshal(low.Params, &p); err != nil || !p.Deep || !p.Wide || !p.Persist || ignKernel(p) != "ignr_i8_i8" {
				t.Errorf("wgr params %+v (%v): kernel %s", p, err, ignKernel(p))
			}
		}
	}
}

// The halo-tile kernels (implicit_nhwc.wgh, .wghq, .wghp) take 3×3 stride-1
// convolutions padded by 1, without a residual, with input channels in
// 32-byte steps and 8-bit outputs; .wghq needs 128+ output channels, the
// persistent .wghp at most 128 input channels (every tap's weights stay in
// shared memory).
func TestHaloTilesLowering(t *testing.T) {
	i8 := func(d ...int64) *ir.Tensor { return ir.NewTensor(ir.Int8, d) }
	layer := func(c, n, k, s, p int64, resid bool) *engine.Layer {
		in := []string{"x", "w", ""}
		a := []*ir.Attribute{floatA("x_scale", 0.1), floats("w_scales", 0.01), floatA("y_scale", 0.2),
			ints("kernel_shape", k, k), ints("strides", s, s), ints("pads", p, p, p, p)}
		oh := (12+2*p-k)/s + 1
		x := []*ir.Tensor{i8(2, c, 12, 12), i8(n, c, k, k), nil}
		cst := []bool{false, true, false}
		if resid {
			in, a = append(in, "z"), append(a, floatA("z_scale", 0.04))
			x, cst = append(x, i8(2, n, oh, oh)), append(cst, false)
		}
		nd := &ir.Node{Name: "c", OpType: "QConv", Domain: kiln.Domain, Inputs: in, Outputs: []string{"y"}, Attrs: a}
		l := layerOf(nd, 1, x, cst, []ir.DType{ir.Int8}, [][]int64{{2, n, oh, oh}})
		l.Const[1] = i8(n, c, k, k)
		return l
	}
	for _, c := range []struct {
		name            string
		l               *engine.Layer
		wgh, wghq, wghp bool
	}{
		{"3x3 C=64 N=64", layer(64, 64, 3, 1, 1, false), true, false, true},
		{"3x3 C=128 N=128", layer(128, 128, 3, 1, 1, false), true, true, true},
		{"3x3 C=96 N=64", layer(96, 64, 3, 1, 1, false), true, false, false},
		{"3x3 C=32 N=16", layer(32, 16, 3, 1, 1, false), true, false, true},
		{"3x3 C=256 N=256", layer(256, 256, 3, 1, 1, false), true, true, false},
		{"3x3 with a residual", layer(64, 128, 3, 1, 1, true), false, false, false},
		{"3x3 stride 2", layer(64, 64, 3, 2, 1, false), false, false, false},
		{"3x3 unpadded", layer(64, 64, 3, 1, 0, false), false, false, false},
		{"1x1", layer(64, 64, 1, 1, 0, false), false, false, false},
		{"3x3 C=16 (one 16-byte chunk a tap)", layer(16, 64, 3, 1, 1, false), false, false, false},
	} {
		for _, m := range []struct {
			mode, kernel string
			want         bool
		}{{modeNHWCWGH, "ignh_i8_i8", c.wgh}, {modeNHWCWGHQ, "ignhq_i8_i8", c.wghq}, {modeNHWCWGHP, "ignhp" + strconv.Itoa(int(c.l.Const[1].Dims[1]/32)) + "_i8_i8", c.wghp}} {
			low, err := lowerGemm(c.l, m.mode)
			if (err == nil) != m.want {
				t.Errorf("%s, mode %s: lowering error %v, want lowered %v", c.name, m.mode, err, m.want)
				continue
			}
			if err != nil {
				continue
			}
			var p gemmParams
			if err := json.Unmarshal(low.Params, &p); err != nil || !p.Halo || !p.WG || p.Persist != (m.mode == modeNHWCWGHP) || ignKernel(p) != m.kernel {
				t.Errorf("%s, mode %s: params %+v (%v), kernel %s", c.name, m.mode, p, err, ignKernel(p))
			}
		}
	}
}
