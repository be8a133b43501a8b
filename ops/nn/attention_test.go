package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/ir"
)

// refAttention is a direct 4-D attention with grouped heads, an additive
// [sq, T] mask (nil for none) and causal masking with offset past.
func refAttention(q, k, v []float64, b, hq, hkv, sq, T, d, dv int64, mask []float64, causal bool, past int64) []float64 {
	out := make([]float64, b*hq*sq*dv)
	for bi := int64(0); bi < b; bi++ {
		for h := int64(0); h < hq; h++ {
			kh := h / (hq / hkv)
			for i := int64(0); i < sq; i++ {
				logits := make([]float64, T)
				for j := int64(0); j < T; j++ {
					s := 0.0
					for x := int64(0); x < d; x++ {
						s += q[((bi*hq+h)*sq+i)*d+x] * k[((bi*hkv+kh)*T+j)*d+x]
					}
					s /= math.Sqrt(float64(d))
					if mask != nil {
						s += mask[i*T+j]
					}
					if causal && j > i+past {
						s = math.Inf(-1)
					}
					logits[j] = s
				}
				mx := math.Inf(-1)
				for _, l := range logits {
					mx = math.Max(mx, l)
				}
				sum := 0.0
				for j := range logits {
					logits[j] = math.Exp(logits[j] - mx)
					sum += logits[j]
				}
				for x := int64(0); x < dv; x++ {
					acc := 0.0
					for j := int64(0); j < T; j++ {
						acc += logits[j] / sum * v[((bi*hkv+kh)*T+j)*dv+x]
					}
					out[((bi*hq+h)*sq+i)*dv+x] = acc
				}
			}
		}
	}
	return out
}

func TestAttention(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	// grouped-query: 4 query heads share 2 key/value heads
	Q, K, V := randT(r, 2, 4, 3, 5), randT(r, 2, 2, 6, 5), randT(r, 2, 2, 6, 3)
	mask := randT(r, 3, 6)
	want := refAttention(Q.Float64s(), K.Float64s(), V.Float64s(), 2, 4, 2, 3, 6, 5, 3, mask.Float64s(), false, 0)
	near(t, "gqa with mask", mustCall(t, "Attention", 23, nil, Q, K, V, mask), dims(2, 4, 3, 3), want, 1e-12)
	want = refAttention(Q.Float64s(), K.Float64s(), V.Float64s(), 2, 4, 2, 3, 6, 5, 3, nil, true, 0)
	near(t, "causal", mustCall(t, "Attention", 23, attrs(aInt("is_causal", 1)), Q, K, V), dims(2, 4, 3, 3), want, 1e-12)

	// the KV cache: present = past ++ current, and causal masking is offset by the past
	pk, pv := randT(r, 2, 2, 4, 5), randT(r, 2, 2, 4, 3)
	outs, err := call("Attention", 23, 3, attrs(aInt("is_causal", 1)), Q, K, V, nil, pk, pv)
	if err != nil {
		t.Fatal(err)
	}
	cat := func(p, c *ir.Tensor, s1, s2, d int64) []float64 {
		var o []float64
		for i := int64(0); i < 4; i++ { // batch·heads
			o = append(o, p.Float64s()[i*s1*d:(i+1)*s1*d]...)
			o = append(o, c.Float64s()[i*s2*d:(i+1)*s2*d]...)
		}
		return o
	}
	fk, fv := cat(pk, K, 4, 6, 5), cat(pv, V, 4, 6, 3)
	near(t, "present_key", outs[1], dims(2, 2, 10, 5), fk, 0)
	near(t, "present_value", outs[2], dims(2, 2, 10, 3), fv, 0)
	near(t, "with past", outs[0], dims(2, 4, 3, 3), refAttention(Q.Float64s(), fk, fv, 2, 4, 2, 3, 10, 5, 3, nil, true, 4), 1e-12)

	// 3-D inputs are the same computation with heads folded into the last axis
	q3 := ir.NewTensor(ir.Float64, dims(2, 3, 20))
	k3 := ir.NewTensor(ir.Float64, dims(2, 6, 10))
	v3 := ir.NewTensor(ir.Float64, dims(2, 6, 6))
	fold := func(dst, src *ir.Tensor, h, s, d int64) {
		for bi := int64(0); bi < 2; bi++ {
			for hi := int64(0); hi < h; hi++ {
				for si := int64(0); si < s; si++ {
					for x := int64(0); x < d; x++ {
						dst.SetFloat64At((bi*s+si)*h*d+hi*d+x, src.Float64At(((bi*h+hi)*s+si)*d+x))
					}
				}
			}
		}
	}
	fold(q3, Q, 4, 3, 5)
	fold(k3, K, 2, 6, 5)
	fold(v3, V, 2, 6, 3)
	y4 := mustCall(t, "Attention", 23, nil, Q, K, V)
	y3 := mustCall(t, "Attention", 23, attrs(aInt("q_num_heads", 4), aInt("kv_num_heads", 2)), q3, k3, v3)
	want3 := ir.NewTensor(ir.Float64, dims(2, 3, 12))
	fold(want3, y4, 4, 3, 3)
	near(t, "3-D", y3, dims(2, 3, 12), want3.Float64s(), 1e-12)

	// a fully masked row gives zeros, not NaN
	bm := ir.FromInt64s(ir.Bool, dims(3, 6), []int64{0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0})
	y := mustCall(t, "Attention", 23, nil, Q, K, V, bm)
	for i := int64(0); i < 3; i++ {
		if y.Float64At(i) != 0 {
			t.Fatalf("masked row gave %v", y.Float64s()[:3])
		}
	}
	// the third row attends to key 0 only: it returns V[0]
	for x := int64(0); x < 3; x++ {
		if got, w := y.Float64At(2*3+x), V.Float64At(x); math.Abs(got-w) > 1e-15 {
			t.Fatalf("row attending one key gave %v, want %v", got, w)
		}
	}

	wantErr(t, "Attention", 23, nil, "3-D or all 4-D", Q, randT(r, 2, 6, 5), V)
	wantErr(t, "Attention", 23, nil, "head size", Q, randT(r, 2, 2, 6, 4), V)
	wantErr(t, "Attention", 23, nil, "multiple", randT(r, 2, 3, 3, 5), K, V)
	wantErr(t, "Attention", 23, nil, "q_num_heads", q3, k3, v3)
	wantErr(t, "Attention", 23, nil, "attn_mask", Q, K, V, randT(r, 4, 6))
}

func TestRotaryEmbedding(t *testing.T) {
	x := f64(dims(1, 1, 1, 4), 1, 2, 3, 4)
	cos, sin := f64(dims(1, 1, 2), 0, 1), f64(dims(1, 1, 2), 1, 0)
	// halves: pairs (x0, x2) and (x1, x3); the first turns by 90°
	near(t, "halves", mustCall(t, "RotaryEmbedding", 23, nil, x, cos, sin), dims(1, 1, 1, 4), []float64{-3, 2, 1, 4}, 0)
	// interleaved: pairs (x0, x1) and (x2, x3)
	near(t, "interleaved", mustCall(t, "RotaryEmbedding", 23, attrs(aInt("interleaved", 1)), x, cos, sin),
		dims(1, 1, 1, 4), []float64{-2, 1, 3, 4}, 0)
	// rotary_embedding_dim 2 rotates only (x0, x1); position ids pick rows of the caches
	cache := f64(dims(3, 1), 0, 0.5, -1)
	sc := f64(dims(3, 1), 1, 0.5, 0)
	near(t, "partial with positions", mustCall(t, "RotaryEmbedding", 23, attrs(aInt("rotary_embedding_dim", 2)),
		x, cache, sc, i64(dims(1, 1), 2)), dims(1, 1, 1, 4), []float64{-1, -2, 3, 4}, 0)
	// 3-D input [b, s, heads·d] with num_heads
	x3 := f64(dims(1, 1, 4), 1, 2, 3, 4)
	near(t, "3-D", mustCall(t, "RotaryEmbedding", 23, attrs(aInt("num_heads", 2)), x3, f64(dims(1, 1, 1), 0), f64(dims(1, 1, 1), 1)),
		dims(1, 1, 4), []float64{-2, 1, -4, 3}, 0)
	wantErr(t, "RotaryEmbedding", 23, nil, "position", x, cache, sc, i64(dims(1, 1), 7))
	wantErr(t, "RotaryEmbedding", 23, nil, "num_heads", x3, cos, sin)
	wantErr(t, "RotaryEmbedding", 23, attrs(aInt("rotary_embedding_dim", 3)), "even", x, cos, sin)
}
