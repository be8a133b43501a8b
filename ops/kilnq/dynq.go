package kilnq

import (
	"fmt"
	"math"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
	"github.com/kilnml/kiln/ops/kiln"
)

// kiln.DynQMatMul(A, Bq, [Bias], [Z]): MatMul with per-token dynamic INT8
// activation quantization (ONNX Runtime's dynamic quantization, symmetric
// and per row). A is float32 [..., K]; Bq int8 [K, N] constant weights with
// w_scales (one per output column, or one); Bias float32 [N]; Z float32 of
// the output's shape; activation attributes as kiln.MatMul. For each row r
// of A (all axes but the last), in float32:
//
//	amax_r  = max |A[r, :]| over finite values
//	scale_r = amax_r / 127 (1 when amax_r is 0)
//	q[r, k] = clamp(round_half_even(A[r, k] / scale_r), -127, 127) (NaN → 0)
//	acc     = Σ_k q[r, k]·Bq[k, c] exactly
//	y       = act(float32(acc)·float32(scale_r·w_scales[c]) + Bias[c] + Z)
//
// i.e. kilnq's epilogue with x_scale = scale_r; the output is float32.
func init() {
	ops.Register(&ops.Op{Type: "DynQMatMul", Domain: kiln.Domain, MinOpset: 1, MaxOpset: 1, Run: runDynQ, Infer: inferDynQ})
}

// RowScale returns a row's dynamic scale (see DynQMatMul).
func RowScale(row []float32) float32 {
	var amax float32
	for _, v := range row {
		if a := float32(math.Abs(float64(v))); a > amax && !math.IsInf(float64(a), 0) {
			amax = a
		}
	}
	if amax == 0 {
		return 1
	}
	return amax / 127
}

// QuantizeRow writes a row's int8 codes for scale s.
func QuantizeRow(dst []int8, row []float32, s float32) {
	for i, v := range row {
		q := math.RoundToEven(float64(v / s))
		switch {
		case q != q:
			q = 0
		case q > 127:
			q = 127
		case q < -127:
			q = -127
		}
		dst[i] = int8(q)
	}
}

// DynQLayer reads a DynQMatMul node's weight scales and activation.
func DynQLayer(n *ir.Node) (*Layer, error) {
	ws, err := n.AttrFloats("w_scales", nil)
	if err != nil {
		return nil, err
	}
	if len(ws) == 0 {
		return nil, fmt.Errorf("%s: w_scales is missing", n)
	}
	for i, s := range ws {
		if !(s > 0) || math.IsInf(float64(s), 0) {
			return nil, fmt.Errorf("%s: w_scales[%d] = %v must be positive and finite", n, i, s)
		}
	}
	act, err := kiln.ActivationOf(n)
	if err != nil {
		return nil, err
	}
	return &Layer{XScale: 1, WScales: ws, Act: act, OutType: ir.Float32}, nil
}

func runDynQ(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	if len(in) < 2 || in[0] == nil || in[1] == nil {
		return nil, c.Errorf("needs A and the int8 weights")
	}
	a, w := in[0], in[1]
	if a.DType != ir.Float32 || w.DType != ir.Int8 || a.Rank() < 1 || w.Rank() != 2 {
		return nil, c.Errorf("want float32 A [..., K] and int8 B [K, N], got %s%v and %s%v", a.DType, a.Dims, w.DType, w.Dims)
	}
	K, N := w.Dims[0], w.Dims[1]
	if a.Dims[a.Rank()-1] != K {
		return nil, c.Errorf("A %v and B %v: inner dimensions differ", a.Dims, w.Dims)
	}
	l, err := DynQLayer(c.Node)
	if err != nil {
		return nil, err
	}
	if len(l.WScales) != 1 && int64(len(l.WScales)) != N {
		return nil, c.Errorf("w_scales has %d entries for %d columns", len(l.WScales), N)
	}
	outDims := append(append([]int64{}, a.Dims[:a.Rank()-1]...), N)
	var bias, resid []float32
	if len(in) > 2 && in[2] != nil {
		if in[2].DType != ir.Float32 || in[2].Len() != N {
			return nil, c.Errorf("bias is %s%v, want float32[%d]", in[2].DType, in[2].Dims, N)
		}
		bias = in[2].F32()
	}
	if len(in) > 3 && in[3] != nil {
		if in[3].DType != ir.Float32 || !sameDims(in[3].Dims, outDims) {
			return nil, c.Errorf("residual is %s%v, want float32%v", in[3].DType, in[3].Dims, outDims)
		}
		resid = in[3].F32()
	}
	out := ir.NewTensor(ir.Float32, outDims)
	y, av, wv := out.F32(), a.F32(), w.I8()
	rows := a.Len() / max(K, 1)
	if K == 0 {
		rows = out.Len() / max(N, 1)
	}
	q := make([]int8, K)
	for r := range rows {
		row := av[r*K : (r+1)*K]
		rl := *l
		rl.XScale = RowScale(row)
		QuantizeRow(q, row, rl.XScale)
		for col := range N {
			var acc int64
			for k := range K {
				acc += int64(q[k]) * int64(wv[k*N+col])
			}
			var b, z float32
			if bias != nil {
				b = bias[col]
			}
			if resid != nil {
				z = resid[r*N+col]
			}
			y[r*N+col] = rl.Epilogue(float32(acc), int(col), b, z)
		}
	}
	return []*ir.Tensor{out}, nil
}

func inferDynQ(c *ops.InferCtx) error {
	a, err := c.Input(0)
	if err != nil {
		return err
	}
	w, err := c.Input(1)
	if err != nil {
		return err
	}
	if _, err := DynQLayer(c.Node); err != nil {
		return err
	}
	if !a.HasShape || !w.HasShape || len(w.Shape) != 2 || len(a.Shape) < 1 {
		c.Out[0] = &ir.Type{Kind: ir.KindTensor, DType: ir.Float32}
		return nil
	}
	s := append(append(ir.Shape{}, a.Shape[:len(a.Shape)-1]...), w.Shape[1])
	c.Out[0] = ir.TensorType(ir.Float32, s)
	return nil
}
