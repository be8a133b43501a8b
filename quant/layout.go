package quant

import (
	"fmt"

	"github.com/kilnml/kiln/ir"
)

// layout maps the elements of one tensor (row-major dims) to scale groups.
// Viewing the tensor as [outer, axisLen, inner] around Axis:
//
//	per-tensor:  group 0
//	per-channel: group a
//	blocked:     group (o·nb + a/block)·inner + in, with nb = ceil(axisLen/block)
type layout struct {
	n                     int64
	outer, axisLen, inner int64
	block, nb             int64 // block == 0: not blocked
	perTensor             bool
	scaleDims             []int64
}

// layoutFor validates p against a tensor's dims.
func (p *Params) layoutFor(dims []int64) (layout, error) {
	if err := p.Validate(); err != nil {
		return layout{}, err
	}
	l, err := newLayout(dims, p.Axis, p.BlockSize)
	if err != nil {
		return layout{}, err
	}
	if want := l.groups(); int64(len(p.Scale)) != want {
		if l.block == 0 {
			return layout{}, fmt.Errorf("quant: %d scales for axis %d of length %d (dims %v)", len(p.Scale), p.Axis, l.axisLen, dims)
		}
		return layout{}, fmt.Errorf("quant: blocked along axis %d with block size %d: tensor dims %v need %d scales (dims %v), have %d",
			p.Axis, p.BlockSize, dims, want, l.scaleDims, len(p.Scale))
	}
	return l, nil
}

// newLayout describes the groups of a tensor of the given dims for an axis
// (PerTensor or >= 0) and block size (0: per-channel).
func newLayout(dims []int64, axis, blockSize int) (layout, error) {
	n, err := ir.NumElements(dims)
	if err != nil {
		return layout{}, fmt.Errorf("quant: %w", err)
	}
	l := layout{n: n, outer: 1, axisLen: 1, inner: 1}
	switch {
	case axis == PerTensor && blockSize == 0:
		l.perTensor, l.scaleDims = true, []int64{}
		return l, nil
	case axis < 0 || axis >= len(dims):
		return layout{}, fmt.Errorf("quant: axis %d out of range for a tensor of rank %d (dims %v)", axis, len(dims), dims)
	case blockSize < 0:
		return layout{}, fmt.Errorf("quant: negative block size %d", blockSize)
	}
	for i, d := range dims {
		switch {
		case i < axis:
			l.outer *= d
		case i == axis:
			l.axisLen = d
		default:
			l.inner *= d
		}
	}
	if blockSize == 0 {
		l.scaleDims = []int64{l.axisLen}
		return l, nil
	}
	l.block = int64(blockSize)
	l.nb = (l.axisLen + l.block - 1) / l.block
	l.scaleDims = append([]int64{}, dims...)
	l.scaleDims[axis] = l.nb
	return l, nil
}

// groups is the number of scales the layout needs.
func (l layout) groups() int64 {
	switch {
	case l.perTensor:
		return 1
	case l.block == 0:
		return l.axisLen
	}
	return l.outer * l.nb * l.inner
}

// walk calls fn for consecutive runs of elements: elements start..start+count-1
// use groups g0, g0+gstep, g0+2·gstep, ...
func (l layout) walk(fn func(start, count int64, g0, gstep int)) {
	switch {
	case l.n == 0:
	case l.perTensor:
		fn(0, l.n, 0, 0)
	case l.block == 0:
		for o := int64(0); o < l.outer; o++ {
			for a := int64(0); a < l.axisLen; a++ {
				fn((o*l.axisLen+a)*l.inner, l.inner, int(a), 0)
			}
		}
	default:
		for o := int64(0); o < l.outer; o++ {
			for a := int64(0); a < l.axisLen; a++ {
				fn((o*l.axisLen+a)*l.inner, l.inner, int((o*l.nb+a/l.block)*l.inner), 1)
			}
		}
	}
}
