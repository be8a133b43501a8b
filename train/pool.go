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
			if k == 2 && stride == 2 {
				maxPool2x2(src, w, dst, am, oh, ow)
			} else {
				maxPoolPlane(src, w, dst, am, oh, ow, k, stride)
			}
		}
	})
	return out
}

// maxPoolPlane takes the k×k window maxima of one plane src (row length w)
// into dst (oh×ow); am (nil for evaluation) gets the index in src of the
// first maximal element of each window in row-major order.
func maxPoolPlane(src []float32, w int, dst []float32, am []int32, oh, ow, k, stride int) {
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

// maxPool2x2 is the k=2, stride-2 case of maxPoolPlane (the SimpleCNN's
// pools), with the same choice of the first maximal element in row-major
// order. It selects with bit masks instead of branches: which element of a
// window is largest is a coin flip on real activations, and mispredicted
// branches made the branchy loop 1.7× slower.
func maxPool2x2(src []float32, w int, dst []float32, am []int32, oh, ow int) {
	for i := 0; i < oh; i++ {
		r0 := src[2*i*w : 2*i*w+2*ow]
		r1 := src[(2*i+1)*w : (2*i+1)*w+2*ow]
		d := dst[i*ow : (i+1)*ow]
		i0, i1 := uint32(2*i*w), uint32((2*i+1)*w) // plane index of each row's start
		for j := range d {
			v0, v1, v2, v3 := r0[2*j], r0[2*j+1], r1[2*j], r1[2*j+1]
			j2 := uint32(2 * j)
			best, bi := math.Float32bits(v0), i0+j2
			m := greaterMask(v1, v0)
			best ^= (best ^ math.Float32bits(v1)) & m
			bi ^= (bi ^ (i0 + j2 + 1)) & m
			m = greaterMask(v2, math.Float32frombits(best))
			best ^= (best ^ math.Float32bits(v2)) & m
			bi ^= (bi ^ (i1 + j2)) & m
			m = greaterMask(v3, math.Float32frombits(best))
			best ^= (best ^ math.Float32bits(v3)) & m
			bi ^= (bi ^ (i1 + j2 + 1)) & m
			d[j] = math.Float32frombits(best)
			if am != nil {
				am[i*ow+j] = int32(bi)
			}
		}
	}
}

// greaterMask is all ones when a > b (false for NaN), else zero; the
// compiler turns it into a flag set, not a branch.
func greaterMask(a, b float32) uint32 {
	var m uint32
	if a > b {
		m = ^uint32(0)
	}
	return m
}
