package train

import (
	"fmt"
	"math"
)

// MaxPool2d takes the maximum over k×k windows with the given stride and no
// padding (floor mode) of x [N,C,H,W]. The first maximal element of a window
// (in row-major order) receives the gradient, as in PyTorch.
func (c *Ctx) MaxPool2d(x *Tensor, k, stride int) *Tensor {
	if len(x.Shape) != 4 || k < 1 || stride < 1 || x.Shape[2] < k || x.Shape[3] < k {
		panic(fmt.Sprintf("train.MaxPool2d: kernel %d stride %d on %v", k, stride, x.Shape))
	}
	n, ch, h, w := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	oh, ow := (h-k)/stride+1, (w-k)/stride+1
	planes := n * ch
	// argmax holds, per output, the input's index within its plane; only a
	// backward pass needs it.
	var argmax []int32
	out := c.newResult([]int{n, ch, oh, ow}, func(out *Tensor) {
		if !x.requiresGrad {
			return
		}
		dx := c.gradOf(x)
		c.parallel(planes, func(_, lo, hi int) {
			for p := lo; p < hi; p++ {
				d := dx[p*h*w : (p+1)*h*w]
				for j, g := range out.Grad[p*oh*ow : (p+1)*oh*ow] {
					d[argmax[p*oh*ow+j]] += g
				}
			}
		})
	}, x)
	if out.requiresGrad {
		argmax = make([]int32, planes*oh*ow)
	}
	c.parallel(planes, func(_, lo, hi int) {
		for p := lo; p < hi; p++ {
			src := x.Data[p*h*w : (p+1)*h*w]
			dst := out.Data[p*oh*ow : (p+1)*oh*ow]
			var am []int32
			if argmax != nil {
				am = argmax[p*oh*ow : (p+1)*oh*ow]
			}
			for i := 0; i < oh; i++ {
				for j := 0; j < ow; j++ {
					best, bi := float32(math.Inf(-1)), -1
					for a := 0; a < k; a++ {
						row := (i*stride+a)*w + j*stride
						for b := 0; b < k; b++ {
							if v := src[row+b]; v > best || bi < 0 {
								best, bi = v, row+b
							}
						}
					}
					dst[i*ow+j] = best
					if am != nil {
						am[i*ow+j] = int32(bi)
					}
				}
			}
		}
	})
	return out
}
