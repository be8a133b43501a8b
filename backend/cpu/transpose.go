package cpu

import (
	"fmt"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
)

// Transpose of any fixed-size dtype: a strided gather, copying whole runs
// when the last axis stays last.
type transposeParams struct {
	Perm []int `json:"perm,omitempty"` // nil: reverse the axes
}

type transposeTactic struct{}

func (transposeTactic) Name() string { return "transpose" }

func (transposeTactic) Lower(l *engine.Layer) (*engine.Lowered, error) {
	dt := inDType(l, 0)
	if b := dt.Bits(); dt == ir.String || b == 0 || b > 64 || b%8 != 0 {
		return nil, fmt.Errorf("%s: %s has no fast transpose", l.Node, dt)
	}
	perm, err := l.Node.AttrInts("perm", nil)
	if err != nil {
		return nil, err
	}
	var p transposeParams
	for _, v := range perm {
		p.Perm = append(p.Perm, int(v))
	}
	if _, err := (&transposeKernel{p: p}).perm(len(l.In[0].Shape)); l.In[0].HasShape && err != nil {
		return nil, fmt.Errorf("%s: %w", l.Node, err)
	}
	return lowered("cpu.transpose", &p, nil, []int{0})
}

type transposeKernel struct{ p transposeParams }

func init() {
	register("cpu.transpose", func(p *transposeParams, _ []*ir.Tensor) (engine.Kernel, error) {
		if len(p.Perm) > maxRank {
			return nil, fmt.Errorf("cpu.transpose: rank %d", len(p.Perm))
		}
		return &transposeKernel{p: *p}, nil
	})
}

// perm returns the permutation for rank r (validated), on the stack.
func (k *transposeKernel) perm(r int) ([maxRank]int, error) {
	var perm [maxRank]int
	if r > maxRank {
		return perm, fmt.Errorf("rank %d is above %d", r, maxRank)
	}
	if k.p.Perm == nil {
		for i := 0; i < r; i++ {
			perm[i] = r - 1 - i
		}
		return perm, nil
	}
	if len(k.p.Perm) != r {
		return perm, fmt.Errorf("perm %v for rank %d", k.p.Perm, r)
	}
	var seen [maxRank]bool
	for i, v := range k.p.Perm {
		if v < 0 || v >= r || seen[v] {
			return perm, fmt.Errorf("perm %v is not a permutation", k.p.Perm)
		}
		seen[v] = true
		perm[i] = v
	}
	return perm, nil
}

func (k *transposeKernel) Shapes(in []*ir.Tensor) ([][]int64, error) {
	d := in[0].Dims
	perm, err := k.perm(len(d))
	if err != nil {
		return nil, err
	}
	out := make([]int64, len(d))
	for i := range out {
		out[i] = d[perm[i]]
	}
	return [][]int64{out}, nil
}

func (k *transposeKernel) Run(_ *engine.Exec, in, out []*ir.Tensor) error {
	d := in[0].Dims
	r := len(d)
	perm, err := k.perm(r)
	if err != nil {
		return err
	}
	n := int(in[0].Len())
	if n == 0 {
		return nil
	}
	es := in[0].DType.Bits() / 8
	// Input strides, in elements, of each output axis.
	var istr, odim [maxRank]int
	s := 1
	var inStr [maxRank]int
	for i := r - 1; i >= 0; i-- {
		inStr[i] = s
		s *= int(d[i])
	}
	for i := 0; i < r; i++ {
		istr[i], odim[i] = inStr[perm[i]], int(d[perm[i]])
	}
	src, dst := in[0].Data, out[0].Data
	switch es {
	case 1:
		gather(dst, src, r, &odim, &istr)
	case 2:
		gather(bytesAs[uint16](dst, n), bytesAs[uint16](src, n), r, &odim, &istr)
	case 4:
		gather(bytesAs[uint32](dst, n), bytesAs[uint32](src, n), r, &odim, &istr)
	case 8:
		gather(bytesAs[uint64](dst, n), bytesAs[uint64](src, n), r, &odim, &istr)
	default:
		return fmt.Errorf("element size %d", es)
	}
	return nil
}

// gather writes dst in order, reading src at the strided positions of the
// output's index; runs along the last output axis are copied when it is
// contiguous in the input.
func gather[T any](dst, src []T, r int, odim, istr *[maxRank]int) {
	if r == 0 {
		dst[0] = src[0]
		return
	}
	last := odim[r-1]
	var idx [maxRank]int
	off := 0
	for o := 0; o < len(dst); o += last {
		row := dst[o : o+last]
		if st := istr[r-1]; st == 1 {
			copy(row, src[off:off+last])
		} else {
			for j := range row {
				row[j] = src[off+j*st]
			}
		}
		// Advance the index over axes 0..r-2.
		for a := r - 2; a >= 0; a-- {
			idx[a]++
			off += istr[a]
			if idx[a] < odim[a] {
				break
			}
			off -= idx[a] * istr[a]
			idx[a] = 0
		}
	}
}
