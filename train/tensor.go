// Package train is kiln's small training engine: float32 tensors with
// reverse-mode automatic differentiation for the layers of a CNN (Conv2d,
// ReLU, MaxPool2d, Linear, flatten, log-softmax + cross-entropy), Adam and
// SGD with momentum, PyTorch's default initialization, safetensors
// checkpoints and ONNX export.
//
// Work is split over a fixed set of workers (Ctx.Workers) by image or by
// output channel, never so that two workers add into the same value, and
// every reduction runs in a fixed order: the same seed gives bitwise the same
// weights, whatever the scheduling (and in fact whatever the worker count).
// The matrix products run on kernels/gemm, whose SIMD micro-kernels (FMA)
// round differently from its portable Go kernel: bits match between runs on
// the same kind of CPU and build (AVX-512, AVX2, or -tags noasm), not across.
package train

import (
	"fmt"
	"runtime"
)

// Tensor is a dense float32 array with an optional gradient. Tensors made
// by operations while Ctx.Grad is on remember how to send their gradient to
// their inputs.
type Tensor struct {
	Shape []int
	Data  []float32
	// Grad has the shape of Data once a gradient has reached the tensor (or
	// always, for parameters).
	Grad []float32
	// requiresGrad marks parameters and everything computed from them.
	requiresGrad bool
	backward     func()
}

// NewParam makes a leaf tensor that collects gradients (a weight or bias).
func NewParam(shape ...int) *Tensor {
	n := numel(shape)
	return &Tensor{Shape: shape, Data: make([]float32, n), Grad: make([]float32, n), requiresGrad: true}
}

// FromData wraps data (not copied) as a constant tensor of the given shape.
func FromData(data []float32, shape ...int) *Tensor {
	if numel(shape) != len(data) {
		panic(fmt.Sprintf("train.FromData: %d values for shape %v", len(data), shape))
	}
	return &Tensor{Shape: shape, Data: data}
}

// Len is the number of elements.
func (t *Tensor) Len() int { return len(t.Data) }

// RequiresGrad reports whether gradients flow into this tensor.
func (t *Tensor) RequiresGrad() bool { return t.requiresGrad }

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		if d < 0 {
			panic(fmt.Sprintf("train: negative dimension in %v", shape))
		}
		n *= d
	}
	return n
}

// Ctx runs operations: it owns the worker set, the tape of operations to
// differentiate, and an arena that recycles activation buffers between steps.
type Ctx struct {
	// Workers is the number of goroutines an operation is split over.
	Workers int
	// Grad records operations for Backward; off for evaluation.
	Grad bool
	tape []*Tensor
	mem  arena
}

// NewCtx returns a context with the given worker count (≤ 0 means GOMAXPROCS).
func NewCtx(workers int) *Ctx {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	return &Ctx{Workers: workers, Grad: true}
}

// Reset forgets the tape and makes every buffer handed out since the last
// Reset available again. Tensors from before the Reset must not be used.
func (c *Ctx) Reset() {
	clear(c.tape)
	c.tape = c.tape[:0]
	c.mem.reset()
}

// alloc returns an uninitialized buffer of n floats that lives until Reset.
func (c *Ctx) alloc(n int) []float32 { return c.mem.get(n) }

// zeros returns a zeroed buffer of n floats that lives until Reset.
func (c *Ctx) zeros(n int) []float32 {
	b := c.mem.get(n)
	clear(b)
	return b
}

// newResult makes the output tensor of an operation on inputs; when any
// input requires a gradient and Ctx.Grad is on, the result joins the tape
// with the given backward function.
func (c *Ctx) newResult(shape []int, backward func(out *Tensor), inputs ...*Tensor) *Tensor {
	out := &Tensor{Shape: shape, Data: c.alloc(numel(shape))}
	if !c.Grad {
		return out
	}
	for _, in := range inputs {
		if in.requiresGrad {
			out.requiresGrad = true
		}
	}
	if out.requiresGrad {
		out.backward = func() { backward(out) }
		c.tape = append(c.tape, out)
	}
	return out
}

// gradOf returns t's gradient buffer, allocating a zeroed one on first use.
func (c *Ctx) gradOf(t *Tensor) []float32 {
	if t.Grad == nil {
		t.Grad = c.zeros(len(t.Data))
	}
	return t.Grad
}

// Backward computes d(loss)/d(t) for every tensor on the tape that loss
// depends on, adding into the parameters' Grad. loss must be a scalar made
// under this context.
func (c *Ctx) Backward(loss *Tensor) error {
	if len(loss.Data) != 1 {
		return fmt.Errorf("train: Backward needs a scalar loss, got shape %v", loss.Shape)
	}
	if !loss.requiresGrad {
		return fmt.Errorf("train: the loss does not depend on any parameter (was Ctx.Grad off?)")
	}
	c.gradOf(loss)[0] = 1
	// The tape is in creation order, which is topological: walking it
	// backwards visits every tensor after all of its consumers.
	for i := len(c.tape) - 1; i >= 0; i-- {
		t := c.tape[i]
		if t.Grad != nil && t.backward != nil {
			t.backward()
		}
	}
	return nil
}

// arena hands out float32 buffers and takes all of them back at once. Buffers
// are kept per size, so a training loop with a fixed batch size allocates
// only during its first step.
type arena struct {
	free map[int][][]float32
	used map[int][][]float32
}

func (a *arena) get(n int) []float32 {
	if a.free == nil {
		a.free, a.used = map[int][][]float32{}, map[int][][]float32{}
	}
	var b []float32
	if l := a.free[n]; len(l) > 0 {
		b = l[len(l)-1]
		a.free[n] = l[:len(l)-1]
	} else {
		b = make([]float32, n)
	}
	a.used[n] = append(a.used[n], b)
	return b
}

func (a *arena) reset() {
	for n, l := range a.used {
		a.free[n] = append(a.free[n], l...)
		a.used[n] = l[:0]
	}
}
