package kiln

import (
	"fmt"
	"math"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// kiln.Attention(Q, K, V, [Mask]): scaled dot-product attention as one layer,
//
//	S = scale · Q·Kᵀ + Mask;  P = softmax(S) over the last axis;  Y = P·V
//
// Q is [..., Sq, D]; K is [..., Sk, D], or [..., D, Sk] with k_transposed=1
// (the layout PyTorch's export already computes); V is [..., Sk, Dv]; the
// batch dims broadcast as in MatMul and Mask (additive, float) broadcasts
// onto [..., Sq, Sk]. Attributes: scale (float, default 1/√D),
// k_transposed (int), nan_to_zero (int: a probability that is NaN, as in a
// fully masked row where every score is -inf, counts as 0, which is what
// PyTorch's export writes as Where(IsNaN(P), 0, P)). Softmax runs in float64
// here and in FP32 in every backend, inside INT8/FP8 engines too.
func init() {
	ops.Register(&ops.Op{Type: "Attention", Domain: Domain, MinOpset: 1, MaxOpset: 1, Run: attention, Infer: inferAttention})
}

// AttentionDims is the geometry of one kiln.Attention call.
type AttentionDims struct {
	Batch         []int64 // broadcast batch dims
	Sq, Sk, D, Dv int64
	KTransposed   bool
	Scale         float64
	NaNToZero     bool
	QIdx, KIdx    []int64 // per batch index: offset of the matrix in Q/K/V (in matrices)
	VIdx, MaskIdx []int64
	MaskRow       int64 // mask strides over (i, j) of the score matrix, in elements
	MaskCol       int64
	MaskDims      []int64
}

// AttentionGeometry checks the shapes and resolves broadcasting.
func AttentionGeometry(n *ir.Node, q, k, v, mask []int64) (*AttentionDims, error) {
	if len(q) < 2 || len(k) < 2 || len(v) < 2 {
		return nil, errAttn(n, "Q, K and V need rank >= 2, got %v %v %v", q, k, v)
	}
	kt, err := n.AttrInt("k_transposed", 0)
	if err != nil {
		return nil, err
	}
	nz, err := n.AttrInt("nan_to_zero", 0)
	if err != nil {
		return nil, err
	}
	a := &AttentionDims{Sq: q[len(q)-2], D: q[len(q)-1], KTransposed: kt != 0, NaNToZero: nz != 0}
	kd, ks := k[len(k)-1], k[len(k)-2]
	if a.KTransposed {
		kd, ks = ks, kd
	}
	a.Sk = ks
	if kd != a.D {
		return nil, errAttn(n, "Q %v and K %v (k_transposed=%d) disagree on the head size", q, k, kt)
	}
	if v[len(v)-2] != a.Sk {
		return nil, errAttn(n, "V %v does not have K's %d keys", v, a.Sk)
	}
	a.Dv = v[len(v)-1]
	s, err := n.AttrFloat("scale", 0)
	if err != nil {
		return nil, err
	}
	a.Scale = float64(s)
	if n.Attr("scale") == nil {
		a.Scale = 1 / math.Sqrt(float64(a.D))
	}
	a.Batch, err = ops.BroadcastDims(q[:len(q)-2], k[:len(k)-2], v[:len(v)-2])
	if err != nil {
		return nil, errAttn(n, "batch dims of Q %v, K %v, V %v: %v", q, k, v, err)
	}
	nb := int64(1)
	for _, d := range a.Batch {
		nb *= d
	}
	ins := [][]int64{q[:len(q)-2], k[:len(k)-2], v[:len(v)-2]}
	if mask != nil {
		full := append(append([]int64{}, a.Batch...), a.Sq, a.Sk)
		if got, err := ops.BroadcastDims(full, mask); err != nil || !sameDims(got, full) {
			return nil, errAttn(n, "mask %v does not broadcast onto the scores %v", mask, full)
		}
		a.MaskDims = mask
		// The mask's batch part, padded to the batch rank.
		mb := mask[:max(0, len(mask)-2)]
		ins = append(ins, mb)
		if len(mask) >= 2 && mask[len(mask)-2] != 1 {
			a.MaskRow = mask[len(mask)-1]
		}
		if len(mask) >= 1 && mask[len(mask)-1] != 1 {
			a.MaskCol = 1
		}
	}
	b := ops.NewBroadcast(a.Batch, ins...)
	idx := make([][]int64, len(ins))
	for k := range ins {
		idx[k] = make([]int64, nb)
		for i := range nb {
			idx[k][i] = b.Index(k, i)
		}
	}
	a.QIdx, a.KIdx, a.VIdx = idx[0], idx[1], idx[2]
	if mask != nil {
		a.MaskIdx = idx[3]
	}
	return a, nil
}

// MaskMatrix returns the elements one mask matrix spans (for offsets).
func (a *AttentionDims) MaskMatrix() int64 {
	m := int64(1)
	if len(a.MaskDims) >= 2 {
		m = a.MaskDims[len(a.MaskDims)-1] * a.MaskDims[len(a.MaskDims)-2]
	} else if len(a.MaskDims) == 1 {
		m = a.MaskDims[0]
	}
	return m
}

func errAttn(n *ir.Node, format string, args ...any) error {
	return fmt.Errorf("%s: %s", n, fmt.Sprintf(format, args...))
}

func attention(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	if len(in) < 3 || in[0] == nil || in[1] == nil || in[2] == nil {
		return nil, c.Errorf("needs Q, K and V")
	}
	q, k, v := in[0], in[1], in[2]
	var mask *ir.Tensor
	var maskDims []int64
	if len(in) > 3 && in[3] != nil {
		mask, maskDims = in[3], in[3].Dims
	}
	for _, t := range in {
		if t != nil && !t.DType.IsFloat() {
			return nil, c.Errorf("inputs must be floating point, got %s", t.DType)
		}
	}
	a, err := AttentionGeometry(c.Node, q.Dims, k.Dims, v.Dims, maskDims)
	if err != nil {
		return nil, err
	}
	outDims := append(append([]int64{}, a.Batch...), a.Sq, a.Dv)
	out := ir.NewTensor(q.DType, outDims)
	s := make([]float64, a.Sk)
	mm := a.MaskMatrix()
	for b := range int64(len(a.QIdx)) {
		qo, ko, vo := a.QIdx[b]*a.Sq*a.D, a.KIdx[b]*a.Sk*a.D, a.VIdx[b]*a.Sk*a.Dv
		yo := b * a.Sq * a.Dv
		for i := range a.Sq {
			mx := math.Inf(-1)
			for j := range a.Sk {
				acc := 0.0
				for d := range a.D {
					kk := ko + j*a.D + d
					if a.KTransposed {
						kk = ko + d*a.Sk + j
					}
					acc += q.Float64At(qo+i*a.D+d) * k.Float64At(kk)
				}
				acc *= a.Scale
				if mask != nil {
					acc += mask.Float64At(a.MaskIdx[b]*mm + i*a.MaskRow + j*a.MaskCol)
				}
				s[j] = acc
				mx = math.Max(mx, acc)
			}
			sum := 0.0
			for j := range s {
				s[j] = math.Exp(s[j] - mx)
				sum += s[j]
			}
			for j := range s {
				s[j] /= sum
				if a.NaNToZero && math.IsNaN(s[j]) {
					s[j] = 0
				}
			}
			for e := range a.Dv {
				acc := 0.0
				for j := range a.Sk {
					acc += s[j] * v.Float64At(vo+j*a.Dv+e)
				}
				out.SetFloat64At(yo+i*a.Dv+e, acc)
			}
		}
	}
	return []*ir.Tensor{out}, nil
}

func inferAttention(c *ops.InferCtx) error {
	q, err := c.Input(0)
	if err != nil {
		return err
	}
	k, err1 := c.Input(1)
	v, err2 := c.Input(2)
	if err1 != nil || err2 != nil {
		return c.Errorf("needs Q, K and V")
	}
	if !q.HasShape || !k.HasShape || !v.HasShape {
		c.Out[0] = &ir.Type{Kind: ir.KindTensor, DType: q.DType}
		return nil
	}
	if len(q.Shape) < 2 || len(v.Shape) < 2 || len(k.Shape) < 2 {
		return c.Errorf("Q, K and V need rank >= 2")
	}
	batch, err := ops.BroadcastShapes(q.Shape[:len(q.Shape)-2], k.Shape[:len(k.Shape)-2], v.Shape[:len(v.Shape)-2])
	if err != nil {
		return c.Errorf("batch dims: %v", err)
	}
	s := append(append(ir.Shape{}, batch...), q.Shape[len(q.Shape)-2], v.Shape[len(v.Shape)-1])
	c.Out[0] = ir.TensorType(q.DType, s)
	return nil
}
