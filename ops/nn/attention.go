package nn

import (
	"math"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// Attention (opsets 23, 24): softmax(Q·Kᵀ·scale + bias)·V with optional
// KV cache (past_key/past_value → present_key/present_value), grouped-query
// heads, boolean or additive masks, causal masking, softcap, and opset 24's
// nonpad_kv_seqlen. A row whose every key is masked gives zeros.

func init() {
	ops.Register(&ops.Op{Type: "Attention", MinOpset: 23, Run: attention, Infer: inferAttention})
}

// attnDims is the 4-D view of an Attention node's tensors.
type attnDims struct {
	b, hq, hkv, sq, skv, past, d, dv int64
	threeD                           bool
}

func (a *attnDims) total() int64 { return a.past + a.skv }

// attnShape derives the dims from Q, K, V (and past_key) dims, -1 unknown.
func attnShape(c attrGetter, q, k, v, pk []int64) (*attnDims, error) {
	if len(q) != len(k) || len(q) != len(v) || (len(q) != 3 && len(q) != 4) {
		return nil, c.Errorf("Q %v, K %v and V %v must all be 3-D or all 4-D", q, k, v)
	}
	qh, kvh := c.Int("q_num_heads", 0), c.Int("kv_num_heads", 0)
	if err := c.Err(); err != nil {
		return nil, err
	}
	a := &attnDims{b: q[0]}
	if differ(k[0], q[0]) || differ(v[0], q[0]) {
		return nil, c.Errorf("Q %v, K %v and V %v disagree on the batch size", q, k, v)
	}
	if differ(k[1], v[1]) || (len(q) == 4 && differ(k[2], v[2])) {
		return nil, c.Errorf("K %v and V %v disagree on heads or sequence length", k, v)
	}
	if len(q) == 3 {
		if qh <= 0 || kvh <= 0 {
			return nil, c.Errorf("3-D inputs need q_num_heads and kv_num_heads")
		}
		a.threeD = true
		a.hq, a.hkv, a.sq, a.skv = qh, kvh, q[1], k[1]
		if q[2]%qh != 0 || k[2]%kvh != 0 || v[2]%kvh != 0 { // -1 (unknown) is not divisible either
			if q[2] >= 0 && k[2] >= 0 && v[2] >= 0 {
				return nil, c.Errorf("hidden sizes %d, %d, %d are not divisible by the head counts %d, %d", q[2], k[2], v[2], qh, kvh)
			}
		}
		a.d, a.dv = unknownDiv(q[2], qh), unknownDiv(v[2], kvh)
		if differ(unknownDiv(k[2], kvh), a.d) {
			return nil, c.Errorf("Q head size %d differs from K head size %d", a.d, k[2]/kvh)
		}
	} else {
		a.hq, a.hkv, a.sq, a.skv, a.d, a.dv = q[1], k[1], q[2], k[2], q[3], v[3]
		if differ(k[3], a.d) {
			return nil, c.Errorf("Q head size %d differs from K head size %d", a.d, k[3])
		}
	}
	if a.hkv > 0 && a.hq >= 0 && a.hq%a.hkv != 0 {
		return nil, c.Errorf("%d query heads are not a multiple of %d key/value heads", a.hq, a.hkv)
	}
	if pk != nil {
		if len(pk) != 4 {
			return nil, c.Errorf("past_key has rank %d, want 4", len(pk))
		}
		a.past = pk[2]
	}
	return a, nil
}

func inferAttention(c *ops.InferCtx) error {
	q, err := c.Input(0)
	if err != nil {
		return err
	}
	k, v := optType(c, 1), optType(c, 2)
	pk := optType(c, 4)
	if k == nil || v == nil || !q.HasShape || !k.HasShape || !v.HasShape || (pk != nil && !pk.HasShape) {
		for i := range c.Out {
			if wantOut(c.Node, i) {
				c.Out[i] = &ir.Type{DType: q.DType}
			}
		}
		return nil
	}
	var pkd []int64
	if pk != nil {
		pkd = dimsOf(pk.Shape)
	}
	a, err := attnShape(c, dimsOf(q.Shape), dimsOf(k.Shape), dimsOf(v.Shape), pkd)
	if err != nil {
		return err
	}
	dim := knownOrUnknown
	total := ir.Unknown()
	if a.skv >= 0 && a.past >= 0 {
		total = ir.D(a.total())
	}
	if a.threeD {
		c.Out[0] = ir.TensorType(q.DType, ir.Shape{q.Shape[0], q.Shape[1], dim(a.hq * a.dv)})
		if a.dv < 0 {
			c.Out[0].Shape[2] = ir.Unknown()
		}
	} else {
		c.Out[0] = ir.TensorType(q.DType, ir.Shape{q.Shape[0], q.Shape[1], q.Shape[2], v.Shape[3]})
	}
	if wantOut(c.Node, 1) {
		c.Out[1] = ir.TensorType(k.DType, ir.Shape{q.Shape[0], dim(a.hkv), total, dim(a.d)})
	}
	if wantOut(c.Node, 2) {
		c.Out[2] = ir.TensorType(v.DType, ir.Shape{q.Shape[0], dim(a.hkv), total, dim(a.dv)})
	}
	if wantOut(c.Node, 3) {
		c.Out[3] = ir.TensorType(q.DType, ir.Shape{q.Shape[0], dim(a.hq), dim(a.sq), total})
	}
	return nil
}

// heads4D returns t as [b, h, s, d] values: 3-D [b, s, h·d] inputs are split.
func heads4D(t *ir.Tensor, threeD bool, h int64) []float64 {
	v := floats(t)
	if !threeD {
		return v
	}
	b, s, hd := t.Dims[0], t.Dims[1], t.Dims[2]
	d := hd / h
	out := make([]float64, len(v))
	for bi := int64(0); bi < b; bi++ {
		for si := int64(0); si < s; si++ {
			for hi := int64(0); hi < h; hi++ {
				copy(out[((bi*h+hi)*s+si)*d:][:d], v[(bi*s+si)*hd+hi*d:][:d])
			}
		}
	}
	return out
}

// withPast concatenates past [b, h, p, d] and cur [b, h, s, d] along the sequence.
func withPast(past, cur []float64, b, h, p, s, d int64) []float64 {
	if p == 0 {
		return cur
	}
	out := make([]float64, b*h*(p+s)*d)
	for i := int64(0); i < b*h; i++ {
		copy(out[i*(p+s)*d:], past[i*p*d:(i+1)*p*d])
		copy(out[(i*(p+s)+p)*d:], cur[i*s*d:(i+1)*s*d])
	}
	return out
}

func attention(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	for i, name := range []string{"Q", "K", "V"} {
		if _, err := needFloat(c, in, i, name); err != nil {
			return nil, err
		}
	}
	Q, K, V := in[0], in[1], in[2]
	mask, pastK, pastV, nonpad := opt(in, 3), opt(in, 4), opt(in, 5), opt(in, 6)
	if (pastK == nil) != (pastV == nil) {
		return nil, c.Errorf("past_key and past_value must be given together")
	}
	var pkd []int64
	if pastK != nil {
		pkd = pastK.Dims
	}
	a, err := attnShape(c, Q.Dims, K.Dims, V.Dims, pkd)
	if err != nil {
		return nil, err
	}
	causal := c.Int("is_causal", 0) != 0
	softcap := float64(c.Float("softcap", 0))
	mode := c.Int("qk_matmul_output_mode", 0)
	scale := 1 / math.Sqrt(float64(a.d))
	if c.Has("scale") {
		scale = float64(c.Float("scale", 1))
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	if pastK != nil {
		if want := []int64{a.b, a.hkv, a.past, a.d}; !equalDims(pastK.Dims, want) {
			return nil, c.Errorf("past_key has dims %v, want %v", pastK.Dims, want)
		}
		if want := []int64{a.b, a.hkv, a.past, a.dv}; !equalDims(pastV.Dims, want) {
			return nil, c.Errorf("past_value has dims %v, want %v", pastV.Dims, want)
		}
	}
	T := a.total()
	var lens []int64
	if nonpad != nil {
		lens = nonpad.Int64s()
		if int64(len(lens)) != a.b {
			return nil, c.Errorf("nonpad_kv_seqlen has %d values, want one per batch (%d)", len(lens), a.b)
		}
	}
	// The mask broadcasts to [b, hq, sq, T]; a shorter last axis is padded
	// with "masked".
	var maskIdx func(b, h, i, j int64) (float64, bool)
	if mask != nil {
		md := mask.Dims
		if len(md) < 2 || len(md) > 4 {
			return nil, c.Errorf("attn_mask has rank %d, want 2 to 4", len(md))
		}
		full := []int64{a.b, a.hq, a.sq, T}
		mlast := md[len(md)-1]
		if mlast > T {
			return nil, c.Errorf("attn_mask's last axis %d is longer than the %d keys", mlast, T)
		}
		padded := append(append([]int64{}, md[:len(md)-1]...), T)
		if !unidirectional(padded, full) {
			return nil, c.Errorf("attn_mask dims %v do not broadcast to %v", md, full)
		}
		ms := floats(mask)
		isBool := mask.DType == ir.Bool
		st := ops.Strides(md)
		off := 4 - len(md)
		maskIdx = func(b, h, i, j int64) (float64, bool) {
			if j >= mlast {
				return math.Inf(-1), false
			}
			pos := [4]int64{b, h, i, j}
			idx := int64(0)
			for k := range md {
				if md[k] != 1 {
					idx += pos[off+k] * st[k]
				}
			}
			v := ms[idx]
			if isBool {
				if v != 0 {
					return 0, true
				}
				return math.Inf(-1), false
			}
			return v, true
		}
	}
	qs := heads4D(Q, a.threeD, a.hq)
	ks := withPast(floats(pastK), heads4D(K, a.threeD, a.hkv), a.b, a.hkv, a.past, a.skv, a.d)
	vs := withPast(floats(pastV), heads4D(V, a.threeD, a.hkv), a.b, a.hkv, a.past, a.skv, a.dv)
	group := a.hq / a.hkv
	y := make([]float64, a.b*a.hq*a.sq*a.dv)
	qk := make([]float64, a.b*a.hq*a.sq*T)
	row := make([]float64, T)
	for b := int64(0); b < a.b; b++ {
		for h := int64(0); h < a.hq; h++ {
			kvh := h / group
			kb := ks[(b*a.hkv+kvh)*T*a.d:][:T*a.d]
			vb := vs[(b*a.hkv+kvh)*T*a.dv:][:T*a.dv]
			for i := int64(0); i < a.sq; i++ {
				qrow := qs[((b*a.hq+h)*a.sq+i)*a.d:][:a.d]
				qkRow := qk[((b*a.hq+h)*a.sq+i)*T:][:T]
				for j := int64(0); j < T; j++ {
					var s float64
					for d, qv := range qrow {
						s += qv * kb[j*a.d+int64(d)]
					}
					s *= scale
					if softcap > 0 {
						s = softcap * math.Tanh(s/softcap)
					}
					bias := 0.0
					if maskIdx != nil {
						m, _ := maskIdx(b, h, i, j)
						bias += m
					}
					if causal {
						offset := a.past
						if pastK == nil && lens != nil {
							offset = lens[b] - a.sq
						}
						if j > i+offset {
							bias = math.Inf(-1)
						}
					}
					if lens != nil && j >= lens[b] {
						bias = math.Inf(-1)
					}
					row[j] = s + bias
					// qk_matmul_output as ONNX's reference and conformance
					// data have it: modes 0 and 1 the scaled (softcapped)
					// product, 2 with the mask added, 3 the softmax.
					switch mode {
					case 0, 1:
						qkRow[j] = s
					case 2:
						qkRow[j] = s + bias
					}
				}
				softmaxRow(row)
				if mode == 3 {
					copy(qkRow, row)
				}
				yrow := y[((b*a.hq+h)*a.sq+i)*a.dv:][:a.dv]
				for j, p := range row {
					if p == 0 {
						continue
					}
					for d := range yrow {
						yrow[d] += p * vb[int64(j)*a.dv+int64(d)]
					}
				}
			}
		}
	}
	var yt *ir.Tensor
	if a.threeD {
		// back to [b, sq, hq·dv]
		t := make([]float64, len(y))
		for b := int64(0); b < a.b; b++ {
			for h := int64(0); h < a.hq; h++ {
				for i := int64(0); i < a.sq; i++ {
					copy(t[((b*a.sq+i)*a.hq+h)*a.dv:][:a.dv], y[((b*a.hq+h)*a.sq+i)*a.dv:][:a.dv])
				}
			}
		}
		yt = fromFloats(Q.DType, []int64{a.b, a.sq, a.hq * a.dv}, t)
	} else {
		yt = fromFloats(Q.DType, []int64{a.b, a.hq, a.sq, a.dv}, y)
	}
	outs := []*ir.Tensor{yt}
	if len(c.Node.Outputs) > 1 {
		outs = append(outs, fromFloats(K.DType, []int64{a.b, a.hkv, T, a.d}, ks))
	}
	if len(c.Node.Outputs) > 2 {
		outs = append(outs, fromFloats(V.DType, []int64{a.b, a.hkv, T, a.dv}, vs))
	}
	if len(c.Node.Outputs) > 3 {
		outs = append(outs, fromFloats(Q.DType, []int64{a.b, a.hq, a.sq, T}, qk))
	}
	return outs, nil
}

// softmaxRow normalizes v in place; a row that is entirely -inf becomes zeros.
func softmaxRow(v []float64) {
	m := math.Inf(-1)
	for _, x := range v {
		if x > m {
			m = x
		}
	}
	if math.IsInf(m, -1) {
		clear(v)
		return
	}
	var s float64
	for i, x := range v {
		v[i] = math.Exp(x - m)
		s += v[i]
	}
	for i := range v {
		v[i] /= s
	}
}

// differ reports two known dims that are not equal (-1 is unknown).
func differ(a, b int64) bool { return a >= 0 && b >= 0 && a != b }

// unknownDiv is a/b, or -1 when a is unknown.
func unknownDiv(a, b int64) int64 {
	if a < 0 {
		return -1
	}
	return a / b
}

func equalDims(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
