package qops

import (
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

func init() {
	ops.Register(&ops.Op{Type: "MatMulInteger", MinOpset: 10, Run: matMulInteger, Infer: matMulIntegerInfer})
	ops.Register(&ops.Op{Type: "QLinearMatMul", MinOpset: 10, Run: qlinearMatMul, Infer: qlinearMatMulInfer})
}

// mmShape is numpy.matmul's view of two operands: 1-D a is a row [1,K]
// and 1-D b a column [K,1] (the extra dim dropped from the output), the
// leading dims broadcast.
type mmShape struct {
	m, k, n        int64
	aBatch, bBatch []int64 // batch dims of a and b
	batch          []int64 // broadcast batch dims
	out            []int64 // output dims
	aVec, bVec     bool
}

func newMMShape(c *ops.Ctx, a, b []int64) (*mmShape, error) {
	s := &mmShape{}
	if len(a) == 0 || len(b) == 0 {
		return nil, c.Errorf("matmul operands must have rank >= 1, got %v and %v", a, b)
	}
	if len(a) == 1 {
		s.aVec, a = true, []int64{1, a[0]}
	}
	if len(b) == 1 {
		s.bVec, b = true, []int64{b[0], 1}
	}
	s.m, s.k = a[len(a)-2], a[len(a)-1]
	if b[len(b)-2] != s.k {
		return nil, c.Errorf("matmul inner dimensions differ: %v and %v", a, b)
	}
	s.n = b[len(b)-1]
	s.aBatch, s.bBatch = a[:len(a)-2], b[:len(b)-2]
	batch, err := ops.BroadcastDims(s.aBatch, s.bBatch)
	if err != nil {
		return nil, c.Errorf("matmul batch dims: %v", err)
	}
	s.batch = batch
	s.out = append(append([]int64{}, batch...), s.m, s.n)
	if s.aVec {
		s.out = append(s.out[:len(s.out)-2], s.n)
	}
	if s.bVec {
		s.out = s.out[:len(s.out)-1]
	}
	return s, nil
}

// rowParam reads a zero point or scale of operand a: one per tensor, or
// per row of a (a 1-D [M] vector, or N-D [..., M, 1] broadcast over a's
// batch dims). colParam is the same for b's columns ([N] or [..., 1, N]).
// outParam broadcasts against the output (y_scale and y_zero_point).
type param struct {
	t     *ir.Tensor
	bc    *ops.Broadcast // maps a flat index of the grid to t's index; nil for one element
	float bool
}

func (p *param) at(i int64) float64 {
	if p == nil || p.t == nil {
		return 0
	}
	if p.bc != nil {
		i = p.bc.Index(0, i)
	} else {
		i = 0
	}
	return p.t.Float64At(i)
}

func (p *param) intAt(i int64) int64 {
	if p == nil || p.t == nil {
		return 0
	}
	if p.bc != nil {
		i = p.bc.Index(0, i)
	} else {
		i = 0
	}
	return p.t.Int64At(i)
}

// newParam broadcasts t over grid (dims of rows, columns or outputs);
// vec1D is the dim a 1-D t of that length is aligned with (-1: numpy
// alignment with the last dim).
func newParam(c *ops.Ctx, t *ir.Tensor, what string, grid []int64, vecAxis int) (*param, error) {
	if t == nil {
		return nil, nil
	}
	if t.Len() == 1 {
		return &param{t: t}, nil
	}
	dims := t.Dims
	if len(dims) == 1 && vecAxis >= 0 {
		d := make([]int64, len(grid)-vecAxis)
		for i := range d {
			d[i] = 1
		}
		d[0] = dims[0]
		dims = d
	}
	got, err := ops.BroadcastDims(grid, dims)
	if err != nil || !sameDims(got, grid) {
		return nil, c.Errorf("%s has shape %v, which does not broadcast to %v", what, t.Dims, grid)
	}
	return &param{t: t, bc: ops.NewBroadcast(grid, dims)}, nil
}

// mmGrids are the index spaces of per-row, per-column and output parameters.
func (s *mmShape) rowGrid() []int64 { return append(append([]int64{}, s.aBatch...), s.m, 1) }
func (s *mmShape) colGrid() []int64 { return append(append([]int64{}, s.bBatch...), 1, s.n) }
func (s *mmShape) fullOut() []int64 { return append(append([]int64{}, s.batch...), s.m, s.n) }

// intMatMul computes sum_k (a - a_zp)(b - b_zp) for every output element in
// int64, returned with the flat row and column parameter indices of each
// output element. Zero points broadcast per tensor, row or column.
func intMatMul(s *mmShape, a, b *ir.Tensor, azp, bzp *param, visit func(o, row, col int64, acc int64)) {
	bc := ops.NewBroadcast(s.batch, s.aBatch, s.bBatch)
	nb := bc.NumElem
	for bi := int64(0); bi < nb; bi++ {
		ab, bb := bc.Index(0, bi), bc.Index(1, bi)
		for m := int64(0); m < s.m; m++ {
			row := ab*s.m + m
			za := azp.intAt(row)
			for n := int64(0); n < s.n; n++ {
				col := bb*s.n + n
				zb := bzp.intAt(col)
				var acc int64
				for k := int64(0); k < s.k; k++ {
					av := a.Int64At(row*s.k+k) - za
					bv := b.Int64At((bb*s.k+k)*s.n+n) - zb
					acc += av * bv
				}
				visit((bi*s.m+m)*s.n+n, row, col, acc)
			}
		}
	}
}

func is8bit(d ir.DType) bool { return d == ir.Int8 || d == ir.Uint8 }

// matmulOperands reads a, b and their zero points (inputs ia, ib, iza, izb).
func matmulOperands(c *ops.Ctx, in []*ir.Tensor, ia, iza, ib, izb int) (a, b *ir.Tensor, s *mmShape, azp, bzp *param, err error) {
	if a, err = input(c, in, ia, "a"); err != nil {
		return
	}
	if b, err = input(c, in, ib, "b"); err != nil {
		return
	}
	if !is8bit(a.DType) || !is8bit(b.DType) {
		err = c.Errorf("a and b are %v and %v, want int8 or uint8", a.DType, b.DType)
		return
	}
	if s, err = newMMShape(c, a.Dims, b.Dims); err != nil {
		return
	}
	za, err := optional(c, in, iza, "a_zero_point")
	if err != nil {
		return
	}
	zb, err := optional(c, in, izb, "b_zero_point")
	if err != nil {
		return
	}
	if za != nil && za.DType != a.DType || zb != nil && zb.DType != b.DType {
		err = c.Errorf("zero points must have their operand's type (a %v, b %v)", a.DType, b.DType)
		return
	}
	if azp, err = newParam(c, za, "a_zero_point", s.rowGrid(), len(s.rowGrid())-2); err != nil {
		return
	}
	bzp, err = newParam(c, zb, "b_zero_point", s.colGrid(), -1)
	return
}

// MatMulInteger: int32 output, (a - a_zp) @ (b - b_zp), accumulation
// wrapping in 32 bits as the spec allows.
func matMulInteger(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	a, b, s, azp, bzp, err := matmulOperands(c, in, 0, 2, 1, 3)
	if err != nil {
		return nil, err
	}
	y, err := newOut(c, ir.Int32, s.out)
	if err != nil {
		return nil, err
	}
	ys := y.I32()
	intMatMul(s, a, b, azp, bzp, func(o, _, _ int64, acc int64) { ys[o] = int32(acc) })
	return []*ir.Tensor{y}, nil
}

// QLinearMatMul: y = saturate(round_half_even(acc * (a_scale*b_scale/y_scale)) + y_zp)
// with acc the int32 product of the zero-point-shifted operands. The scale
// ratio is computed in the scales' type (float32, float16 or bfloat16
// arithmetic), the rest in float64, as ONNX's reference does.
func qlinearMatMul(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	a, b, s, azp, bzp, err := matmulOperands(c, in, 0, 2, 3, 5)
	if err != nil {
		return nil, err
	}
	var sc [3]*ir.Tensor
	for i, idx := range []int{1, 4, 6} {
		if sc[i], err = input(c, in, idx, [...]string{"a_scale", "b_scale", "y_scale"}[i]); err != nil {
			return nil, err
		}
		if d := sc[i].DType; d != ir.Float32 && d != ir.Float16 && d != ir.BFloat16 {
			return nil, c.Errorf("scale input %d is %v, want float32, float16 or bfloat16", idx, d)
		}
	}
	ar := arithFor(sc[0].DType)
	yzpT, err := optional(c, in, 7, "y_zero_point")
	if err != nil {
		return nil, err
	}
	outType := a.DType
	if yzpT != nil {
		if !is8bit(yzpT.DType) {
			return nil, c.Errorf("y_zero_point is %v, want int8 or uint8", yzpT.DType)
		}
		outType = yzpT.DType
	}
	as, err := newParam(c, sc[0], "a_scale", s.rowGrid(), len(s.rowGrid())-2)
	if err != nil {
		return nil, err
	}
	bs, err := newParam(c, sc[1], "b_scale", s.colGrid(), -1)
	if err != nil {
		return nil, err
	}
	ys, err := newParam(c, sc[2], "y_scale", s.fullOut(), -1)
	if err != nil {
		return nil, err
	}
	yzp, err := newParam(c, yzpT, "y_zero_point", s.fullOut(), -1)
	if err != nil {
		return nil, err
	}
	y, err := newOut(c, outType, s.out)
	if err != nil {
		return nil, err
	}
	lo, hi := outType.IntRange()
	intMatMul(s, a, b, azp, bzp, func(o, row, col int64, acc int64) {
		mult := ar.div(ar.mul(as.at(row), bs.at(col)), ys.at(o))
		z := yzp.intAt(o)
		// ONNX's reference rounds after adding the zero point; the explicit
		// conversion keeps the product rounded (no fused multiply-add).
		y.SetInt64At(o, roundSat(float64(float64(int32(acc))*mult)+float64(z), lo, hi, z))
	})
	return []*ir.Tensor{y}, nil
}

// matmulShapeInfer is numpy.matmul's shape rule over symbolic shapes.
func matmulShapeInfer(a, b *ir.Type) (ir.Shape, bool, error) {
	if a == nil || b == nil || !a.HasShape || !b.HasShape {
		return nil, false, nil
	}
	as, bs := a.Shape, b.Shape
	if len(as) == 0 || len(bs) == 0 {
		return nil, false, errRank
	}
	aVec, bVec := len(as) == 1, len(bs) == 1
	if aVec {
		as = ir.Shape{ir.D(1), as[0]}
	}
	if bVec {
		bs = ir.Shape{bs[0], ir.D(1)}
	}
	ka, kb := as[len(as)-1], bs[len(bs)-2]
	if ka.Known() && kb.Known() && ka.Value != kb.Value {
		return nil, false, errInner
	}
	batch, err := ops.BroadcastShapes(as[:len(as)-2], bs[:len(bs)-2])
	if err != nil {
		return nil, false, err
	}
	out := append(batch, as[len(as)-2], bs[len(bs)-1])
	if aVec {
		out = append(out[:len(out)-2], out[len(out)-1])
	}
	if bVec {
		out = out[:len(out)-1]
	}
	return out, true, nil
}

type inferError string

func (e inferError) Error() string { return string(e) }

const (
	errRank  = inferError("matmul operands must have rank >= 1")
	errInner = inferError("matmul inner dimensions differ")
)

func matmulInfer(c *ops.InferCtx, ia, ib int, dt ir.DType) error {
	a, err := c.Input(ia)
	if err != nil {
		return err
	}
	b, err := c.Input(ib)
	if err != nil {
		return err
	}
	s, ok, err := matmulShapeInfer(a, b)
	if err != nil {
		return c.Errorf("%v: %v and %v", err, a, b)
	}
	if !ok {
		c.Out[0] = &ir.Type{Kind: ir.KindTensor, DType: dt}
		return nil
	}
	c.Out[0] = ir.TensorType(dt, s)
	return nil
}

func matMulIntegerInfer(c *ops.InferCtx) error { return matmulInfer(c, 0, 1, ir.Int32) }

func qlinearMatMulInfer(c *ops.InferCtx) error {
	a, err := c.Input(0)
	if err != nil {
		return err
	}
	dt := a.DType
	if t := inType(c, 7); t != nil {
		dt = t.DType
	}
	return matmulInfer(c, 0, 3, dt)
}
