package qops

import (
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// qlayout maps each element of a QuantizeLinear/DequantizeLinear input to
// its scale and zero-point element, for the three granularities of the
// spec: per tensor (a one-element scale), per axis (a 1-D scale as long as
// the axis) and blocked (the input's shape with the axis divided into
// blocks of block_size, opset 21+).
type qlayout struct {
	blocked bool
	perAxis bool
	dimAxis int64 // x's size along the axis
	inner   int64 // elements after the axis
	block   int64
	sAxis   int64 // scale's size along the axis (blocked)
}

// newQLayout validates scale and zero-point shapes against x. Before opset
// 13 there is no axis attribute and the scale must have one element.
func newQLayout(c *ops.Ctx, x, scale, zp *ir.Tensor) (*qlayout, error) {
	if zp != nil && !sameDims(zp.Dims, scale.Dims) && !(zp.Len() == 1 && scale.Len() == 1) {
		return nil, c.Errorf("zero point shape %v differs from scale shape %v", zp.Dims, scale.Dims)
	}
	block := int64(0)
	if c.Opset >= 21 {
		block = c.Int("block_size", 0)
	}
	if block < 0 {
		return nil, c.Errorf("block_size %d is negative", block)
	}
	l := &qlayout{}
	if scale.Len() == 1 {
		// per tensor: a scalar, or any one-element shape ([1] in ONNX's own
		// tests); ONNX's reference treats it so even with block_size set
		return l, nil
	}
	if c.Opset < 13 {
		return nil, c.Errorf("scale has shape %v; opset %d allows only a per-tensor scalar", scale.Dims, c.Opset)
	}
	axis, err := ops.NormAxis(c.Int("axis", 1), x.Rank())
	if err != nil {
		return nil, c.Errorf("%v (scale shape %v)", err, scale.Dims)
	}
	l.dimAxis = x.Dims[axis]
	l.inner = 1
	for _, d := range x.Dims[axis+1:] {
		l.inner *= d
	}
	if block == 0 {
		if scale.Rank() != 1 || scale.Dims[0] != l.dimAxis {
			return nil, c.Errorf("per-axis scale has shape %v, want [%d] (input %v, axis %d); blocked scales need block_size",
				scale.Dims, l.dimAxis, x.Dims, axis)
		}
		l.perAxis = true
		return l, nil
	}
	want := append([]int64{}, x.Dims...)
	want[axis] = (l.dimAxis + block - 1) / block
	if !sameDims(scale.Dims, want) {
		return nil, c.Errorf("blocked scale has shape %v, want %v (input %v, axis %d, block_size %d)",
			scale.Dims, want, x.Dims, axis, block)
	}
	l.blocked, l.block, l.sAxis = true, block, want[axis]
	return l, nil
}

// index returns the scale/zero-point index of x's flat element i.
func (l *qlayout) index(i int64) int64 {
	switch {
	case l.perAxis:
		return (i / l.inner) % l.dimAxis
	case l.blocked:
		in := i % l.inner
		a := (i / l.inner) % l.dimAxis
		outer := i / (l.inner * l.dimAxis)
		return (outer*l.sAxis+a/l.block)*l.inner + in
	}
	return 0
}

func sameDims(a, b []int64) bool {
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
