package train

import (
	"fmt"

	"github.com/kilnml/kiln/kernels/gemm"
)

// Conv2d computes the 2-D convolution (cross-correlation, as in PyTorch and
// ONNX) of x [N,C,H,W] with w [OC,C,K,K] plus b [OC] (b may be nil), stride
// 1 and no padding: out [N,OC,H-K+1,W-K+1].
//
// Each image is lowered to a column matrix (im2col, [C·K·K, OH·OW]) and
// multiplied by the weights viewed as [OC, C·K·K], packed once for the whole
// batch (gemm.PackA). The columns are kept for the weight gradient. Forward
// and the input gradient split the batch over the workers; the weight
// gradient splits its columns (C·K·K, in blocks of the micro-kernel's
// width) and the bias gradient the output channels, each worker summing
// over all images in order.
func (c *Ctx) Conv2d(x, w, b *Tensor) *Tensor {
	if len(x.Shape) != 4 || len(w.Shape) != 4 || w.Shape[1] != x.Shape[1] || w.Shape[2] != w.Shape[3] {
		panic(fmt.Sprintf("train.Conv2d: input %v and weight %v do not fit", x.Shape, w.Shape))
	}
	if b != nil && (len(b.Shape) != 1 || b.Shape[0] != w.Shape[0]) {
		panic(fmt.Sprintf("train.Conv2d: bias %v for %d output channels", b.Shape, w.Shape[0]))
	}
	n, ch, h, wd := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	oc, k := w.Shape[0], w.Shape[2]
	g := convGeom{c: ch, h: h, w: wd, k: k, oh: h - k + 1, ow: wd - k + 1}
	if g.oh <= 0 || g.ow <= 0 {
		panic(fmt.Sprintf("train.Conv2d: kernel %d larger than input %dx%d", k, h, wd))
	}
	ckk, ohw := g.c*k*k, g.oh*g.ow
	inputs := []*Tensor{x, w}
	if b != nil {
		inputs = append(inputs, b)
	}
	// The columns of every image are kept only when a backward pass will
	// need them; evaluation reuses one buffer per worker.
	keep := false
	for _, in := range inputs {
		keep = keep || (c.Grad && in.requiresGrad)
	}
	var cols []float32
	var scratch [][]float32
	if keep {
		cols = c.alloc(n * ckk * ohw)
	} else {
		scratch = make([][]float32, c.Workers)
		for i := range scratch {
			scratch[i] = c.alloc(ckk * ohw)
		}
	}
	out := c.newResult([]int{n, oc, g.oh, g.ow}, func(out *Tensor) {
		c.conv2dBackward(x, w, b, out, cols, g)
	}, inputs...)
	wp := gemm.PackA(c.alloc(gemm.PackedSize(oc, ckk)), false, oc, ckk, w.Data, ckk)
	c.parallel(n, func(worker, lo, hi int) {
		for i := lo; i < hi; i++ {
			var col []float32
			if keep {
				col = cols[i*ckk*ohw : (i+1)*ckk*ohw]
			} else {
				col = scratch[worker]
			}
			g.im2col(x.Data[i*g.c*g.h*g.w:(i+1)*g.c*g.h*g.w], col)
			y := out.Data[i*oc*ohw : (i+1)*oc*ohw]
			gemm.SgemmPacked(wp, false, ohw, col, ohw, 0, y, ohw)
			if b != nil {
				for o := 0; o < oc; o++ {
					bv := b.Data[o]
					row := y[o*ohw : (o+1)*ohw]
					for j := range row {
						row[j] += bv
					}
				}
			}
		}
	})
	return out
}

func (c *Ctx) conv2dBackward(x, w, b, out *Tensor, cols []float32, g convGeom) {
	n, oc := x.Shape[0], w.Shape[0]
	ckk, ohw := g.c*g.k*g.k, g.oh*g.ow
	dy := out.Grad
	if w.requiresGrad {
		dw := c.gradOf(w)
		// Column blocks of dW, gradColBlock wide, so that no two workers
		// pack the same columns of colᵀ; dy_i (small) is packed by each.
		blocks := (ckk + gradColBlock - 1) / gradColBlock
		c.parallel(blocks, func(_, b0, b1 int) {
			j0, j1 := b0*gradColBlock, min(b1*gradColBlock, ckk)
			for i := 0; i < n; i++ {
				// dW[:, j0:j1] += dy_i · col_i[j0:j1]ᵀ
				col := cols[i*ckk*ohw : (i+1)*ckk*ohw]
				gemm.Sgemm(false, true, oc, j1-j0, ohw, dy[i*oc*ohw:], ohw, col[j0*ohw:], ohw, 1, dw[j0:], ckk)
			}
		})
	}
	if b != nil && b.requiresGrad {
		db := c.gradOf(b)
		c.parallel(oc, func(_, o0, o1 int) {
			for o := o0; o < o1; o++ {
				for i := 0; i < n; i++ {
					db[o] += sum32(dy[(i*oc+o)*ohw : (i*oc+o+1)*ohw])
				}
			}
		})
	}
	if x.requiresGrad {
		dx := c.gradOf(x)
		scratch := make([][]float32, c.Workers)
		for k := range scratch {
			scratch[k] = c.alloc(ckk * ohw)
		}
		wt := gemm.PackA(c.alloc(gemm.PackedSize(ckk, oc)), true, ckk, oc, w.Data, ckk)
		c.parallel(n, func(worker, lo, hi int) {
			dcol := scratch[worker]
			for i := lo; i < hi; i++ {
				// dcol = Wᵀ · dy_i, then scatter-add back to the image.
				gemm.SgemmPacked(wt, false, ohw, dy[i*oc*ohw:(i+1)*oc*ohw], ohw, 0, dcol, ohw)
				g.col2imAdd(dcol, dx[i*g.c*g.h*g.w:(i+1)*g.c*g.h*g.w])
			}
		})
	}
}

// gradColBlock is the width of the weight-gradient column blocks split
// among workers: the SIMD micro-kernel's tile width (avx.NR), so that a
// block fills whole tiles.
const gradColBlock = 32

// sum32 adds in float64 for a gradient that sums many terms.
func sum32(v []float32) float32 {
	s := 0.0
	for _, x := range v {
		s += float64(x)
	}
	return float32(s)
}

// convGeom is the geometry of a stride-1, unpadded convolution of one image.
type convGeom struct{ c, h, w, k, oh, ow int }

// im2col writes col[(ci·K+ki)·K+kj, oh·OW+ow] = x[ci, oh+ki, ow+kj].
func (g convGeom) im2col(x, col []float32) {
	r := 0
	for ci := 0; ci < g.c; ci++ {
		plane := x[ci*g.h*g.w : (ci+1)*g.h*g.w]
		for ki := 0; ki < g.k; ki++ {
			for kj := 0; kj < g.k; kj++ {
				dst := col[r*g.oh*g.ow : (r+1)*g.oh*g.ow]
				for oh := 0; oh < g.oh; oh++ {
					src := plane[(oh+ki)*g.w+kj : (oh+ki)*g.w+kj+g.ow]
					copy(dst[oh*g.ow:(oh+1)*g.ow], src)
				}
				r++
			}
		}
	}
}

// col2imAdd is im2col's adjoint: it adds every column entry back to the
// input position it was copied from.
func (g convGeom) col2imAdd(col, dx []float32) {
	r := 0
	for ci := 0; ci < g.c; ci++ {
		plane := dx[ci*g.h*g.w : (ci+1)*g.h*g.w]
		for ki := 0; ki < g.k; ki++ {
			for kj := 0; kj < g.k; kj++ {
				src := col[r*g.oh*g.ow : (r+1)*g.oh*g.ow]
				for oh := 0; oh < g.oh; oh++ {
					d := plane[(oh+ki)*g.w+kj : (oh+ki)*g.w+kj+g.ow]
					s := src[oh*g.ow : (oh+1)*g.ow]
					for j := range d {
						d[j] += s[j]
					}
				}
				r++
			}
		}
	}
}
