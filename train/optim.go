package train

import (
	"fmt"
	"math"
)

// Optimizer updates parameters from their gradients.
type Optimizer interface {
	// Step applies one update from the current gradients.
	Step()
	// ZeroGrad clears the gradients before the next backward pass.
	ZeroGrad()
}

// Adam is torch.optim.Adam without weight decay.
type Adam struct {
	LR, Beta1, Beta2, Eps float64
	params                []*Tensor
	m, v                  [][]float32
	t                     int
}

// NewAdam makes Adam with PyTorch's defaults (β=(0.9, 0.999), ε=1e-8).
func NewAdam(params []NamedParam, lr float64) *Adam {
	a := &Adam{LR: lr, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
	for _, p := range params {
		a.params = append(a.params, p.T)
		a.m = append(a.m, make([]float32, len(p.T.Data)))
		a.v = append(a.v, make([]float32, len(p.T.Data)))
	}
	return a
}

func (a *Adam) Step() {
	a.t++
	// 1−β in float64, then rounded, as PyTorch passes 1−beta (a Python
	// float) to add_/addcmul_: float32(1)−float32(0.999) would be
	// 0.000999987, 1.3e-5 off, a bias in every second moment.
	b1, b2 := float32(a.Beta1), float32(a.Beta2)
	c1, c2 := float32(1-a.Beta1), float32(1-a.Beta2)
	bc1 := 1 - math.Pow(a.Beta1, float64(a.t))
	bc2 := 1 - math.Pow(a.Beta2, float64(a.t))
	stepSize := float32(a.LR / bc1)
	sqrtBc2 := float32(math.Sqrt(bc2))
	eps := float32(a.Eps)
	for k, p := range a.params {
		m, v, g, w := a.m[k], a.v[k], p.Grad, p.Data
		for i := range w {
			m[i] = b1*m[i] + c1*g[i]
			v[i] = b2*v[i] + c2*g[i]*g[i]
			denom := float32(math.Sqrt(float64(v[i])))/sqrtBc2 + eps
			w[i] -= stepSize * m[i] / denom
		}
	}
}

func (a *Adam) ZeroGrad() { zeroGrads(a.params) }

// SGD is torch.optim.SGD with momentum (no dampening, no Nesterov, no weight decay).
type SGD struct {
	LR, Momentum float64
	params       []*Tensor
	buf          [][]float32
	started      bool
}

// NewSGD makes SGD with momentum.
func NewSGD(params []NamedParam, lr, momentum float64) *SGD {
	s := &SGD{LR: lr, Momentum: momentum}
	for _, p := range params {
		s.params = append(s.params, p.T)
		s.buf = append(s.buf, make([]float32, len(p.T.Data)))
	}
	return s
}

func (s *SGD) Step() {
	lr, mu := float32(s.LR), float32(s.Momentum)
	for k, p := range s.params {
		b, g, w := s.buf[k], p.Grad, p.Data
		for i := range w {
			if s.started {
				b[i] = mu*b[i] + g[i]
			} else {
				b[i] = g[i] // PyTorch starts the buffer at the first gradient
			}
			w[i] -= lr * b[i]
		}
	}
	s.started = true
}

func (s *SGD) ZeroGrad() { zeroGrads(s.params) }

func zeroGrads(ps []*Tensor) {
	for _, p := range ps {
		clear(p.Grad)
	}
}

// NewOptimizer makes "adam" or "sgd" (momentum 0.9).
func NewOptimizer(name string, params []NamedParam, lr float64) (Optimizer, error) {
	switch name {
	case "adam", "Adam", "":
		return NewAdam(params, lr), nil
	case "sgd", "SGD":
		return NewSGD(params, lr, 0.9), nil
	}
	return nil, fmt.Errorf("train: unknown optimizer %q (want adam or sgd)", name)
}
