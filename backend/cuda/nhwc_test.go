package cudabackend

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/gpu/cuda"
	"github.com/kilnml/kiln/gpu/cuda/kernels"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops/kiln"
)

// khwcOrder moves weight column (c, kh, kw) to (kh, kw, c), for any
// element size, leaving rows alone.
func TestKHWCOrder(t *testing.T) {
	const n, c, kh, kw = 3, 5, 2, 3
	for _, dt := range []ir.DType{ir.Float16, ir.Int8, ir.Float32} {
		w := ir.NewTensor(dt, []int64{n, c * kh * kw})
		for i := int64(0); i < w.Len(); i++ {
			w.SetFloat64At(i, float64(i%97))
		}
		o := khwcOrder(w, kh*kw)
		for r := 0; r < n; r++ {
			for ci := 0; ci < c; ci++ {
				for y := 0; y < kh; y++ {
					for x := 0; x < kw; x++ {
						src := int64(r*c*kh*kw + ci*kh*kw + y*kw + x)
						dst := int64(r*c*kh*kw + (y*kw+x)*c + ci)
						if o.Float64At(dst) != w.Float64At(src) {
							t.Fatalf("%s: row %d c %d (%d,%d): %v, want %v", dt, r, ci, y, x, o.Float64At(dst), w.Float64At(src))
						}
					}
				}
			}
		}
	}
}

// Which convolutions the channels-last implicit GEMM takes, the packed
// weight order it gets, and that the backend offers it alone where it
// lowers (and not when turned off). No GPU needed.
func TestNHWCLowering(t *testing.T) {
	f16 := func(d ...int64) *ir.Tensor { return ir.NewTensor(ir.Float16, d) }
	f32 := func(d ...int64) *ir.Tensor { return ir.NewTensor(ir.Float32, d) }
	i8 := func(d ...int64) *ir.Tensor { return ir.NewTensor(ir.Int8, d) }
	u8 := func(d ...int64) *ir.Tensor { return ir.NewTensor(ir.Uint8, d) }
	qa := []*ir.Attribute{floatA("x_scale", 0.1), floats("w_scales", 0.01), floatA("y_scale", 0.2)}
	for _, c := range []struct {
		name string
		dom  string
		op   string
		attr []*ir.Attribute
		in   []*ir.Tensor
		out  ir.DType
		ok   bool
	}{
		{"f16 3x3 C=16 N=24", "", "Conv", nil, []*ir.Tensor{f16(1, 16, 6, 6), f16(24, 16, 3, 3)}, ir.Float16, true},
		{"f16 C=12 (padded to 16)", "", "Conv", nil, []*ir.Tensor{f16(1, 12, 6, 6), f16(24, 12, 3, 3)}, ir.Float16, true},
		{"f16 N=20 (not a multiple of 8)", "", "Conv", nil, []*ir.Tensor{f16(1, 16, 6, 6), f16(20, 16, 1, 1)}, ir.Float16, false},
		{"f16 first layer C=3 (padded to 8)", "", "Conv", nil, []*ir.Tensor{f16(1, 3, 6, 6), f16(16, 3, 7, 7)}, ir.Float16, true},
		{"int8 first layer C=3 (padded to 16)", kiln.Domain, "QConv", qa, []*ir.Tensor{i8(1, 3, 6, 6), i8(16, 3, 3, 3)}, ir.Int8, true},
		{"f32", "", "Conv", nil, []*ir.Tensor{f32(1, 16, 6, 6), f32(24, 16, 1, 1)}, ir.Float32, false},
		{"f16 grouped", "", "Conv", []*ir.Attribute{intA("group", 2)}, []*ir.Tensor{f16(1, 16, 6, 6), f16(16, 8, 3, 3)}, ir.Float16, false},
		{"int8 C=32", kiln.Domain, "QConv", qa, []*ir.Tensor{i8(1, 32, 6, 6), i8(16, 32, 3, 3)}, ir.Int8, true},
		{"int8 C=24 (padded to 32)", kiln.Domain, "QConv", qa, []*ir.Tensor{i8(1, 24, 6, 6), i8(16, 24, 3, 3)}, ir.Int8, true},
		{"int8 x_zero", kiln.Domain, "QConv", append([]*ir.Attribute{intA("x_zero", 3)}, qa...), []*ir.Tensor{i8(1, 32, 6, 6), i8(16, 32, 3, 3)}, ir.Int8, false},
		{"uint8", kiln.Domain, "QConv", append([]*ir.Attribute{intA("x_zero", 128)}, qa...), []*ir.Tensor{u8(1, 32, 6, 6), i8(16, 32, 3, 3)}, ir.Uint8, false},
	} {
		n := &ir.Node{Name: "c", OpType: c.op, Domain: c.dom, Outputs: []string{"y"}, Attrs: c.attr}
		for i := range c.in {
			n.Inputs = append(n.Inputs, string(rune('a'+i)))
		}
		l := layerOf(n, 17, c.in, []bool{false, true}, []ir.DType{c.out}, [][]int64{{1, c.in[1].Dims[0], 4, 4}})
		if n.Domain == kiln.Domain {
			l.Opset = 1
		}
		low, err := lowerGemm(l, modeNHWC)
		if (err == nil) != c.ok {
			t.Errorf("%s: lowered %v, want %v (%v)", c.name, err == nil, c.ok, err)
			continue
		}
		offerWithoutDevice = true
		tacs := (Backend{}).Tactics(l)
		SetNHWC(false)
		off := (Backend{}).Tactics(l)
		SetNHWC(true)
		offerWithoutDevice = false
		for _, tac := range off {
			if tac.Name() == "implicit_nhwc" {
				t.Errorf("%s: implicit_nhwc offered with NHWC off", c.name)
			}
		}
		if !c.ok {
			continue
		}
		// only channels-last tactics, so that timing cannot mix layouts
		for i, tac := range tacs {
			if n := tac.Name(); (i == 0 && n != "implicit_nhwc") || !strings.HasPrefix(n, "implicit_nhwc") && n != "cublaslt.nhwc" {
				t.Errorf("%s: tactic %d is %s; want implicit_nhwc first and only NHWC tactics", c.name, i, n)
			}
		}
		var p gemmParams
		if err := json.Unmarshal(low.Params, &p); err != nil || !p.NHWC {
			t.Fatalf("%s: params %+v %v", c.name, p, err)
		}
		// packed row 0: column (kh, kw, c) holds the ONNX weight (c, kh, kw);
		// padded channels hold zeros
		w, esz := l.Const[1], c.in[1].DType.ByteSize(1)
		for i := range w.Data {
			w.Data[i] = byte(i*7 + 1)
		}
		low, _ = lowerGemm(l, modeNHWC)
		if err := json.Unmarshal(low.Params, &p); err != nil {
			t.Fatal(err)
		}
		packed := low.Weights[0]
		cin, khw := w.Dims[1], w.Dims[2]*w.Dims[3]
		cpad := max(p.CPad, cin)
		if p.K != cpad*khw || p.Kp%16 != 0 || int64(len(packed.Data)) != p.Np*p.Kp*esz {
			t.Fatalf("%s: K %d Kp %d, %d packed bytes (cpad %d)", c.name, p.K, p.Kp, len(packed.Data), cpad)
		}
		for ci := int64(0); ci < cpad; ci++ {
			for s := int64(0); s < khw; s++ {
				dst := (s*cpad + ci) * esz
				want := byte(0)
				if ci < cin {
					want = w.Data[(ci*khw+s)*esz]
				}
				if packed.Data[dst] != want {
					t.Fatalf("%s: packed column %d holds %d, want %d", c.name, s*cpad+ci, packed.Data[dst], want)
				}
			}
		}
	}
}

// Which convolutions take the kernel-width expansion (kwExpandChannels),
// the expanded weights' column order (kh·KWX + kw·C + c, zeros past KW·C)
// and that the backend offers its tactics for them. No GPU needed.
func TestKWExpandLowering(t *testing.T) {
	qa := []*ir.Attribute{floatA("x_scale", 0.1), floats("w_scales", 0.01), floatA("y_scale", 0.2), ints("pads", 3, 3, 3, 3), ints("strides", 2, 2)}
	for _, c := range []struct {
		name   string
		dom    string
		op     string
		dt     ir.DType
		c, k   int64 // input channels, kernel size (square)
		kwx, K int64 // 0: not expanded
	}{
		{"int8 7x7 C=3 (ResNet-50's stem)", kiln.Domain, "QConv", ir.Int8, 3, 7, 32, 7 * 32},
		{"fp8 3x3 C=3 (mobilenetv2's stem)", kiln.Domain, "QConv", ir.Float8E4M3FN, 3, 3, 16, 3 * 16},
		{"f16 7x7 C=3", "", "Conv", ir.Float16, 3, 7, 24, 7 * 24},
		{"f16 3x3 C=12", "", "Conv", ir.Float16, 12, 3, 40, 3 * 40},
		{"int8 3x3 C=16 (whole chunks)", kiln.Domain, "QConv", ir.Int8, 16, 3, 0, 0},
		{"f16 1x1 C=3 (KW 1)", "", "Conv", ir.Float16, 3, 1, 0, 0},
		{"int8 3x3 C=12 (36 → 48 bytes: no shorter)", kiln.Domain, "QConv", ir.Int8, 12, 3, 0, 0},
	} {
		attrs := qa
		if c.dom == "" {
			attrs = []*ir.Attribute{ints("pads", 3, 3, 3, 3), ints("strides", 2, 2)}
		}
		n := &ir.Node{Name: "c", OpType: c.op, Domain: c.dom, Inputs: []string{"a", "b"}, Outputs: []string{"y"}, Attrs: attrs}
		in := []*ir.Tensor{ir.NewTensor(c.dt, []int64{1, c.c, 20, 20}), ir.NewTensor(c.dt, []int64{16, c.c, c.k, c.k})}
		w := in[1]
		for i := range w.Data {
			w.Data[i] = byte(i*7 + 1)
		}
		l := layerOf(n, 17, in, []bool{false, true}, []ir.DType{c.dt}, [][]int64{{1, 16, 10, 10}})
		if n.Domain == kiln.Domain {
			l.Opset = 1
		}
		offerWithoutDevice = true
		tacs := (Backend{}).Tactics(l)
		offerWithoutDevice = false
		offered := false
		for _, tac := range tacs {
			offered = offered || strings.HasSuffix(tac.Name(), "kw")
		}
		low, err := lowerGemm(l, modeNHWC3+kwSuffix)
		if (err == nil) != (c.kwx > 0) || offered != (c.kwx > 0) {
			t.Errorf("%s: lowered %v (%v), offered %v; want %v", c.name, err == nil, err, offered, c.kwx > 0)
			continue
		}
		if c.kwx == 0 {
			continue
		}
		var p gemmParams
		if err := json.Unmarshal(low.Params, &p); err != nil {
			t.Fatal(err)
		}
		if p.KWX != c.kwx || p.K != c.K || !p.Blocks3 || p.CPad != 0 {
			t.Fatalf("%s: KWX %d K %d Blocks3 %v CPad %d, want KWX %d K %d", c.name, p.KWX, p.K, p.Blocks3, p.CPad, c.kwx, c.K)
		}
		packed, esz := low.Weights[0], c.dt.ByteSize(1)
		for r := int64(0); r < 16; r++ {
			for kh := int64(0); kh < c.k; kh++ {
				for j := int64(0); j < c.kwx; j++ {
					want := byte(0)
					if kw, ci := j/c.c, j%c.c; kw < c.k {
						want = w.Data[(((r*c.c+ci)*c.k+kh)*c.k+kw)*esz]
					}
					if got := packed.Data[(r*p.Kp+kh*c.kwx+j)*esz]; got != want {
						t.Fatalf("%s: row %d column %d holds %d, want %d", c.name, r, kh*c.kwx+j, got, want)
					}
				}
			}
		}
	}
}

func TestIGNNamesAndLayouts(t *testing.T) {
	for _, c := range []struct {
		in   cuda.DataType
		out  ir.DType
		want string
	}{
		{cuda.R16F, ir.Float16, "ign_f16_16"},
		{cuda.R16BF, ir.BFloat16, "ign_bf16_16"},
		{cuda.R16F, ir.Float32, "ign_f16_f32"},
		{cuda.R8I, ir.Int8, "ign_i8_i8"},
		{cuda.R8I, ir.Uint8, "ign_i8_u8"},
		{cuda.R8I, ir.Float32, "ign_i8_f32"},
		{cuda.R16F, ir.Int8, ""},
		{cuda.R8FE4M3, ir.Float8E4M3FN, "ign_e4m3_e4m3"},
		{cuda.R8FE4M3, ir.Float32, "ign_e4m3_f32"},
		{cuda.R8I, ir.Float8E4M3FN, ""},
		{cuda.R32F, ir.Float32, ""},
	} {
		if got := ignName(c.in, c.out); got != c.want {
			t.Errorf("ignName(%v, %v) = %q, want %q", c.in, c.out, got, c.want)
		}
	}
	for _, c := range []struct {
		p    gemmParams
		want string
	}{
		{gemmParams{In: cuda.R16F, Out: ir.Float16}, "ign_f16_16"},
		{gemmParams{In: cuda.R8I, Out: ir.Int8, Blocks3: true}, "ign3_i8_i8"},
		{gemmParams{In: cuda.R8FE4M3, Out: ir.Float32, F8MMA: true}, "ignf_e4m3_f32"},
		{gemmParams{In: cuda.R8FE4M3, Out: ir.Float8E4M3FN, F8MMA: true, Blocks3: true}, "ign3f_e4m3_e4m3"},
		{gemmParams{In: cuda.R8I, Out: ir.Uint8, WG: true}, "ignw_i8_u8"},
		{gemmParams{In: cuda.R8FE4M3, Out: ir.Float8E4M3FN, WG: true, Blocks3: true}, "ignw3_e4m3_e4m3"},
		{gemmParams{In: cuda.R8I, Out: ir.Float16, WG: true, Blocks3: true}, "ignw3_i8_16"},
		{gemmParams{In: cuda.R8I, Out: ir.Int8, WG: true, Persist: true}, "ignp_i8_i8"},
		{gemmParams{In: cuda.R8FE4M3, Out: ir.Float8E4M3FN, WG: true, Persist: true}, "ignp_e4m3_e4m3"},
		{gemmParams{In: cuda.R8I, Out: ir.Uint8, WG: true, Persist: true}, "ignp_i8_u8"},
		{gemmParams{In: cuda.R8FE4M3, Out: ir.Float8E4M3FN, WG: true, Persist: true, Wide: true}, "ignq_e4m3_e4m3"},
		{gemmParams{In: cuda.R8I, Out: ir.Uint8, WG: true, Persist: true, Wide: true, Deep: true}, "ignr_i8_u8"},
		{gemmParams{In: cuda.R8I, Out: ir.Int8, WG: true, Halo: true}, "ignh_i8_i8"},
		{gemmParams{In: cuda.R8FE4M3, Out: ir.Float8E4M3FN, WG: true, Halo: true, Wide: true}, "ignhq_e4m3_e4m3"},
		{gemmParams{In: cuda.R8I, Out: ir.Uint8, WG: true, Halo: true, Persist: true, K: 9 * 64}, "ignhp2_i8_u8"},
		{gemmParams{In: cuda.R8FE4M3, Out: ir.Float8E4M3FN, WG: true, Halo: true, Persist: true, K: 9 * 128}, "ignhp4_e4m3_e4m3"},
	} {
		if got := ignKernel(c.p); got != c.want {
			t.Errorf("ignKernel(%+v) = %q, want %q", c.p, got, c.want)
		}
		if src := map[bool]string{false: kernels.IGemm, true: kernels.WGemm}[c.p.WG]; !strings.Contains(src, "("+c.want+",") {
			t.Errorf("%s is not declared in its module", c.want)
		}
	}
	for _, c := range []struct {
		dims []int64
		want bool
	}{{[]int64{2, 8, 3, 3}, true}, {[]int64{2, 8, 1, 1}, false}, {[]int64{2, 1, 5, 5}, false}, {[]int64{8, 5}, false}, {[]int64{1, 2, 1, 3}, true}} {
		if got := layoutMatters(c.dims); got != c.want {
			t.Errorf("layoutMatters(%v) = %v", c.dims, got)
		}
	}
}

// Depthwise convolutions that dw_nhwc8 runs on channels-last input are
// offered the direct tactic alone while NHWC is on (the timer stages NCHW).
func TestDepthwiseNHWCTactics(t *testing.T) {
	offerWithoutDevice = true
	defer func() { offerWithoutDevice = false }()
	on := NHWC()
	defer SetNHWC(on)
	mk := func(dt ir.DType, c int64) *engine.Layer {
		n := &ir.Node{Name: "dw", OpType: "Conv", Inputs: []string{"x", "w"}, Outputs: []string{"y"}, Attrs: []*ir.Attribute{intA("group", c), ints("pads", 1, 1, 1, 1)}}
		return layerOf(n, 17, []*ir.Tensor{ir.NewTensor(dt, []int64{2, c, 8, 8}), ir.NewTensor(dt, []int64{c, 1, 3, 3})}, []bool{false, true}, []ir.DType{dt}, [][]int64{{2, c, 8, 8}})
	}
	names := func(l *engine.Layer) (s []string) {
		for _, tac := range (Backend{}).Tactics(l) {
			s = append(s, tac.Name())
		}
		return s
	}
	for _, c := range []struct {
		dt   ir.DType
		c    int64
		nhwc bool
		want int
	}{{ir.Float16, 32, true, 1}, {ir.Float16, 32, false, 2}, {ir.Float16, 12, true, 2}, {ir.Float32, 32, true, 2}} {
		SetNHWC(c.nhwc)
		if got := names(mk(c.dt, c.c)); len(got) != c.want || got[0] != "direct" {
			t.Errorf("%s C=%d nhwc=%v: tactics %v, want %d starting with direct", c.dt, c.c, c.nhwc, got, c.want)
		}
	}
}

// codeClamp's bounds make the clamped quotient's rounding the saturated
// code without a clamp after the division (nhwc.cuh qcodew), for int8 and
// uint8 codes, zero points over their range and y_scales with full
// mantissas, powers of two and both ends of the NHWC range. The GPU's
// qdivr is the correctly rounded quotient, which float32 division is here.
func TestCodeClamp(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	scales := []float32{0x1p-40, 0x1p40, 1, 0.5, 0.0123457, 0.0371, 3.0000002, 1e-7, 2.5e5}
	for range 200 {
		scales = append(scales, float32(math.Exp2(r.Float64()*80-40)))
	}
	for _, ys := range scales {
		for _, out := range []ir.DType{ir.Int8, ir.Uint8} {
			lo, hi, _ := codeRange(out)
			for _, zp := range []int{0, lo, hi, lo + 1 + r.IntN(hi-lo-1)} {
				vlo, vhi, err := codeClamp(ys, lo-zp, hi-zp)
				if err != nil {
					t.Fatal(err)
				}
				ref := func(v float32) int { // f2i8(v / ys): rint, + zp, saturated; NaN → lo
					if v != v {
						return lo
					}
					return int(math.Max(float64(lo), math.Min(float64(hi), math.RoundToEven(float64(v/ys))+float64(zp))))
				}
				gpu := func(v float32) int { return int(math.RoundToEven(float64(cudaFminf(cudaFmaxf(v, vlo), vhi)/ys))) + zp }
				vs := []float32{vlo, vhi, 0, float32(math.Copysign(0, -1)), float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), math.MaxFloat32, -math.MaxFloat32}
				for _, b := range []float32{vlo, vhi} {
					for d := float32(-3); d <= 3; d++ {
						vs = append(vs, b+d*ys, math.Nextafter32(b, float32(math.Inf(int(d)))))
					}
				}
				for range 300 {
					vs = append(vs, float32((r.Float64()*float64(hi-lo+40)+float64(lo-zp-20))*float64(ys)))
				}
				for _, v := range vs {
					if g, w := gpu(v), ref(v); g != w {
						t.Fatalf("y_scale %g zp %d %s: v %g: clamped code %d, saturated %d (bounds %g, %g)", ys, zp, out, v, g, w, vlo, vhi)
					}
				}
				if g := gpu(vlo); g != lo {
					t.Fatalf("y_scale %g zp %d: vlo's code %d, want %d", ys, zp, g, lo)
				}
				if g := int(math.RoundToEven(float64(math.Nextafter32(vlo, float32(math.Inf(-1)))/ys))) + zp; g >= lo {
					t.Fatalf("y_scale %g zp %d: vlo %g is not the least", ys, zp, vlo)
				}
			}
		}
	}
	if _, _, err := codeClamp(0x1p-41, -128, 127); err == nil {
		t.Error("y_scale below 2^-40 accepted")
	}
}

// OfferOnly leaves one channels-last tactic where it lowers (the 128-channel
// wgmma kernel on an int8 conv with 136 outputs) and every tactic where it
// does not (64 outputs); "" lifts it. No GPU needed.
func TestOfferOnly(t *testing.T) {
	offerWithoutDevice = true
	defer func() { offerWithoutDevice = false; OfferOnly("") }()
	layer := func(n int64) *engine.Layer { return qconv1x1(n, "") }
	names := tacticNames
	wgq := "implicit_nhwc.wgq" + fastTacticSuffix // the fast epilogue replaces the exact one (fastepi.go)
	all := names(layer(136))
	if !slices.Contains(all, wgq) || len(all) < 3 {
		t.Fatalf("tactics of a 136-channel int8 conv: %v", all)
	}
	OfferOnly(wgq)
	if got := names(layer(136)); !slices.Equal(got, []string{wgq}) {
		t.Errorf("OfferOnly(wgq) on 136 channels: %v", got)
	}
	OfferOnly("")
	all64 := names(layer(64))
	OfferOnly(wgq)
	if got := names(layer(64)); len(all64) < 2 || !slices.Equal(got, all64) {
		t.Errorf("OfferOnly(wgq) on 64 channels (not lowered there): %v, want %v", got, all64)
	}
	OfferOnly("")
	if got := names(layer(136)); !slices.Equal(got, all) {
		t.Errorf("after OfferOnly(\"\"): %v, want %v", got, all)
	}
}

// qconv1x1 is a 1×1 int8 QConv layer from 32 channels to n over a 6×6
// image, with an activation (ReLU6 for "Clip"), for tactic-offer tests.
func qconv1x1(n int64, act string) *engine.Layer {
	qa := []*ir.Attribute{floatA("x_scale", 0.1), floats("w_scales", 0.01), floatA("y_scale", 0.2)}
	if act != "" {
		qa = append(qa, str("activation", act))
	}
	if act == "Clip" {
		qa = append(qa, floatA("act_alpha", 0), floatA("act_beta", 6))
	}
	node := &ir.Node{Name: "c", OpType: "QConv", Domain: kiln.Domain, Inputs: []string{"a", "b"}, Outputs: []string{"y"}, Attrs: qa}
	in := []*ir.Tensor{ir.NewTensor(ir.Int8, []int64{1, 32, 6, 6}), ir.NewTensor(ir.Int8, []int64{n, 32, 1, 1})}
	l := layerOf(node, 1, in, []bool{false, true}, []ir.DType{ir.Int8}, [][]int64{{1, n, 6, 6}})
	l.Opset = 1
	return l
}

// tacticNames are the names of the tactics the backend offers for l.
func tacticNames(l *engine.Layer) []string {
	var s []string
	for _, tac := range (Backend{}).Tactics(l) {
		s = append(s, tac.Name())
	}
	return s
}

// Matrix products run on the channels-last implicit GEMM as a 1×1
// convolution over their rows: lowered for a 2D input whose K fills whole
// 16-byte chunks and N % 8 == 0 (the weights packed [N, K] as for
// cuBLASLt, the geometry 1×1 stride 1), refused with a reason otherwise,
// and offered after cublaslt. No GPU needed.
func TestGemmNHWCLowering(t *testing.T) {
	offerWithoutDevice = true
	defer func() { offerWithoutDevice = false }()
	on := NHWC()
	defer SetNHWC(on)
	SetNHWC(true)
	qa := func(ys float32) []*ir.Attribute {
		return []*ir.Attribute{floatA("x_scale", 0.1), floats("w_scales", 0.01), floatA("y_scale", ys)}
	}
	layer := func(op string, attrs []*ir.Attribute, x, w *ir.Tensor, out ir.DType, outDims []int64) *engine.Layer {
		dom := kiln.Domain
		if op == "Gemm" {
			dom = ""
		}
		for i := range w.Data {
			w.Data[i] = byte(i*7 + 1)
		}
		n := &ir.Node{Name: "g", OpType: op, Domain: dom, Inputs: []string{"x", "w"}, Outputs: []string{"y"}, Attrs: attrs}
		l := layerOf(n, 13, []*ir.Tensor{x, w}, []bool{false, true}, []ir.DType{out}, [][]int64{outDims})
		if dom == kiln.Domain {
			l.Opset = 1
		}
		return l
	}
	i8 := func(d ...int64) *ir.Tensor { return ir.NewTensor(ir.Int8, d) }
	f16 := func(d ...int64) *ir.Tensor { return ir.NewTensor(ir.Float16, d) }
	for _, c := range []struct {
		name  string
		l     *engine.Layer
		ok    []string // modes that lower
		no    []string // modes that do not
		noErr string   // in the modeNHWC error where ok is empty
	}{
		{"QGemm int8 [64,256]x[1000,256]ᵀ → f32 (ResNet-50's classifier)",
			layer("QGemm", append(qa(0), intA("transB", 1)), i8(64, 256), i8(1000, 256), ir.Float32, []int64{64, 1000}),
			[]string{modeNHWC, modeNHWC3, modeNHWCWG, modeNHWC3WG},
			[]string{modeNHWCWGP, modeNHWCWGQ, modeNHWCWGR, modeNHWCWGH, modeNHWC + kwSuffix, modeNHWCWG + kwSuffix, modeGemmNHWC}, ""},
		{"QGemm int8 [64,256]x[256,1000] → int8",
			layer("QGemm", qa(0.5), i8(64, 256), i8(256, 1000), ir.Int8, []int64{64, 1000}),
			[]string{modeNHWC, modeNHWCWG, modeNHWCWGP, modeNHWCWGQ, modeNHWCWGR},
			[]string{modeNHWCWGH, modeNHWCWGHQ, modeNHWC3 + kwSuffix}, ""},
		{"Gemm f16 [40,64]x[64,24]",
			layer("Gemm", nil, f16(40, 64), f16(64, 24), ir.Float16, []int64{40, 24}),
			[]string{modeNHWC, modeNHWC3}, []string{modeNHWCWG, modeGemmNHWC}, ""},
		{"QMatMul int8 3D input", layer("QMatMul", qa(0), i8(3, 10, 64), i8(64, 24), ir.Float32, []int64{3, 10, 24}),
			nil, []string{modeNHWC, modeNHWCWG}, "2D input"},
		{"QGemm int8 N=10", layer("QGemm", append(qa(0), intA("transB", 1)), i8(64, 256), i8(10, 256), ir.Float32, []int64{64, 10}),
			nil, []string{modeNHWC, modeNHWCWG}, "multiples of 8"},
		{"QGemm int8 K=20", layer("QGemm", append(qa(0), intA("transB", 1)), i8(64, 20), i8(16, 20), ir.Float32, []int64{64, 16}),
			nil, []string{modeNHWC, modeNHWCWG}, "K in multiples of 16"},
		{"Gemm f16 K=20", layer("Gemm", nil, f16(40, 20), f16(20, 24), ir.Float16, []int64{40, 24}),
			nil, []string{modeNHWC}, "K in multiples of 8"},
	} {
		for _, mode := range c.no {
			if _, err := lowerGemm(c.l, mode); err == nil {
				t.Errorf("%s: mode %q lowered it", c.name, mode)
			}
		}
		names := tacticNames(c.l)
		t.Logf("%s: tactics %v", c.name, names)
		if len(names) == 0 || names[0] != "cublaslt" {
			t.Errorf("%s: tactics %v, want cublaslt first", c.name, names)
		}
		if len(c.ok) == 0 {
			_, err := lowerGemm(c.l, modeNHWC)
			if err == nil || !strings.Contains(err.Error(), c.noErr) {
				t.Errorf("%s: mode %q: error %v, want one saying %q", c.name, modeNHWC, err, c.noErr)
			}
			if len(names) != 1 {
				t.Errorf("%s: tactics %v, want cublaslt alone", c.name, names)
			}
			continue
		}
		if !slices.Contains(names, "implicit_nhwc") {
			t.Errorf("%s: tactics %v, want implicit_nhwc among them", c.name, names)
		}
		if c.l.In[0].DType == ir.Int8 && !slices.ContainsFunc(names, func(s string) bool { return strings.HasPrefix(s, "implicit_nhwc.wg") }) {
			t.Errorf("%s: tactics %v, want the wgmma ones among them", c.name, names)
		}
		for _, s := range names {
			if strings.Contains(s, "kw") || strings.Contains(s, "wgh") || s == "cublaslt.nhwc" {
				t.Errorf("%s: tactic %s offered", c.name, s)
			}
		}
		ref, err := lowerGemm(c.l, modeIm2col)
		if err != nil {
			t.Fatal(err)
		}
		for _, mode := range c.ok {
			low, err := lowerGemm(c.l, mode)
			if err != nil {
				t.Errorf("%s: mode %q: %v", c.name, mode, err)
				continue
			}
			var p gemmParams
			if err := json.Unmarshal(low.Params, &p); err != nil || !p.NHWC || p.Conv || p.CPad != 0 || p.KWX != 0 ||
				p.KH != 1 || p.KW != 1 || p.SH != 1 || p.SW != 1 || p.DH != 1 || p.DW != 1 || p.PH != 0 || p.PW != 0 {
				t.Errorf("%s: mode %q: params %+v (%v)", c.name, mode, p, err)
			}
			// the packed weights, scales and bias are cuBLASLt's: (kh, kw, c) order is (c) for 1×1
			if len(low.Weights) != len(ref.Weights) {
				t.Fatalf("%s: mode %q: %d weights, cublaslt %d", c.name, mode, len(low.Weights), len(ref.Weights))
			}
			for i, w := range low.Weights {
				if !slices.Equal(w.Dims, ref.Weights[i].Dims) || !slices.Equal(w.Data, ref.Weights[i].Data) {
					t.Errorf("%s: mode %q: weight %d differs from cublaslt's", c.name, mode, i)
				}
			}
		}
	}
}

// ignhp_*'s launch: a whole number of blocks per 64-channel tile, as many
// as fit the SMs (one per SM where a block's shared memory allows one
// only), never more warpgroups than sub-tiles need, an error where not
// even one block per channel tile fits. The first two are ResNet-50's res2
// and res3 3×3 layers at batch 256 on an H200 (ncu counted 264 blocks for
// the first). No GPU needed.
func TestIghpGrid(t *testing.T) {
	for _, c := range []struct {
		name           string
		nb, oh, ow     int
		n              int64
		c, blocks, sms int
		tiles          int64
		grid           uint32
		fails          bool
	}{
		{"res2 3x3 C=64 N=64 56x56", 256, 56, 56, 64, 64, 2, 132, 256 * 49, 264, false},
		{"res3 3x3 C=128 N=128 28x28: one block per SM", 256, 28, 28, 128, 128, 2, 132, 256 * 16, 132, false},
		{"few sub-tiles, two channel tiles", 1, 9, 11, 80, 64, 2, 132, 4, 4, false},
		{"an odd sub-tile count", 1, 17, 40, 64, 32, 2, 132, 15, 8, false},
		{"more channel tiles than blocks fit", 2, 8, 8, 64 * 300, 64, 2, 132, 0, 0, true},
	} {
		tiles, grid, err := ighpGrid(c.nb, c.oh, c.ow, c.n, ighpShared(c.c), c.blocks, c.sms)
		if (err != nil) != c.fails {
			t.Errorf("%s: error %v, want failure %v", c.name, err, c.fails)
			continue
		}
		if c.fails {
			continue
		}
		nN := uint32((c.n + ighpBN - 1) / ighpBN)
		if tiles != c.tiles || grid != c.grid || grid%nN != 0 || int64(grid/nN)*2 > tiles+1 {
			t.Errorf("%s: %d sub-tiles on %d blocks, want %d on %d (a multiple of %d channel tiles, no idle warpgroup pairs)", c.name, tiles, grid, c.tiles, c.grid, nN)
		}
	}
}
