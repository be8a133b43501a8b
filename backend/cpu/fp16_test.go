package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/kilnml/kiln/builder"
	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/floatx"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
)

func toHalf(t *ir.Tensor) *ir.Tensor {
	h := ir.NewTensor(ir.Float16, t.Dims)
	for i, v := range t.F32() {
		h.U16()[i] = floatx.F32ToF16(v)
	}
	return h
}

// closeF16: the reference rounds float64 results (and, for fused ops, its
// inner result) to float16; the kernels round a float32 result once. They
// agree within two float16 ulps of the output's scale.
func closeF16(t *testing.T, what string, got, want *ir.Tensor) {
	t.Helper()
	if got.DType != ir.Float16 || !sameDims(got.Dims, want.Dims) {
		t.Fatalf("%s: got %s%v, want %s%v", what, got.DType, got.Dims, want.DType, want.Dims)
	}
	var mean float64
	for _, h := range want.U16() {
		mean += math.Abs(float64(floatx.F16ToF32(h)))
	}
	mean /= float64(len(want.U16()))
	for i, h := range want.U16() {
		a, b := float64(floatx.F16ToF32(got.U16()[i])), float64(floatx.F16ToF32(h))
		if math.IsNaN(a) != math.IsNaN(b) || math.Abs(a-b) > math.Ldexp(math.Max(math.Abs(b), mean), -9) {
			t.Fatalf("%s: element %d: %v, want %v", what, i, a, b)
		}
	}
}

// FP16 convolutions (plain and fused): float16 storage, float32 math.
func TestConvF16(t *testing.T) {
	r := rand.New(rand.NewPCG(33, 34))
	for i, cc := range []convCase{convCases[1], convCases[4], convCases[7], convCases[8], convCases[12]} {
		x := toHalf(randF32(r, cc.n, cc.c, cc.h, cc.w))
		w := toHalf(randF32(r, cc.m, cc.c/cc.group, cc.kh, cc.kw))
		b := toHalf(randF32(r, cc.m))
		n := convNode("", "Conv", cc, 3)
		in := []*ir.Tensor{x, w, b}
		want := reference(t, n, in)
		everyTactic(t, layer(n, in, []bool{false, true, true}, want, engine.FP16), in, func(name string, got *ir.Tensor) { closeF16(t, fmt.Sprint(i, name), got, want) })

		z := toHalf(randF32(r, want.Dims...))
		n = convNode("kiln", "Conv", cc, 4, aStr("activation", "Relu"))
		in = []*ir.Tensor{x, w, b, z}
		want = reference(t, n, in)
		everyTactic(t, layer(n, in, []bool{false, true, true, false}, want, engine.FP16), in, func(name string, got *ir.Tensor) { closeF16(t, fmt.Sprint(i, " fused ", name), got, want) })
	}
}

// FP16 Gemm/MatMul with constant weights (plain and fused, batch 1 and more).
func TestGemmF16(t *testing.T) {
	r := rand.New(rand.NewPCG(35, 36))
	for _, m := range []int64{1, 9} {
		a := toHalf(randF32(r, m, 37))
		w := toHalf(randF32(r, 11, 37))
		c := toHalf(randF32(r, 11))
		n := node("", "Gemm", 3, aInt("transB", 1))
		in := []*ir.Tensor{a, w, c}
		want := reference(t, n, in)
		everyTactic(t, layer(n, in, []bool{false, true, true}, want, engine.FP16), in, func(name string, got *ir.Tensor) { closeF16(t, fmt.Sprint(m, name), got, want) })

		w2 := toHalf(randF32(r, 37, 11))
		z := toHalf(randF32(r, 2, m, 11))
		a2 := toHalf(randF32(r, 2, m, 37))
		n = node("kiln", "MatMul", 4, aStr("activation", "Relu"))
		in = []*ir.Tensor{a2, w2, c, z}
		want = reference(t, n, in)
		everyTactic(t, layer(n, in, []bool{false, true, true, false}, want, engine.FP16), in, func(name string, got *ir.Tensor) { closeF16(t, fmt.Sprint(m, " fused ", name), got, want) })
	}
}

// --fp16 engines run their convolutions and dense layers on the cpu FP16
// kernels and follow the reference-kernel FP16 engine to float16 accuracy.
func TestFP16Engines(t *testing.T) {
	dir := sharedModels(t)
	for _, rel := range []string{"bench/simplecnn.fp32.onnx", "mnist-8-zoo/model.onnx"} {
		t.Run(rel, func(t *testing.T) {
			path := filepath.Join(dir, rel)
			m, err := onnx.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			in := modelInputs(t, m, path, 2)
			cfg := builder.Config{FP16: true, Deterministic: true}
			fast := buildPlan(t, m, in, cfg, true)
			n := 0
			for _, s := range fast.Steps {
				if (s.Kernel == "cpu.conv" || s.Kernel == "cpu.gemm") && s.Precision == "fp16" {
					n++
				}
			}
			if n == 0 {
				t.Fatal("no fp16 cpu conv/gemm step")
			}
			want := runPlan(t, buildPlan(t, m, in, cfg, false), in, 1)
			for _, th := range []int{1, 2} {
				got := runPlan(t, fast, in, th)
				for name, w := range want {
					closeF32(t, fmt.Sprint(name, " threads ", th), got[name], w, 1e-2)
				}
			}
		})
	}
}
