package train

import (
	"fmt"
	"math"
)

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
				d[i] += math.Float32frombits(math.Float32bits(dy[i]) & positiveMask(y[i]))
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

// positiveMask is all ones when y > 0 (+Inf included) and zero for ±0,
// negatives and NaN, without a branch: ReLU's backward pass selects its
// gradient with it, and a branch on the sign of activations mispredicts
// about half the time. y > 0 exactly when its bits minus one, as uint32,
// fall below those of +Inf.
func positiveMask(y float32) uint32 {
	u := math.Float32bits(y) - 1
	return uint32((int64(u) - 0x7f800000) >> 63)
}
