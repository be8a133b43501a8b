package nn

import (
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

func init() {
	ops.Register(&ops.Op{Type: "MatMul", MinOpset: 1, Run: matmul, Infer: inferMatMul})
}

// matmulShapes applies numpy matmul rules to symbolic shapes: a 1-D A is
// a row [1,K] and a 1-D B a column [K,1], whose added axis is then dropped;
// the batch axes broadcast.
func matmulShapes(a attrGetter, as, bs ir.Shape) (ir.Shape, error) {
	if len(as) == 0 || len(bs) == 0 {
		return nil, a.Errorf("operands must have rank at least 1, got %v and %v", as, bs)
	}
	a2, b2 := as, bs
	if len(as) == 1 {
		a2 = ir.Shape{ir.D(1), as[0]}
	}
	if len(bs) == 1 {
		b2 = ir.Shape{bs[0], ir.D(1)}
	}
	ka, kb := a2[len(a2)-1], b2[len(b2)-2]
	if ka.Known() && kb.Known() && ka.Value != kb.Value {
		return nil, a.Errorf("inner dimensions differ: %v · %v", as, bs)
	}
	batch, err := ops.BroadcastShapes(a2[:len(a2)-2], b2[:len(b2)-2])
	if err != nil {
		return nil, a.Errorf("batch dimensions: %v", err)
	}
	out := append(ir.Shape{}, batch...)
	if len(as) > 1 {
		out = append(out, a2[len(a2)-2])
	}
	if len(bs) > 1 {
		out = append(out, b2[len(b2)-1])
	}
	return out, nil
}

func inferMatMul(c *ops.InferCtx) error {
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
	s, err := matmulShapes(c, a.Shape, b.Shape)
	if err != nil {
		return err
	}
	c.Out[0] = ir.TensorType(a.DType, s)
	return nil
}

// matmulPlan is the loop structure of a (batched) matrix product.
type matmulPlan struct {
	m, k, n int64
	outDims []int64
	batch   int64
	aOff    []int64 // per batch, start of the A matrix
	bOff    []int64 // per batch, start of the B matrix
}

func planMatMul(c *ops.Ctx, ad, bd []int64) (*matmulPlan, error) {
	s, err := matmulShapes(c, ir.ShapeOf(ad), ir.ShapeOf(bd))
	if err != nil {
		return nil, err
	}
	a2, b2 := ad, bd
	if len(ad) == 1 {
		a2 = []int64{1, ad[0]}
	}
	if len(bd) == 1 {
		b2 = []int64{bd[0], 1}
	}
	p := &matmulPlan{m: a2[len(a2)-2], k: a2[len(a2)-1], n: b2[len(b2)-1]}
	p.outDims, _ = s.Concrete()
	batchDims, _ := ops.BroadcastDims(a2[:len(a2)-2], b2[:len(b2)-2])
	p.batch = prod(batchDims)
	bc := ops.NewBroadcast(batchDims, a2[:len(a2)-2], b2[:len(b2)-2])
	for i := int64(0); i < p.batch; i++ {
		p.aOff = append(p.aOff, bc.Index(0, i)*p.m*p.k)
		p.bOff = append(p.bOff, bc.Index(1, i)*p.k*p.n)
	}
	return p, nil
}

func matmul(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	if len(in) < 2 || in[0] == nil || in[1] == nil {
		return nil, c.Errorf("needs inputs A and B")
	}
	A, B := in[0], in[1]
	if A.DType != B.DType {
		return nil, c.Errorf("A is %s but B is %s", A.DType, B.DType)
	}
	p, err := planMatMul(c, A.Dims, B.Dims)
	if err != nil {
		return nil, err
	}
	if err := checkSize(c, p.outDims); err != nil {
		return nil, err
	}
	m, k, n := p.m, p.k, p.n
	if A.DType.IsInteger() {
		// Integers accumulate in int64 and wrap to the output type.
		as, bs := A.Int64s(), B.Int64s()
		y := ir.NewTensor(A.DType, p.outDims)
		acc := make([]int64, n)
		for bi := int64(0); bi < p.batch; bi++ {
			for i := int64(0); i < m; i++ {
				clear(acc)
				for q := int64(0); q < k; q++ {
					av := as[p.aOff[bi]+i*k+q]
					brow := bs[p.bOff[bi]+q*n:][:n]
					for j, bv := range brow {
						acc[j] += av * bv
					}
				}
				for j, v := range acc {
					y.SetInt64At((bi*m+i)*n+int64(j), v)
				}
			}
		}
		return []*ir.Tensor{y}, nil
	}
	if !A.DType.IsFloat() {
		return nil, c.Errorf("unsupported element type %s", A.DType)
	}
	as, bs := floats(A), floats(B)
	y := make([]float64, p.batch*m*n)
	// Work items are blocks of up to four rows of one batch: each row of B
	// is read once for the block.
	blocks := (m + 3) / 4
	parallelFor(p.batch*blocks, func(r int64) {
		bi, i0 := r/blocks, (r%blocks)*4
		rows := min(4, m-i0)
		out := y[(bi*m+i0)*n:][:rows*n]
		a := as[p.aOff[bi]+i0*k:][:rows*k]
		bm := bs[p.bOff[bi]:][:k*n]
		if rows == 4 {
			y0, y1, y2, y3 := out[:n], out[n:2*n], out[2*n:3*n], out[3*n:4*n]
			for q := int64(0); q < k; q++ {
				a0, a1, a2, a3 := a[q], a[k+q], a[2*k+q], a[3*k+q]
				brow := bm[q*n:][:n]
				y0, y1, y2, y3 = y0[:len(brow)], y1[:len(brow)], y2[:len(brow)], y3[:len(brow)]
				for j, bv := range brow {
					y0[j] += a0 * bv
					y1[j] += a1 * bv
					y2[j] += a2 * bv
					y3[j] += a3 * bv
				}
			}
			return
		}
		for i := int64(0); i < rows; i++ {
			row := out[i*n:][:n]
			for q := int64(0); q < k; q++ {
				axpy(row, bm[q*n:][:n], a[i*k+q])
			}
		}
	})
	return []*ir.Tensor{fromFloats(A.DType, p.outDims, y)}, nil
}
