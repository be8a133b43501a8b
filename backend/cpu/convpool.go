package cpu

import (
	"fmt"
	"sync"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/kernels/avx"
	"github.com/kilnml/kiln/kernels/pack"
	"github.com/kilnml/kiln/ops/kiln"
)

// Convolutions with a fused 2×2 stride-2 max pool (kiln's pool attribute,
// ops/kiln/pool.go): the output is ONNX MaxPool(conv output) in floor
// mode. The SIMD drivers compute blocks of whole row pairs into a cached
// tile and pool it there (convPoolTile); the portable kernel computes the
// whole conv output into a reused buffer and pools it (any tactic can run
// the attribute that way). Both pools are the unfused graph's kernels
// (avx.MaxPoolRowsF32, avx.MaxPool2x2), so results are bit-identical.

// readPool reads the pool attribute for a conv lowering: only float32
// and int8/uint8 outputs, no residual input.
func readPool(n *ir.Node, prec string) (bool, error) {
	pool, err := kiln.PoolOf(n)
	if err != nil || !pool {
		return false, err
	}
	if prec != "f32" && prec != "i8" {
		return false, fmt.Errorf("%s: a fused pool needs float32 or int8/uint8 outputs (%s layer)", n, prec)
	}
	if hasInput(n, 3) {
		return false, fmt.Errorf("%s: a fused pool after a residual add is not supported", n)
	}
	return true, nil
}

// convOutputDims is a conv kernel's output shape for inputs in: [n, m, oh,
// ow] from geometry g, checked against the residual input in[1] when the
// kernel adds one, and halved by the fused 2×2 pool when pool is set.
func convOutputDims(in []*ir.Tensor, m int, g pack.Conv2D, resid, pool bool) ([]int64, error) {
	out := []int64{in[0].Dims[0], int64(m), int64(g.OH), int64(g.OW)}
	if resid {
		if err := checkResidual(in, out); err != nil {
			return nil, err
		}
	}
	if pool {
		return pooledDims(int(out[0]), m, g.OH, g.OW)
	}
	return out, nil
}

// checkResidual reports a residual input in[1] that is absent or not of
// the output's shape.
func checkResidual(in []*ir.Tensor, out []int64) error {
	if len(in) < 2 || in[1] == nil {
		return fmt.Errorf("the residual input is missing (output %v)", out)
	}
	if !sameDims(in[1].Dims, out) {
		return fmt.Errorf("residual %v does not match the output %v", in[1].Dims, out)
	}
	return nil
}

// pooledDims is the output of a pooled conv whose unpooled output is
// [n, m, oh, ow]; like ONNX's MaxPool, an output smaller than the window
// is an error.
func pooledDims(n, m, oh, ow int) ([]int64, error) {
	if oh < 2 || ow < 2 {
		return nil, fmt.Errorf("the conv output %d×%d is smaller than the fused 2×2 pool", oh, ow)
	}
	return []int64{int64(n), int64(m), int64(oh / 2), int64(ow / 2)}, nil
}

// poolPlanes pools planes of an oh×ow conv output of dtype dt into
// (oh/2)×(ow/2) planes of y.
func poolPlanes(y, x []byte, dt ir.DType, ow, oh, planes int) {
	pw, ph := ow/2, oh/2
	if pw == 0 || ph == 0 || planes == 0 {
		return
	}
	switch dt {
	case ir.Float32:
		yf, xf := bytesAs[float32](y, planes*ph*pw), bytesAs[float32](x, planes*oh*ow)
		for p := 0; p < planes; p++ {
			avx.MaxPoolRowsF32(yf[p*ph*pw:(p+1)*ph*pw], xf[p*oh*ow:(p+1)*oh*ow], ow, pw, ph)
		}
	default:
		avx.MaxPool2x2(y, x, ow, oh, planes, dt == ir.Uint8)
	}
}

// fullOutputs recycles the portable kernel's unpooled outputs (Run
// allocates nothing once one has been made).
type fullOutputs struct{ p sync.Pool }

type fullOutput struct {
	t    ir.Tensor
	dims [4]int64
}

// get returns a [n, m, oh, ow] tensor of dtype dt.
func (f *fullOutputs) get(dt ir.DType, n, m, oh, ow int) *fullOutput {
	o, _ := f.p.Get().(*fullOutput)
	if o == nil {
		o = new(fullOutput)
	}
	o.dims = [4]int64{int64(n), int64(m), int64(oh), int64(ow)}
	size := int(dt.ByteSize(int64(n * m * oh * ow)))
	if cap(o.t.Data) < size {
		o.t.Data = ir.AlignedBytes(int64(size))
	}
	o.t.DType, o.t.Dims, o.t.Data = dt, o.dims[:], o.t.Data[:size]
	return o
}

func (f *fullOutputs) put(o *fullOutput) { f.p.Put(o) }

// convPoolTile is a SIMD driver's pooled block: rows channels of cols
// conv outputs (2·pr rows of ow), pooled into pr rows of ow/2 per channel,
// channel i at y[i·ldy:].
func convPoolTile(y []byte, ldy int, tile []byte, dt ir.DType, rows, cols, ow, pr int) {
	pw := ow / 2
	esz := 1
	if dt == ir.Float32 {
		esz = 4
	}
	if ldy == pr*pw { // whole planes: the pooled channels are contiguous
		poolPlanes(y[:rows*ldy*esz], tile[:rows*cols*esz], dt, ow, 2*pr, rows)
		return
	}
	for i := 0; i < rows; i++ {
		poolPlanes(y[i*ldy*esz:(i*ldy+pr*pw)*esz], tile[i*cols*esz:(i+1)*cols*esz], dt, ow, 2*pr, 1)
	}
}

// poolBands splits ph pooled rows into bands of prows for items of about
// chunk conv columns, finer when per·bands items cannot feed th > 1
// threads (one thread gains nothing from more, narrower items).
func poolBands(ph, ow, chunk, per, th int) (prows, bands int) {
	prows = max(1, min(ph, chunk/(2*ow)))
	if th > 1 && per*((ph+prows-1)/prows) < 2*th {
		want := (2*th + per - 1) / per
		prows = max(1, min(prows, (ph+want-1)/want))
	}
	return prows, (ph + prows - 1) / prows
}
