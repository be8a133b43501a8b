package train

import (
	"math"
	"math/rand/v2"
	"testing"
)

// projection returns sum(out ⊙ r) as a scalar tensor on the tape: a loss
// whose gradient with respect to out is r, so every element of out's
// gradient is exercised with a different weight.
func projection(c *Ctx, x *Tensor, r []float32) *Tensor {
	out := c.newResult([]int{}, func(out *Tensor) {
		if x.requiresGrad {
			dx := c.gradOf(x)
			for i := range dx {
				dx[i] += out.Grad[0] * r[i]
			}
		}
	}, x)
	s := 0.0
	for i, v := range x.Data {
		s += float64(v) * float64(r[i])
	}
	out.Data[0] = float32(s)
	return out
}

func randParam(r *rand.Rand, shape ...int) *Tensor {
	t := NewParam(shape...)
	for i := range t.Data {
		t.Data[i] = float32(r.NormFloat64())
	}
	return t
}

// checkGrads compares the analytic gradient of f's scalar output with
// respect to every element of every input against central differences. The
// loss is re-evaluated in float64 from float32 forward passes, so eps is
// chosen large enough for float32 rounding and small against curvature;
// callers keep inputs away from the kinks of ReLU and max.
func checkGrads(t *testing.T, name string, inputs []*Tensor, eps, tol float64, f func(c *Ctx) *Tensor) {
	t.Helper()
	for _, workers := range []int{1, 3} {
		c := NewCtx(workers)
		for _, in := range inputs {
			clear(in.Grad)
		}
		loss := f(c)
		if err := c.Backward(loss); err != nil {
			t.Fatal(err)
		}
		analytic := make([][]float32, len(inputs))
		for k, in := range inputs {
			analytic[k] = append([]float32(nil), in.Grad...)
		}
		eval := func() float64 {
			c := NewCtx(workers)
			c.Grad = false
			return float64(f(c).Data[0])
		}
		for k, in := range inputs {
			for i := range in.Data {
				orig := in.Data[i]
				in.Data[i] = orig + float32(eps)
				up := eval()
				in.Data[i] = orig - float32(eps)
				down := eval()
				in.Data[i] = orig
				num := (up - down) / (2 * eps)
				got := float64(analytic[k][i])
				if math.Abs(num-got) > tol*(1+math.Abs(num)) {
					t.Fatalf("%s (workers %d): input %d element %d: analytic %g, finite difference %g", name, workers, k, i, got, num)
				}
			}
		}
	}
}

func TestConv2dGradients(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	x := randParam(r, 2, 3, 6, 5)
	w := randParam(r, 4, 3, 3, 3)
	b := randParam(r, 4)
	proj := make([]float32, 2*4*4*3)
	for i := range proj {
		proj[i] = float32(r.NormFloat64())
	}
	checkGrads(t, "Conv2d", []*Tensor{x, w, b}, 1e-2, 2e-3, func(c *Ctx) *Tensor {
		return projection(c, c.Conv2d(x, w, b), proj)
	})
}

func TestConv2dMatchesFloat64Loop(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 1))
	n, ch, h, wd, oc, k := 3, 5, 9, 7, 6, 3
	x, w, b := randParam(r, n, ch, h, wd), randParam(r, oc, ch, k, k), randParam(r, oc)
	out := NewCtx(2).Conv2d(x, w, b)
	oh, ow := h-k+1, wd-k+1
	for i := 0; i < n; i++ {
		for o := 0; o < oc; o++ {
			for y := 0; y < oh; y++ {
				for z := 0; z < ow; z++ {
					s := float64(b.Data[o])
					for cc := 0; cc < ch; cc++ {
						for a := 0; a < k; a++ {
							for e := 0; e < k; e++ {
								s += float64(x.Data[((i*ch+cc)*h+y+a)*wd+z+e]) * float64(w.Data[((o*ch+cc)*k+a)*k+e])
							}
						}
					}
					got := float64(out.Data[((i*oc+o)*oh+y)*ow+z])
					if math.Abs(got-s) > 1e-4*(1+math.Abs(s)) {
						t.Fatalf("out[%d,%d,%d,%d] = %v, want %v", i, o, y, z, got, s)
					}
				}
			}
		}
	}
}

func TestLinearGradients(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 1))
	x, w, b := randParam(r, 5, 7), randParam(r, 4, 7), randParam(r, 4)
	proj := make([]float32, 5*4)
	for i := range proj {
		proj[i] = float32(r.NormFloat64())
	}
	checkGrads(t, "Linear", []*Tensor{x, w, b}, 1e-2, 2e-3, func(c *Ctx) *Tensor {
		return projection(c, c.Linear(x, w, b), proj)
	})
}

// spread fills t with distinct values at least 0.1 apart in random order,
// away from 0, so that ReLU and max have no ties or kinks within eps.
func spread(r *rand.Rand, t *Tensor) {
	perm := r.Perm(len(t.Data))
	for i, p := range perm {
		v := float32(p-len(perm)/2)*0.1 + 0.05
		t.Data[i] = v
	}
}

func TestReLUAndMaxPoolGradients(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 1))
	x := NewParam(2, 3, 7, 6)
	spread(r, x)
	proj := make([]float32, 2*3*3*3)
	for i := range proj {
		proj[i] = float32(r.NormFloat64())
	}
	checkGrads(t, "ReLU+MaxPool2d", []*Tensor{x}, 1e-2, 1e-3, func(c *Ctx) *Tensor {
		return projection(c, c.MaxPool2d(c.ReLU(x), 2, 2), proj)
	})
	// stride differing from the kernel (overlapping windows)
	proj2 := make([]float32, 2*3*3*2)
	for i := range proj2 {
		proj2[i] = float32(r.NormFloat64())
	}
	checkGrads(t, "MaxPool2d k3 s2", []*Tensor{x}, 1e-2, 1e-3, func(c *Ctx) *Tensor {
		return projection(c, c.MaxPool2d(x, 3, 2), proj2)
	})
}

func TestFlattenAndCrossEntropyGradients(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 1))
	x := randParam(r, 4, 2, 5)
	labels := []int{3, 0, 9, 5}
	checkGrads(t, "Flatten+CrossEntropy", []*Tensor{x}, 1e-2, 2e-3, func(c *Ctx) *Tensor {
		return c.CrossEntropy(c.Flatten(x), labels)
	})
}

func TestCrossEntropyValue(t *testing.T) {
	c := NewCtx(1)
	logits := FromData([]float32{1, 2, 3, 1000, 0, 0}, 2, 3)
	got := float64(c.CrossEntropy(logits, []int{2, 0}).Data[0])
	want := (-(3 - math.Log(math.Exp(1)+math.Exp(2)+math.Exp(3))) + 0) / 2
	if math.Abs(got-want) > 1e-6 {
		t.Fatalf("loss %v, want %v", got, want)
	}
}

// The whole model's gradient, end to end, on a tiny batch: checks that the
// layers compose (shapes, accumulation into shared tensors).
func TestSimpleCNNGradientSpotCheck(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 1))
	m := NewSimpleCNN(7)
	x := make([]float32, 2*28*28)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	labels := []int{4, 1}
	c := NewCtx(2)
	loss := c.CrossEntropy(m.Forward(c, FromData(x, 2, 1, 28, 28)), labels)
	if err := c.Backward(loss); err != nil {
		t.Fatal(err)
	}
	eval := func() float64 {
		c := NewCtx(2)
		c.Grad = false
		return float64(c.CrossEntropy(m.Forward(c, FromData(x, 2, 1, 28, 28)), labels).Data[0])
	}
	for _, p := range m.Params() {
		for k := 0; k < 3; k++ {
			i := r.IntN(len(p.T.Data))
			g := float64(p.T.Grad[i])
			orig := p.T.Data[i]
			const eps = 2e-3 // the loss is float32: its rounding (~2e-7) over 2·eps bounds the precision (~1e-4)
			p.T.Data[i] = orig + eps
			up := eval()
			p.T.Data[i] = orig - eps
			down := eval()
			p.T.Data[i] = orig
			num := (up - down) / (2 * eps)
			if math.Abs(num-g) > 8e-4+3e-2*math.Abs(num) {
				t.Errorf("%s[%d]: analytic %g, finite difference %g", p.Name, i, g, num)
			}
		}
	}
}

func TestPositiveMask(t *testing.T) {
	for _, y := range []float32{1, 1e-45, 3.4e38, float32(math.Inf(1))} {
		if positiveMask(y) != ^uint32(0) {
			t.Fatalf("positiveMask(%v) = %#x, want all ones", y, positiveMask(y))
		}
	}
	for _, y := range []float32{0, float32(math.Copysign(0, -1)), -1e-45, -1, float32(math.Inf(-1)), float32(math.NaN()), -float32(math.NaN())} {
		if positiveMask(y) != 0 {
			t.Fatalf("positiveMask(%v) = %#x, want 0", y, positiveMask(y))
		}
	}
}

// The 2×2/2 pool loop picks the same element as the general window loop,
// ties (first maximum in row-major order), NaNs and odd sizes included.
func TestMaxPool2x2MatchesGeneralLoop(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, hw := range [][2]int{{2, 2}, {5, 7}, {26, 26}, {11, 4}} {
		h, w := hw[0], hw[1]
		oh, ow := (h-2)/2+1, (w-2)/2+1
		src := make([]float32, h*w)
		for i := range src {
			src[i] = float32(r.IntN(3)) // many ties
			if r.IntN(17) == 0 {
				src[i] = float32(math.NaN())
			}
		}
		d1, d2 := make([]float32, oh*ow), make([]float32, oh*ow)
		a1, a2 := make([]int32, oh*ow), make([]int32, oh*ow)
		maxPool2x2(src, w, d1, a1, oh, ow)
		maxPoolPlane(src, w, d2, a2, oh, ow, 2, 2)
		for i := range d1 {
			if math.Float32bits(d1[i]) != math.Float32bits(d2[i]) || a1[i] != a2[i] {
				t.Fatalf("%dx%d output %d: 2x2 loop %v at %d, general %v at %d", h, w, i, d1[i], a1[i], d2[i], a2[i])
			}
		}
	}
}
