package cudabackend

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/gpu/cuda"
	"github.com/kilnml/kiln/ir"
)

// cudaFmaxf and cudaFminf are CUDA's fmaxf/fminf: a NaN operand gives the
// other one (IEEE maxNum), unlike math.Max.
func cudaFmaxf(a, b float32) float32 {
	if a != a || a < b {
		return b
	}
	return a
}

func cudaFminf(a, b float32) float32 {
	if a != a || a > b {
		return b
	}
	return a
}

// epilogueCode is the NHWC epilogue's integer code for a value v after the
// layer's activation (common.cuh act_k for ReLU and Clip), as qcodew
// computes it: clamped to [vlo, vhi], divided (correctly rounded), rounded
// to even, plus zp.
func epilogueCode(act int, a, b, v, ys, vlo, vhi float32, zp int) int {
	switch act {
	case actCodes["Relu"]:
		if !(v > 0) && v == v {
			v = 0
		}
	case actCodes["Clip"]:
		v = cudaFminf(cudaFmaxf(v, a), b)
	}
	return int(math.RoundToEven(float64(cudaFminf(cudaFmaxf(v, vlo), vhi)/ys))) + zp
}

// Folding ReLU or Clip into the code bounds gives the codes of the
// activation followed by the clamp for every value (ReLU: every value but
// NaN, which the fold's conditions rule out), over int8 and uint8 codes,
// zero points across their range and y_scales across the NHWC range; it
// declines where its conditions fail.
func TestFoldActIntoClamp(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	relu, clip := actCodes["Relu"], actCodes["Clip"]
	clips := [][2]float32{{0, 6}, {-1, 1}, {0.25, 0.5}, {-1e30, 1e30}, {3, 3}}
	for range 300 {
		ys := float32(math.Exp2(r.Float64()*60 - 30))
		out := []ir.DType{ir.Int8, ir.Uint8}[r.IntN(2)]
		lo, hi, _ := codeRange(out)
		zp := lo + r.IntN(hi-lo+1)
		vlo, vhi, err := codeClamp(ys, lo-zp, hi-zp)
		if err != nil {
			t.Fatal(err)
		}
		// values around both bounds, zero and the clip ends, and across the range
		vs := []float32{0, float32(math.Copysign(0, -1)), vlo, vhi, float32(math.Inf(1)), float32(math.Inf(-1)), math.MaxFloat32, -math.MaxFloat32}
		for range 200 {
			vs = append(vs, float32((r.Float64()*float64(hi-lo+40)+float64(lo-zp-20))*float64(ys)))
		}
		for _, c := range clips {
			vs = append(vs, c[0], c[1], math.Nextafter32(c[0], -1e38), math.Nextafter32(c[1], 1e38))
		}
		for _, v := range vs[:len(vs):len(vs)] {
			vs = append(vs, math.Nextafter32(v, float32(math.Inf(1))), math.Nextafter32(v, float32(math.Inf(-1))))
		}
		p := gemmParams{In: cuda.R8I, Out: out, Act: relu}
		act, flo, fhi := foldActIntoClamp(p, []float32{1, 2}, []float32{-3, 4}, vlo, vhi)
		if act != actCodes[""] {
			t.Fatalf("ReLU not folded for int8 inputs with finite scales (y_scale %g)", ys)
		}
		for _, v := range vs {
			if g, w := epilogueCode(act, 0, 0, v, ys, flo, fhi, zp), epilogueCode(relu, 0, 0, v, ys, vlo, vhi, zp); g != w {
				t.Fatalf("ReLU, y_scale %g zp %d %s: v %g: folded code %d, want %d", ys, zp, out, v, g, w)
			}
		}
		vs = append(vs, float32(math.NaN()))
		for _, c := range clips {
			p := gemmParams{In: cuda.R8I, Out: out, Act: clip, ActA: c[0], ActB: c[1]}
			act, flo, fhi := foldActIntoClamp(p, nil, nil, vlo, vhi)
			for _, v := range vs {
				if g, w := epilogueCode(act, c[0], c[1], v, ys, flo, fhi, zp), epilogueCode(clip, c[0], c[1], v, ys, vlo, vhi, zp); g != w {
					t.Fatalf("Clip(%g, %g) (folded: %v), y_scale %g zp %d %s: v %g: code %d, want %d", c[0], c[1], act != clip, ys, zp, out, v, g, w)
				}
			}
		}
	}
	// where the fold must decline
	nan32 := float32(math.NaN())
	declines := []struct {
		name   string
		p      gemmParams
		sc, bi []float32
	}{
		{"E4M3 inputs (float accumulators may be NaN)", gemmParams{In: cuda.R8FE4M3, Out: ir.Int8, Act: relu}, nil, nil},
		{"a NaN scale", gemmParams{In: cuda.R8I, Out: ir.Int8, Act: relu, HasScale: true}, []float32{1, nan32}, nil},
		{"an infinite bias", gemmParams{In: cuda.R8I, Out: ir.Int8, Act: relu, HasBias: true}, nil, []float32{float32(math.Inf(-1))}},
		{"scales missing from the plan", gemmParams{In: cuda.R8I, Out: ir.Int8, Act: relu, HasScale: true}, nil, nil},
		{"a float residual", gemmParams{In: cuda.R8I, Out: ir.Int8, Act: relu, HasZ: true, ZFmt: 0}, nil, nil},
		{"a huge residual scale", gemmParams{In: cuda.R8I, Out: ir.Int8, Act: relu, HasZ: true, ZFmt: 3, ZScale: 0x1p110}, nil, nil},
		{"Clip above the code range", gemmParams{In: cuda.R8I, Out: ir.Int8, Act: clip, ActA: 1000, ActB: 2000}, nil, nil},
		{"Clip with min > max", gemmParams{In: cuda.R8I, Out: ir.Int8, Act: clip, ActA: 2, ActB: 1}, nil, nil},
	}
	for _, d := range declines {
		if act, lo, hi := foldActIntoClamp(d.p, d.sc, d.bi, -128.5, 127.5); act != d.p.Act || lo != -128.5 || hi != 127.5 {
			t.Errorf("%s: folded (act %d, bounds %g, %g)", d.name, act, lo, hi)
		}
	}
	if act, _, _ := foldActIntoClamp(gemmParams{In: cuda.R8I, Out: ir.Int8, Act: relu, HasZ: true, ZFmt: 3, ZScale: 0.02}, nil, nil, -128.5, 127.5); act != actCodes[""] {
		t.Error("ReLU with an int8 residual not folded")
	}
}

// codeBounds is codeClamp's bounds with foldActIntoClamp applied to the
// plan's scales and biases, computed once: a ReLU layer with int8 codes
// runs no activation and clamps from max(0, vlo); a NaN bias keeps the
// ReLU; float outputs get no bounds.
func TestCodeBounds(t *testing.T) {
	f32 := func(v ...float32) *ir.Tensor { return ir.FromFloat32s([]int64{int64(len(v))}, v) }
	w := ir.NewTensor(ir.Int8, []int64{2, 16})
	p := gemmParams{In: cuda.R8I, Out: ir.Int8, Act: actCodes["Relu"], YScale: 0.25, HasBias: true, HasScale: true}
	k := &gemmKernel{p: p, host: []*ir.Tensor{w, f32(0.5, -1), f32(0.01, 0.02)}}
	vlo, vhi, err := codeClamp(0.25, -128, 127)
	if err != nil {
		t.Fatal(err)
	}
	got, err := k.codeBounds()
	if err != nil || got != (epilogueBounds{act: actCodes[""], vlo: max(vlo, 0), vhi: vhi}) {
		t.Fatalf("ReLU int8: %+v, %v (codeClamp %g, %g)", got, err, vlo, vhi)
	}
	k.host[1] = f32(float32(math.NaN()), 1)
	if again, _ := k.codeBounds(); again != got {
		t.Errorf("bounds recomputed: %+v, then %+v", got, again)
	}
	k2 := &gemmKernel{p: p, host: []*ir.Tensor{w, f32(float32(math.NaN()), 1), f32(0.01, 0.02)}}
	if b, _ := k2.codeBounds(); b.act != actCodes["Relu"] || b.vlo != vlo {
		t.Errorf("NaN bias: %+v, want the ReLU kept and vlo %g", b, vlo)
	}
	k3 := &gemmKernel{p: gemmParams{In: cuda.R8I, Out: ir.Float32, Act: actCodes["Relu"]}}
	if b, err := k3.codeBounds(); err != nil || b != (epilogueBounds{act: actCodes["Relu"]}) {
		t.Errorf("float32 output: %+v, %v", b, err)
	}
	k4 := &gemmKernel{p: gemmParams{In: cuda.R8I, Out: ir.Int8, YScale: 0x1p-50}}
	if _, err := k4.codeBounds(); err == nil {
		t.Error("y_scale 2^-50 accepted")
	}
}
