package nn

import (
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

func init() {
	ops.Register(&ops.Op{Type: "Gemm", MinOpset: 1, Run: gemm, Infer: inferGemm})
}

// gemmDims returns M, K, N of op(A)·op(B) (-1 where unknown) after checking
// ranks and the shared K.
func gemmDims(a attrGetter, ad, bd []int64) (m, k, n int64, err error) {
	if len(ad) != 2 || len(bd) != 2 {
		return 0, 0, 0, a.Errorf("A %v and B %v must both be 2-D", ad, bd)
	}
	transA, transB := a.Int("transA", 0) != 0, a.Int("transB", 0) != 0
	if err := a.Err(); err != nil {
		return 0, 0, 0, err
	}
	m, k = ad[0], ad[1]
	if transA {
		m, k = k, m
	}
	kb, n := bd[0], bd[1]
	if transB {
		kb, n = n, kb
	}
	if k >= 0 && kb >= 0 && k != kb {
		return 0, 0, 0, a.Errorf("inner dimensions differ: op(A) is %dx%d, op(B) is %dx%d", m, k, kb, n)
	}
	if k < 0 {
		k = kb
	}
	return m, k, n, nil
}

// unidirectional reports whether c broadcasts to [m, n] (ONNX's
// unidirectional broadcasting: c may not grow the output).
func unidirectional(c []int64, target []int64) bool {
	if len(c) > len(target) {
		return false
	}
	off := len(target) - len(c)
	for i, d := range c {
		if d != 1 && d != target[off+i] {
			return false
		}
	}
	return true
}

func inferGemm(c *ops.InferCtx) error {
	a, err := c.Input(0)
	if err != nil {
		return err
	}
	b, err := c.Input(1)
	if err != nil {
		return err
	}
	if !a.HasShape || !b.HasShape {
		c.Out[0] = &ir.Type{DType: a.DType}
		return nil
	}
	if _, _, _, err := gemmDims(c, dimsOf(a.Shape), dimsOf(b.Shape)); err != nil {
		return err
	}
	ta, tb := c.Int("transA", 0) != 0, c.Int("transB", 0) != 0
	m, n := a.Shape[0], b.Shape[1]
	if ta {
		m = a.Shape[1]
	}
	if tb {
		n = b.Shape[0]
	}
	c.Out[0] = ir.TensorType(a.DType, ir.Shape{m, n})
	return nil
}

func gemm(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	if len(in) < 2 || in[0] == nil || in[1] == nil {
		return nil, c.Errorf("needs inputs A and B")
	}
	A, B, C := in[0], in[1], opt(in, 2)
	if A.DType != B.DType || (C != nil && C.DType != A.DType) {
		return nil, c.Errorf("A, B and C must share one element type (A is %s, B is %s)", A.DType, B.DType)
	}
	if !A.DType.IsFloat() && !A.DType.IsInteger() {
		return nil, c.Errorf("unsupported element type %s", A.DType)
	}
	if C == nil && c.Opset < 11 {
		return nil, c.Errorf("input C is required before opset 11")
	}
	m, k, n, err := gemmDims(c, A.Dims, B.Dims)
	if err != nil {
		return nil, err
	}
	alpha, beta := float64(c.Float("alpha", 1)), float64(c.Float("beta", 1))
	transA, transB := c.Int("transA", 0) != 0, c.Int("transB", 0) != 0
	if err := c.Err(); err != nil {
		return nil, err
	}
	if C != nil && !unidirectional(C.Dims, []int64{m, n}) {
		return nil, c.Errorf("C has dims %v, which do not broadcast to [%d %d]", C.Dims, m, n)
	}
	if err := checkSize(c, []int64{m, n}); err != nil {
		return nil, err
	}
	as, bs := floats(A), floats(B)
	// Element (i, p) of op(A) is as[i*sa0 + p*sa1]; likewise for B.
	sa0, sa1 := k, int64(1)
	if transA {
		sa0, sa1 = 1, m
	}
	sb0, sb1 := n, int64(1)
	if transB {
		sb0, sb1 = 1, k
	}
	y := make([]float64, m*n)
	parallelFor(m, func(i int64) {
		row := y[i*n : (i+1)*n]
		for p := int64(0); p < k; p++ {
			av := as[i*sa0+p*sa1]
			for j := range row {
				row[j] += av * bs[p*sb0+int64(j)*sb1]
			}
		}
		for j := range row {
			row[j] *= alpha
		}
	})
	if C != nil && beta != 0 {
		cs := floats(C)
		bc := ops.NewBroadcast([]int64{m, n}, C.Dims)
		for o := range y {
			y[o] += beta * cs[bc.Index(0, int64(o))]
		}
	}
	// Integer Gemm (opset 11+) goes through float64 too: exact while
	// results stay below 2^53, saturating beyond.
	return []*ir.Tensor{fromFloats(A.DType, []int64{m, n}, y)}, nil
}
