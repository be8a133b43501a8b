package train

import (
	"fmt"

	"github.com/kilnml/kiln/kernels/gemm"
)

// Linear computes x [N,in] · wᵀ + b with w [out,in] (PyTorch's layout, and
// ONNX Gemm's with transB=1) and b [out] (may be nil). Forward and the input
// gradient split the batch rows over the workers; the weight and bias
// gradients split the output features. wᵀ is laid out once per forward
// pass, so that the workers' products read it row-major rather than each
// packing its transpose.
func (c *Ctx) Linear(x, w, b *Tensor) *Tensor {
	if len(x.Shape) != 2 || len(w.Shape) != 2 || x.Shape[1] != w.Shape[1] {
		panic(fmt.Sprintf("train.Linear: input %v and weight %v do not fit", x.Shape, w.Shape))
	}
	if b != nil && (len(b.Shape) != 1 || b.Shape[0] != w.Shape[0]) {
		panic(fmt.Sprintf("train.Linear: bias %v for %d outputs", b.Shape, w.Shape[0]))
	}
	n, in, outF := x.Shape[0], x.Shape[1], w.Shape[0]
	inputs := []*Tensor{x, w}
	if b != nil {
		inputs = append(inputs, b)
	}
	out := c.newResult([]int{n, outF}, func(out *Tensor) { c.linearBackward(x, w, b, out) }, inputs...)
	wt := c.alloc(in * outF)
	c.parallel(outF, func(_, o0, o1 int) {
		for o := o0; o < o1; o++ {
			for i, v := range w.Data[o*in : (o+1)*in] {
				wt[i*outF+o] = v
			}
		}
	})
	c.parallel(n, func(_, lo, hi int) {
		y := out.Data[lo*outF : hi*outF]
		gemm.Sgemm(false, false, hi-lo, outF, in, x.Data[lo*in:], in, wt, outF, 0, y, outF)
		if b != nil {
			for r := 0; r < hi-lo; r++ {
				row := y[r*outF : (r+1)*outF]
				for j := range row {
					row[j] += b.Data[j]
				}
			}
		}
	})
	return out
}

func (c *Ctx) linearBackward(x, w, b, out *Tensor) {
	n, in, outF := x.Shape[0], x.Shape[1], w.Shape[0]
	dy := out.Grad
	if x.requiresGrad {
		dx := c.gradOf(x)
		c.parallel(n, func(_, lo, hi int) {
			// dx[lo:hi] += dy[lo:hi] · w
			gemm.Sgemm(false, false, hi-lo, in, outF, dy[lo*outF:], outF, w.Data, in, 1, dx[lo*in:], in)
		})
	}
	wGrad, bGrad := w.requiresGrad, b != nil && b.requiresGrad
	if !wGrad && !bGrad {
		return
	}
	var dw, db []float32
	if wGrad {
		dw = c.gradOf(w)
	}
	if bGrad {
		db = c.gradOf(b)
	}
	c.parallel(outF, func(_, o0, o1 int) {
		if wGrad {
			// dw[o0:o1] += dy[:, o0:o1]ᵀ · x
			gemm.Sgemm(true, false, o1-o0, in, n, dy[o0:], outF, x.Data, in, 1, dw[o0*in:], in)
		}
		if bGrad {
			for o := o0; o < o1; o++ {
				s := 0.0
				for i := 0; i < n; i++ {
					s += float64(dy[i*outF+o])
				}
				db[o] += float32(s)
			}
		}
	})
}
