package nn

import (
	"math"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

func init() {
	ops.Register(&ops.Op{Type: "MaxPool", MinOpset: 1, Run: maxPool, Infer: inferPool})
	ops.Register(&ops.Op{Type: "AveragePool", MinOpset: 1, Run: averagePool, Infer: inferPool})
	ops.Register(&ops.Op{Type: "LpPool", MinOpset: 1, Run: lpPool, Infer: inferPool})
}

// poolGeom reads kernel_shape and the window attributes of a pooling node
// over X dims xd (-1 where unknown).
func poolGeom(a attrGetter, opType string, opset int64, xd []int64) (*geom, error) {
	if len(xd) < 3 {
		return nil, a.Errorf("X has rank %d, want at least 3 (N, C, spatial...)", len(xd))
	}
	kernel := a.Ints("kernel_shape", nil)
	ceil := a.Int("ceil_mode", 0) != 0
	if err := a.Err(); err != nil {
		return nil, err
	}
	if len(kernel) != len(xd)-2 {
		return nil, a.Errorf("kernel_shape %v: want %d values for X of rank %d", kernel, len(xd)-2, len(xd))
	}
	// dilations: MaxPool from opset 10, AveragePool from 19, LpPool from 18
	useDil := (opType == "MaxPool" && opset >= 10) || (opType == "AveragePool" && opset >= 19) ||
		(opType == "LpPool" && opset >= 18)
	return newGeom(a, xd[2:], kernel, ceil, useDil)
}

func inferPool(c *ops.InferCtx) error {
	x, err := c.Input(0)
	if err != nil {
		return err
	}
	if !x.HasShape {
		c.Out[0] = &ir.Type{DType: x.DType}
		if len(c.Out) > 1 && wantOut(c.Node, 1) {
			c.Out[1] = &ir.Type{DType: ir.Int64}
		}
		return nil
	}
	g, err := poolGeom(c, c.Node.OpType, c.Opset, dimsOf(x.Shape))
	if err != nil {
		return err
	}
	out := ir.Shape{x.Shape[0], x.Shape[1]}
	for _, o := range g.out {
		out = append(out, knownOrUnknown(o))
	}
	c.Out[0] = ir.TensorType(x.DType, out)
	if len(c.Out) > 1 && wantOut(c.Node, 1) {
		c.Out[1] = ir.TensorType(ir.Int64, append(ir.Shape{}, out...))
	}
	return nil
}

// windows lists, for every output position of one plane, the flat input
// positions its window covers inside the input (idx[start[o]:start[o+1]])
// and how many window positions lie inside the padded input (for
// AveragePool's count_include_pad).
type windows struct {
	start, idx, padded []int64
}

func (g *geom) windows() *windows {
	r := g.rank()
	inStr := spatialStrides(g.in)
	outSz, kSz := prod(g.out), prod(g.kernel)
	w := &windows{start: make([]int64, 0, outSz+1), padded: make([]int64, outSz)}
	o := make([]int64, r)
	k := make([]int64, r)
	for of := int64(0); of < outSz; of++ {
		rem := of
		for i := r - 1; i >= 0; i-- {
			o[i] = rem % g.out[i]
			rem /= g.out[i]
		}
		w.start = append(w.start, int64(len(w.idx)))
		for kf := int64(0); kf < kSz; kf++ {
			rem := kf
			for i := r - 1; i >= 0; i-- {
				k[i] = rem % g.kernel[i]
				rem /= g.kernel[i]
			}
			flat, inside, inPad := int64(0), true, true
			for i := 0; i < r; i++ {
				p := o[i]*g.stride[i] + k[i]*g.dil[i] - g.padB[i]
				if p < 0 || p >= g.in[i] {
					inside = false
				}
				if p < -g.padB[i] || p >= g.in[i]+g.padE[i] {
					inPad = false
				}
				flat += p * inStr[i]
			}
			if inside {
				w.idx = append(w.idx, flat)
			}
			if inPad {
				w.padded[of]++
			}
		}
	}
	w.start = append(w.start, int64(len(w.idx)))
	return w
}

// poolSetup validates X and returns its geometry, windows, the number of
// planes (N*C) and the plane sizes.
func poolSetup(c *ops.Ctx, in []*ir.Tensor, allowInt8 bool) (*ir.Tensor, *geom, *windows, error) {
	if len(in) < 1 || in[0] == nil {
		return nil, nil, nil, c.Errorf("input X is missing")
	}
	x := in[0]
	if !x.DType.IsFloat() && !(allowInt8 && (x.DType == ir.Int8 || x.DType == ir.Uint8)) {
		return nil, nil, nil, c.Errorf("X is %s, want a floating-point type", x.DType)
	}
	g, err := poolGeom(c, c.Node.OpType, c.Opset, x.Dims)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := checkSize(c, append([]int64{x.Dims[0], x.Dims[1]}, g.out...)); err != nil {
		return nil, nil, nil, err
	}
	w := 1.0 // window entries to precompute, in float64 so that nothing overflows
	for _, d := range append(append([]int64{}, g.out...), g.kernel...) {
		w *= float64(d)
	}
	if w > 1<<28 {
		return nil, nil, nil, c.Errorf("window of %v over output %v is too large", g.kernel, g.out)
	}
	return x, g, g.windows(), nil
}

func maxPool(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, g, w, err := poolSetup(c, in, true)
	if err != nil {
		return nil, err
	}
	order := c.Int("storage_order", 0)
	if err := c.Err(); err != nil {
		return nil, err
	}
	planes, inSz, outSz := x.Dims[0]*x.Dims[1], prod(g.in), prod(g.out)
	outDims := append([]int64{x.Dims[0], x.Dims[1]}, g.out...)
	xs := floats(x)
	y := make([]float64, planes*outSz)
	arg := make([]int64, planes*outSz)
	for p := int64(0); p < planes; p++ {
		xp := xs[p*inSz : (p+1)*inSz]
		for o := int64(0); o < outSz; o++ {
			best, bi := math.Inf(-1), int64(-1)
			for _, i := range w.idx[w.start[o]:w.start[o+1]] {
				if v := xp[i]; v > best || bi < 0 {
					best, bi = v, i
				}
			}
			y[p*outSz+o] = best
			if bi < 0 {
				arg[p*outSz+o] = -1
				continue
			}
			if order != 0 { // column-major index within the plane
				bi = columnMajor(bi, g.in)
			}
			arg[p*outSz+o] = p*inSz + bi
		}
	}
	outs := []*ir.Tensor{fromFloats(x.DType, outDims, y)}
	if wantOut(c.Node, 1) {
		outs = append(outs, ir.FromInt64s(ir.Int64, outDims, arg))
	}
	return outs, nil
}

// columnMajor turns a row-major flat index over dims into a column-major one.
func columnMajor(flat int64, dims []int64) int64 {
	r := len(dims)
	pos := make([]int64, r)
	for i := r - 1; i >= 0; i-- {
		pos[i] = flat % dims[i]
		flat /= dims[i]
	}
	out, s := int64(0), int64(1)
	for i := 0; i < r; i++ {
		out += pos[i] * s
		s *= dims[i]
	}
	return out
}

func averagePool(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, g, w, err := poolSetup(c, in, false)
	if err != nil {
		return nil, err
	}
	includePad := c.Int("count_include_pad", 0) != 0
	if err := c.Err(); err != nil {
		return nil, err
	}
	planes, inSz, outSz := x.Dims[0]*x.Dims[1], prod(g.in), prod(g.out)
	xs := floats(x)
	y := make([]float64, planes*outSz)
	for p := int64(0); p < planes; p++ {
		xp := xs[p*inSz : (p+1)*inSz]
		for o := int64(0); o < outSz; o++ {
			win := w.idx[w.start[o]:w.start[o+1]]
			var s float64
			for _, i := range win {
				s += xp[i]
			}
			n := float64(len(win))
			if includePad {
				n = float64(w.padded[o])
			}
			y[p*outSz+o] = s / n // an empty window gives NaN, as 0/0
		}
	}
	return []*ir.Tensor{fromFloats(x.DType, append([]int64{x.Dims[0], x.Dims[1]}, g.out...), y)}, nil
}

func lpPool(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, g, w, err := poolSetup(c, in, false)
	if err != nil {
		return nil, err
	}
	pw := float64(c.Int("p", 2))
	if err := c.Err(); err != nil {
		return nil, err
	}
	planes, inSz, outSz := x.Dims[0]*x.Dims[1], prod(g.in), prod(g.out)
	xs := floats(x)
	y := make([]float64, planes*outSz)
	for p := int64(0); p < planes; p++ {
		xp := xs[p*inSz : (p+1)*inSz]
		for o := int64(0); o < outSz; o++ {
			var s float64
			for _, i := range w.idx[w.start[o]:w.start[o+1]] {
				s += math.Pow(math.Abs(xp[i]), pw)
			}
			y[p*outSz+o] = math.Pow(s, 1/pw)
		}
	}
	return []*ir.Tensor{fromFloats(x.DType, append([]int64{x.Dims[0], x.Dims[1]}, g.out...), y)}, nil
}
