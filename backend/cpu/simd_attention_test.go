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

// Float32 attention against the float64 reference: scores are float32
// GEMM sums (relative error ~ D·2^-24), softmax in float32
// (f32.SoftmaxRowErr), P·V another float32 GEMM. Measured worst cases
// over the cases below (head sizes up to 64, keys up to 130): 6.3e-7 and
// 4e-14; the bounds leave about 10× headroom.
const (
	attnMaxAbsErr = 5e-6  // max |got − want| over max |want|
	attnCosErr    = 1e-12 // 1 − cosine(got, want)
)

func TestSimdAttention(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	type tc struct {
		b, h, sq, sk, d, dv int64
		kt, nanGuard        bool
		maskDims            []int64 // nil: no mask
		fullyMasked         bool    // batch 0, first query row sees no key
	}
	var cases []tc
	for _, s := range [][2]int64{{1, 1}, {7, 9}, {8, 8}, {9, 31}, {31, 32}, {33, 33}, {64, 65}, {128, 128}, {130, 3}} {
		cases = append(cases,
			tc{1, 4, s[0], s[1], 64, 64, true, true, []int64{1, 1, 1, s[1]}, true},
			tc{2, 3, s[0], s[1], 16, 8, false, false, []int64{s[0], s[1]}, false},
			tc{1, 2, s[0], s[1], 5, 33, false, false, nil, false})
	}
	cases = append(cases, tc{2, 2, 9, 12, 8, 8, true, true, []int64{2, 1, 9, 1}, true}) // one mask value per row
	for ci, c := range cases {
		t.Run(fmt.Sprint(ci), func(t *testing.T) {
			q := randF32(r, c.b, c.h, c.sq, c.d)
			k := randF32(r, c.b, c.h, c.sk, c.d)
			if c.kt {
				k = randF32(r, c.b, c.h, c.d, c.sk)
			}
			v := randF32(r, c.b, 1, c.sk, c.dv) // broadcast over heads
			in := []*ir.Tensor{q, k, v}
			attrs := []*ir.Attribute{aFloat("scale", float32(1/math.Sqrt(float64(c.d))))}
			if c.kt {
				attrs = append(attrs, aInt("k_transposed", 1))
			}
			if c.nanGuard {
				attrs = append(attrs, aInt("nan_to_zero", 1))
			}
			if c.maskDims != nil {
				m := ir.NewTensor(ir.Float32, c.maskDims)
				for i := range m.F32() {
					m.F32()[i] = float32(r.NormFloat64())
					if i%5 == 3 {
						m.F32()[i] = float32(math.Inf(-1))
					}
				}
				if c.fullyMasked {
					last := c.maskDims[len(c.maskDims)-1]
					for i := range last {
						m.F32()[i] = float32(math.Inf(-1))
					}
				}
				in = append(in, m)
			}
			n := node("kiln", "Attention", len(in), attrs...)
			want := reference(t, n, in)
			l := layer(n, in, nil, want, engine.FP32)
			ts := simdTransformerBackend{}.Tactics(l)
			if len(ts) == 0 {
				t.Skip("no AVX-512 here")
			}
			saved := avx.Variant
			defer func() { avx.Variant = saved }()
			for _, variant := range avx.Variants() {
				avx.Variant = variant
				name := fmt.Sprintf("%s variant %d", ts[0].Name(), variant)
				got := execKernel(t, ts[0], l, in, 1)
				checkAttention(t, name, got, want)
				for th := 2; th <= 3; th++ {
					sameBits(t, fmt.Sprintf("%s threads %d vs 1", name, th), execKernel(t, ts[0], l, in, th), got)
				}
			}
		})
	}
}

// checkAttention compares with the reference: NaN where it has NaN (no
// nan_to_zero), max-abs error relative to the output's scale, cosine.
func checkAttention(t *testing.T, name string, got, want *ir.Tensor) {
	t.Helper()
	g, w := got.F32(), want.F32()
	var dot, gg, ww, scale, worst float64
	for i := range w {
		a, b := float64(g[i]), float64(w[i])
		if math.IsNaN(a) || math.IsNaN(b) {
			if math.IsNaN(a) != math.IsNaN(b) {
				t.Fatalf("%s: element %d = %g, want %g", name, i, a, b)
			}
			continue
		}
		dot, gg, ww = dot+a*b, gg+a*a, ww+b*b
		scale = math.Max(scale, math.Abs(b))
		worst = math.Max(worst, math.Abs(a-b))
	}
	if scale == 0 {
		return
	}
	if testing.Verbose() {
		t.Logf("%s: max error %.3g of %.3g, 1-cos %.3g", name, worst/scale, scale, 1-dot/math.Sqrt(gg*ww))
	}
	if worst > attnMaxAbsErr*scale {
		t.Errorf("%s: max |error| %.3g > %g × %.3g", name, worst, attnMaxAbsErr, scale)
	}
	if c := dot / math.Sqrt(gg*ww); 1-c > attnCosErr {
		t.Errorf("%s: 1 − cosine = %.3g > %g", name, 1-c, attnCosErr)
	}
}

// go test -bench SimdAttentionBert4 ./backend/cpu: one bert4 attention
// layer (4 heads, 128 tokens, head size 64, mask, K given transposed) on
// one and on two threads.
func BenchmarkSimdAttentionBert4(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	in := []*ir.Tensor{randF32(r, 1, 4, 128, 64), randF32(r, 1, 4, 64, 128), randF32(r, 1, 4, 128, 64), randF32(r, 1, 1, 128, 128)}
	n := node("kiln", "Attention", 4, aFloat("scale", 0.125), aInt("k_transposed", 1), aInt("nan_to_zero", 1))
	out := ir.NewTensor(ir.Float32, []int64{1, 4, 128, 64})
	l := layer(n, in, nil, out, engine.FP32)
	ts := simdTransformerBackend{}.Tactics(l)
	if len(ts) == 0 {
		b.Skip("no AVX-512 here")
	}
	low, err := ts[0].Lower(l)
	if err != nil {
		b.Fatal(err)
	}
	dec, _ := engine.LookupKernel(low.Kernel)
	k, err := dec(low.Params, low.Weights)
	if err != nil {
		b.Fatal(err)
	}
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("threads=%d", threads), func(b *testing.B) {
			var scratch []byte
			x := &engine.Exec{Threads: threads, Scratch: func(n int) []byte {
				if len(scratch) < n {
					scratch = ir.AlignedBytes(int64(n))
				}
				return scratch[:n]
			}}
			for b.Loop() {
				if err := k.Run(x, in, []*ir.Tensor{out}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
