package ops

import (
	"fmt"

	"github.com/kilnml/kiln/ir"
)

// Strides returns row-major element strides for dims.
func Strides(dims []int64) []int64 {
	s := make([]int64, len(dims))
	acc := int64(1)
	for i := len(dims) - 1; i >= 0; i-- {
		s[i] = acc
		acc *= dims[i]
	}
	return s
}

// BroadcastDims applies ONNX multidirectional (numpy) broadcasting.
func BroadcastDims(shapes ...[]int64) ([]int64, error) {
	rank := 0
	for _, s := range shapes {
		rank = max(rank, len(s))
	}
	out := make([]int64, rank)
	for i := range out {
		out[i] = 1
	}
	for _, s := range shapes {
		off := rank - len(s)
		for i, d := range s {
			o := &out[off+i]
			switch {
			case d == *o || d == 1:
			case *o == 1:
				*o = d
			default:
				return nil, fmt.Errorf("shapes %v cannot be broadcast together", shapes)
			}
		}
	}
	return out, nil
}

// BroadcastShapes is BroadcastDims over symbolic shapes: a symbol against 1
// stays the symbol, a symbol against a number n>1 becomes n, two different
// symbols (or unknowns) give an unknown dimension.
func BroadcastShapes(shapes ...ir.Shape) (ir.Shape, error) {
	rank := 0
	for _, s := range shapes {
		rank = max(rank, len(s))
	}
	out := make(ir.Shape, rank)
	for i := range out {
		out[i] = ir.D(1)
	}
	for _, s := range shapes {
		off := rank - len(s)
		for i, d := range s {
			o := &out[off+i]
			switch {
			case d == *o || (d.Known() && d.Value == 1):
			case o.Known() && o.Value == 1:
				*o = d
			case d.Known() && o.Known():
				return nil, fmt.Errorf("shapes %v cannot be broadcast together", shapes)
			case d.Known():
				*o = d // symbol or unknown vs a number > 1: the number wins
			case o.Known():
			default:
				*o = ir.Unknown()
			}
		}
	}
	return out, nil
}

// Broadcast maps flat output indices to flat indices of inputs broadcast to
// the output shape. Build it once per kernel call; Index is a plain divmod
// walk, which is what a reference kernel wants.
type Broadcast struct {
	Out     []int64
	outStr  []int64
	inStr   [][]int64 // per input, stride per output axis (0 where broadcast)
	NumElem int64
}

// NewBroadcast prepares index mapping from out to each input shape.
func NewBroadcast(out []int64, ins ...[]int64) *Broadcast {
	b := &Broadcast{Out: out, outStr: Strides(out), NumElem: 1}
	for _, d := range out {
		b.NumElem *= d
	}
	for _, in := range ins {
		st := Strides(in)
		full := make([]int64, len(out))
		off := len(out) - len(in)
		for i, d := range in {
			if d != 1 {
				full[off+i] = st[i]
			}
		}
		b.inStr = append(b.inStr, full)
	}
	return b
}

// Index returns the flat index into input k for flat output index o.
func (b *Broadcast) Index(k int, o int64) int64 {
	idx := int64(0)
	for ax, s := range b.outStr {
		c := o / s
		o -= c * s
		idx += c * b.inStr[k][ax]
	}
	return idx
}

// NormAxis turns a possibly negative axis into [0, rank), or errors.
func NormAxis(axis int64, rank int) (int, error) {
	if axis < -int64(rank) || axis >= int64(rank) {
		return 0, fmt.Errorf("axis %d out of range for rank %d", axis, rank)
	}
	if axis < 0 {
		axis += int64(rank)
	}
	return int(axis), nil
}
