package train

import "fmt"

// ReLU computes max(x, 0). Its gradient passes where the output is positive.
func (c *Ctx) ReLU(x *Tensor) *Tensor {
	out := c.newResult(x.Shape, func(out *Tensor) {
		if !x.requiresGrad {
			return
		}
		dx := c.gradOf(x)
		c.parallel(len(dx), func(_, lo, hi int) {
			y, dy := out.Data[lo:hi], out.Grad[lo:hi]
			d := dx[lo:hi]
			for i := range d {
				if y[i] > 0 {
					d[i] += dy[i]
				}
			}
		})
	}, x)
	c.parallel(len(x.Data), func(_, lo, hi int) {
		src, dst := x.Data[lo:hi], out.Data[lo:hi]
		for i, v := range src {
			dst[i] = max(v, 0)
		}
	})
	return out
}

// Flatten reshapes [N, ...] to [N, rest], as ONNX Flatten with axis 1.
func (c *Ctx) Flatten(x *Tensor) *Tensor {
	if len(x.Shape) < 1 {
		panic("train.Flatten: scalar input")
	}
	n := x.Shape[0]
	rest := 1
	if n > 0 {
		rest = len(x.Data) / n
	}
	return c.Reshape(x, n, rest)
}

// Reshape gives x another shape with the same number of elements (a copy on
// the forward pass keeps buffers owned by exactly one tensor).
func (c *Ctx) Reshape(x *Tensor, shape ...int) *Tensor {
	if numel(shape) != len(x.Data) {
		panic(fmt.Sprintf("train.Reshape: %v to %v", x.Shape, shape))
	}
	out := c.newResult(shape, func(out *Tensor) {
		if x.requiresGrad {
			dx := c.gradOf(x)
			for i, g := range out.Grad {
				dx[i] += g
			}
		}
	}, x)
	copy(out.Data, x.Data)
	return out
}
