package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/kernels/avx"
)

// everySimdTactic runs each SIMD tactic with every micro-kernel variant
// this CPU has, at 1..4 threads: the first result is checked by cmp, later
// thread counts must equal it bit for bit.
func everySimdTactic(t *testing.T, l *engine.Layer, in []*ir.Tensor, cmp func(name string, got *ir.Tensor)) {
	t.Helper()
	ts := simdBackend{}.Tactics(l)
	if len(ts) == 0 {
		t.Skipf("%s: no SIMD tactic on this CPU", l.Node)
	}
	saved, qsaved := avx.Variant, avx.QVariant
	defer func() { avx.Variant, avx.QVariant = saved, qsaved }()
	vs, qvs := avx.Variants(), avx.QVariants()
	for i := range max(len(vs), len(qvs)) {
		v := i
		avx.Variant, avx.QVariant = vs[min(i, len(vs)-1)], qvs[min(i, len(qvs)-1)]
		for _, tac := range ts {
			if _, err := tac.Lower(l); err != nil {
				continue // e.g. direct on a padded 1×1 conv
			}
			name := fmt.Sprintf("%s variant %d", tac.Name(), v)
			first := execKernel(t, tac, l, in, 1)
			cmp(name, first)
			for th := 2; th <= 4; th++ {
				sameBits(t, fmt.Sprintf("%s threads %d vs 1", name, th), execKernel(t, tac, l, in, th), first)
			}
		}
	}
}

func TestSimdConvF32(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	cases := append(convCases,
		convCase{1, 64, 7, 7, 72, 3, 3, 1, 1, 1, 1, ""},  // ResNet-like tail: 49 columns, row blocks
		convCase{2, 40, 9, 9, 24, 1, 1, 1, 0, 1, 1, ""},  // pointwise, 81 columns
		convCase{1, 3, 33, 35, 17, 3, 3, 2, 1, 1, 1, ""}, // stride 2, odd
		convCase{1, 8, 12, 12, 16, 5, 5, 1, 2, 1, 1, ""}, // 5×5
		convCase{1, 1, 28, 28, 32, 3, 3, 1, 0, 1, 1, ""}, // simplecnn conv1
		// batch 1 at 2–4 threads (splitImage): pointwise by even column
		// chunks of 16, by row blocks (weights outweigh 49 columns), and
		// im2col by chunks of whole strips or, at 3 threads, too few for rows
		convCase{1, 64, 28, 28, 32, 1, 1, 1, 0, 1, 1, ""},
		convCase{1, 96, 14, 14, 24, 1, 1, 1, 0, 1, 1, ""},
		convCase{1, 128, 7, 7, 256, 1, 1, 1, 0, 1, 1, ""},
		convCase{1, 32, 14, 14, 64, 3, 3, 1, 1, 1, 1, ""})
	for i, cc := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			x := randF32(r, cc.n, cc.c, cc.h, cc.w)
			w := randF32(r, cc.m, cc.c/cc.group, cc.kh, cc.kw)
			b := randF32(r, cc.m)
			n := convNode("", "Conv", cc, 3)
			in := []*ir.Tensor{x, w, b}
			want := reference(t, n, in)
			l := layer(n, in, []bool{false, true, true}, want, engine.FP32)
			everySimdTactic(t, l, in, func(name string, got *ir.Tensor) { closeF32(t, name, got, want, 1e-5) })
		})
	}
}

func TestSimdFusedConvF32(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, c := range []convCase{convCases[1], convCases[5], convCases[8], {1, 64, 28, 28, 32, 1, 1, 1, 0, 1, 1, ""}} {
		for _, act := range []string{"", "Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSwish"} {
			x := randF32(r, c.n, c.c, c.h, c.w)
			w := randF32(r, c.m, c.c/c.group, c.kh, c.kw)
			b := randF32(r, c.m)
			y0 := reference(t, convNode("", "Conv", c, 3), []*ir.Tensor{x, w, b})
			z := randF32(r, y0.Dims...)
			attrs := []*ir.Attribute{aStr("activation", act)}
			if act == "Clip" {
				attrs = append(attrs, aFloat("act_alpha", -0.5), aFloat("act_beta", 0.7))
			}
			n := convNode("kiln", "Conv", c, 4, attrs...)
			in := []*ir.Tensor{x, w, b, z}
			want := reference(t, n, in)
			l := layer(n, in, []bool{false, true, true, false}, want, engine.FP32)
			everySimdTactic(t, l, in, func(name string, got *ir.Tensor) { closeF32(t, act+" "+name, got, want, 1e-5) })
		}
	}
}

func TestSimdConvF32NaNInf(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for _, cc := range []convCase{convCases[1], convCases[4], convCases[12]} {
		x := randF32(r, cc.n, cc.c, cc.h, cc.w)
		x.F32()[3] = float32(math.NaN())
		x.F32()[len(x.F32())-2] = float32(math.Inf(1))
		w := randF32(r, cc.m, cc.c/cc.group, cc.kh, cc.kw)
		n := convNode("", "Conv", cc, 2)
		in := []*ir.Tensor{x, w}
		want := reference(t, n, in)
		l := layer(n, in, []bool{false, true}, want, engine.FP32)
		everySimdTactic(t, l, in, func(name string, got *ir.Tensor) { closeF32(t, name, got, want, 1e-5) })
	}
}

func TestSimdGemmF32(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	for i, c := range []struct {
		m, k, n int64
		tb      bool
		cdims   []int64
		act     string
		resid   bool
	}{
		{1, 1, 1, false, nil, "", false},
		{5, 7, 3, false, []int64{3}, "", false},
		{13, 17, 33, true, []int64{1, 33}, "Relu", true},
		{8, 32, 32, false, nil, "Clip", false},
		{300, 40, 70, false, []int64{70}, "Gelu", true}, // several row and column blocks
		{2, 1600, 128, false, []int64{128}, "Relu", false},
	} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			bd := []int64{c.k, c.n}
			tb := int64(0)
			if c.tb {
				bd, tb = []int64{c.n, c.k}, 1
			}
			in := []*ir.Tensor{randF32(r, c.m, c.k), randF32(r, bd...)}
			if c.cdims != nil {
				in = append(in, randF32(r, c.cdims...))
			}
			attrs := []*ir.Attribute{aInt("transB", tb)}
			dom := ""
			if c.act != "" || c.resid {
				dom = "kiln"
				attrs = append(attrs, aStr("activation", c.act))
				if c.act == "Clip" {
					attrs = append(attrs, aFloat("act_alpha", -0.5), aFloat("act_beta", 0.7))
				}
				if c.resid {
					if c.cdims == nil {
						t.Fatal("a residual needs a C input in this test")
					}
					in = append(in, randF32(r, c.m, c.n))
				}
			}
			n := node(dom, "Gemm", len(in), attrs...)
			want := reference(t, n, in)
			consts := []bool{false, true, true, false}
			l := layer(n, in, consts[:len(in)], want, engine.FP32)
			everySimdTactic(t, l, in, func(name string, got *ir.Tensor) { closeF32(t, name, got, want, 1e-5) })
		})
	}
	// MatMul batching A's leading axes.
	a, w := randF32(r, 2, 3, 5, 24), randF32(r, 24, 37)
	n := node("", "MatMul", 2)
	in := []*ir.Tensor{a, w}
	want := reference(t, n, in)
	everySimdTactic(t, layer(n, in, []bool{false, true}, want, engine.FP32), in, func(name string, got *ir.Tensor) { closeF32(t, name, got, want, 1e-5) })
}

func TestSimdMaxPool2x2(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 20))
	for _, d := range [][]int64{{1, 1, 2, 2}, {2, 3, 7, 9}, {3, 5, 26, 26}, {1, 2, 5, 71}} {
		x := randF32(r, d...)
		x.F32()[0] = float32(math.NaN()) // NaN first in its window: kept
		x.F32()[3] = float32(math.NaN())
		x.F32()[len(x.F32())-1] = float32(math.Inf(1))
		n := node("", "MaxPool", 1, aInts("kernel_shape", 2, 2), aInts("strides", 2, 2))
		in := []*ir.Tensor{x}
		want := reference(t, n, in)
		l := layer(n, in, []bool{false}, want, engine.FP32)
		everySimdTactic(t, l, in, func(name string, got *ir.Tensor) { sameBits(t, name, got, want) })
	}
}

func TestSimdQConv(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	for _, qc := range qcases {
		if isFP8(qc.xt) { // the SIMD tactics are int8 only
			continue
		}
		for ci, cc := range []convCase{convCases[1], convCases[3], convCases[5], convCases[6], convCases[8], convCases[12],
			{1, 64, 7, 7, 72, 3, 3, 1, 1, 1, 1, ""}, {1, 3, 17, 19, 8, 3, 3, 2, 1, 1, 1, ""}, {1, 4, 6, 70, 8, 3, 3, 1, 1, 1, 1, ""}, {1, 2, 5, 40, 8, 3, 3, 1, 1, 1, 1, ""},
			// fewer than 4 channels per group: row quads (kw padded to 4 or 8, padding,
			// strides, SAME pads, groups) and the byte order (dilation, 2-wide kernels)
			{2, 1, 28, 28, 32, 3, 3, 1, 0, 1, 1, ""}, {1, 3, 9, 13, 5, 5, 5, 1, 2, 1, 1, ""}, {1, 6, 10, 33, 8, 7, 7, 2, 3, 1, 2, ""},
			convCases[9], convCases[10], convCases[11], {1, 2, 9, 9, 4, 3, 3, 1, 2, 2, 1, ""}, {1, 2, 11, 13, 4, 3, 3, 3, 1, 1, 1, ""}, // stride 3: offset tables
			// 1×1 convs packed straight from channel-major codes (channels a multiple of 4)
			{1, 8, 7, 7, 12, 1, 1, 1, 0, 1, 1, ""}, {2, 16, 9, 10, 24, 1, 1, 1, 0, 1, 1, ""}, {1, 16, 5, 5, 8, 1, 1, 1, 0, 1, 2, ""}, {1, 32, 40, 40, 16, 1, 1, 1, 0, 1, 1, ""}} {
			t.Run(fmt.Sprint(qc.name, "/", ci), func(t *testing.T) {
				attrs := quantAttrs(r, cc.m, qc.yScale, qc.xz, qc.yz, qc.act)
				n := convNode("kiln", "QConv", cc, 0, attrs...)
				in, consts := quantInputs(r, qc, []int64{cc.n, cc.c, cc.h, cc.w}, []int64{cc.m, cc.c / cc.group, cc.kh, cc.kw}, cc.m,
					func(in []*ir.Tensor) []int64 { return reference(t, nodeWith(n, in[:2]), in[:2]).Dims })
				n = nodeWith(n, in)
				want := reference(t, n, in)
				l := layer(n, in, consts, want, precOf(qc))
				everySimdTactic(t, l, in, func(name string, got *ir.Tensor) { checkQuant(t, qc, name, got, want) })
			})
		}
	}
}

func TestSimdQGemmQMatMul(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	for _, qc := range qcases {
		if isFP8(qc.xt) { // the SIMD tactics are int8 only
			continue
		}
		for _, tb := range []int64{0, 1} {
			for _, sz := range [][3]int64{{11, 37, 9}, {1, 64, 40}, {70, 130, 33}} {
				M, K, N := sz[0], sz[1], sz[2]
				t.Run(fmt.Sprint(qc.name, "/gemm-transB", tb, sz), func(t *testing.T) {
					wd := []int64{K, N}
					if tb == 1 {
						wd = []int64{N, K}
					}
					n := node("kiln", "QGemm", 0, append(quantAttrs(r, N, qc.yScale, qc.xz, qc.yz, qc.act), aInt("transB", tb))...)
					in, consts := quantInputs(r, qc, []int64{M, K}, wd, N, func([]*ir.Tensor) []int64 { return []int64{M, N} })
					n = nodeWith(n, in)
					want := reference(t, n, in)
					everySimdTactic(t, layer(n, in, consts, want, precOf(qc)), in, func(name string, got *ir.Tensor) { checkQuant(t, qc, name, got, want) })
				})
			}
		}
		t.Run(qc.name+"/matmul", func(t *testing.T) {
			K, N := int64(20), int64(6)
			n := node("kiln", "QMatMul", 0, quantAttrs(r, N, qc.yScale, qc.xz, qc.yz, qc.act)...)
			in, consts := quantInputs(r, qc, []int64{2, 3, K}, []int64{K, N}, N, func([]*ir.Tensor) []int64 { return []int64{2, 3, N} })
			n = nodeWith(n, in)
			want := reference(t, n, in)
			everySimdTactic(t, layer(n, in, consts, want, precOf(qc)), in, func(name string, got *ir.Tensor) { checkQuant(t, qc, name, got, want) })
		})
	}
}

func TestSimdMaxPool2x2Codes(t *testing.T) {
	r := rand.New(rand.NewPCG(27, 28))
	// odd sizes (last row/column dropped), rows over 32 outputs (the
	// vector step), planes split over several work items
	for _, c := range []struct {
		dt   ir.DType
		dims []int64
	}{{ir.Int8, []int64{2, 3, 9, 8}}, {ir.Uint8, []int64{2, 3, 9, 8}}, {ir.Int8, []int64{3, 5, 7, 70}}, {ir.Uint8, []int64{1, 40, 41, 41}}} {
		dt := c.dt
		x := randCodes(r, dt, c.dims...)
		n := node("", "MaxPool", 1, aInts("kernel_shape", 2, 2), aInts("strides", 2, 2))
		in := []*ir.Tensor{x}
		want := reference(t, n, in)
		l := layer(n, in, []bool{false}, want, engine.INT8)
		everySimdTactic(t, l, in, func(name string, got *ir.Tensor) { sameBits(t, name, got, want) })
	}
}

func TestSimdMatMulTwoActivations(t *testing.T) {
	r := rand.New(rand.NewPCG(29, 30))
	for i, c := range []struct{ a, b []int64 }{
		{[]int64{5, 7}, []int64{7, 3}},
		{[]int64{2, 3, 13, 8}, []int64{2, 3, 8, 9}},
		{[]int64{2, 1, 6, 4}, []int64{3, 4, 5}}, // broadcast
		{[]int64{1, 40, 16}, []int64{4, 16, 40}},
		{[]int64{4, 128, 64}, []int64{4, 64, 128}}, // attention-like
		{[]int64{3, 70, 300}, []int64{300, 33}},    // K blocks, shared B
	} {
		in := []*ir.Tensor{randF32(r, c.a...), randF32(r, c.b...)}
		n := node("", "MatMul", 2)
		want := reference(t, n, in)
		l := layer(n, in, []bool{false, false}, want, engine.FP32)
		everySimdTactic(t, l, in, func(name string, got *ir.Tensor) { closeF32(t, fmt.Sprint(i, name), got, want, 1e-5) })
	}
}

func TestSimdDepthwiseF32(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	for i, cc := range []convCase{
		{1, 6, 7, 7, 6, 3, 3, 1, 1, 1, 6, ""},
		{2, 5, 37, 41, 5, 3, 3, 2, 1, 1, 5, ""}, // stride 2, several 16-wide blocks
		{1, 4, 20, 35, 4, 5, 5, 1, 2, 1, 4, ""}, // 5×5
		{1, 3, 19, 23, 3, 3, 3, 1, 2, 2, 3, ""}, // dilation 2
		{1, 3, 9, 33, 3, 3, 3, 2, 0, 1, 3, ""},  // stride 2, no padding
		{1, 8, 16, 16, 8, 3, 3, 1, 0, 1, 8, "SAME_UPPER"},
		{2, 150, 7, 7, 150, 3, 3, 1, 1, 1, 150, ""}, // many small planes: several blocks per item, a shorter last one
		// batch 1, large enough for 2–4 threads: runs of channels; top pads
		// 1 and 2, stride 2, SAME_UPPER's bottom-only pad
		{1, 40, 30, 29, 40, 3, 3, 1, 1, 1, 40, ""},
		{1, 40, 30, 29, 40, 3, 3, 1, 2, 1, 40, ""},
		{1, 40, 67, 45, 40, 3, 3, 2, 1, 1, 40, ""},
		{1, 48, 64, 40, 48, 3, 3, 2, 0, 1, 48, "SAME_UPPER"},
	} {
		for _, act := range []string{"", "Clip", "Sigmoid"} {
			t.Run(fmt.Sprint(i, act), func(t *testing.T) {
				x := randF32(r, cc.n, cc.c, cc.h, cc.w)
				x.F32()[5] = float32(math.NaN())
				w := randF32(r, cc.m, 1, cc.kh, cc.kw)
				b := randF32(r, cc.m)
				y0 := reference(t, convNode("", "Conv", cc, 3), []*ir.Tensor{x, w, b})
				z := randF32(r, y0.Dims...)
				attrs := []*ir.Attribute{aStr("activation", act)}
				if act == "Clip" {
					attrs = append(attrs, aFloat("act_alpha", 0), aFloat("act_beta", 6))
				}
				n := convNode("kiln", "Conv", cc, 4, attrs...)
				in := []*ir.Tensor{x, w, b, z}
				want := reference(t, n, in)
				l := layer(n, in, []bool{false, true, true, false}, want, engine.FP32)
				if _, err := (simdDWTactic{}).Lower(l); err != nil {
					t.Fatalf("the depthwise tactic declines: %v", err)
				}
				everySimdTactic(t, l, in, func(name string, got *ir.Tensor) { closeF32(t, name, got, want, 1e-5) })
			})
		}
	}
}

func TestSimdQDepthwise(t *testing.T) {
	r := rand.New(rand.NewPCG(33, 34))
	for _, qc := range qcases {
		if isFP8(qc.xt) { // the SIMD tactics are int8 only
			continue
		}
		for ci, cc := range []convCase{
			{1, 6, 7, 7, 6, 3, 3, 1, 1, 1, 6, ""},
			{2, 5, 37, 41, 5, 3, 3, 2, 1, 1, 5, ""},
			{1, 4, 20, 35, 4, 5, 5, 1, 2, 1, 4, ""},
			{1, 3, 19, 23, 3, 3, 3, 1, 2, 2, 3, ""},
			{1, 3, 6, 33, 3, 3, 3, 1, 1, 1, 3, ""}, // the in-place 3×3 plane kernel: a row of 3 chunks
			{2, 2, 9, 67, 2, 3, 3, 2, 1, 1, 2, ""}, // stride 2: 34 outputs, 67 input bytes a row
			// enough row chunks (qdwSplitChunks) that the in-place kernel splits over threads
			{1, 80, 28, 28, 80, 3, 3, 2, 1, 1, 80, ""}, // 80·14 rows of one chunk
		} {
			t.Run(fmt.Sprint(qc.name, "/", ci), func(t *testing.T) {
				attrs := quantAttrs(r, cc.m, qc.yScale, qc.xz, qc.yz, qc.act)
				n := convNode("kiln", "QConv", cc, 0, attrs...)
				in, consts := quantInputs(r, qc, []int64{cc.n, cc.c, cc.h, cc.w}, []int64{cc.m, 1, cc.kh, cc.kw}, cc.m,
					func(in []*ir.Tensor) []int64 { return reference(t, nodeWith(n, in[:2]), in[:2]).Dims })
				n = nodeWith(n, in)
				want := reference(t, n, in)
				l := layer(n, in, consts, want, precOf(qc))
				if _, err := (simdQDWTactic{}).Lower(l); err != nil {
					t.Fatalf("the int8 depthwise tactic declines: %v", err)
				}
				everySimdTactic(t, l, in, func(name string, got *ir.Tensor) { checkQuant(t, qc, name, got, want) })
			})
		}
	}
}
