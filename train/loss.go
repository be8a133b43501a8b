package train

import (
	"fmt"
	"math"
)

// CrossEntropy is the mean over the batch of −log softmax(logits)[label]
// (log-softmax followed by negative log-likelihood, computed together for
// stability). logits is [N,C]; labels are class indices. It returns the
// scalar loss and, through Backward, d loss/d logits = (softmax − onehot)/N.
func (c *Ctx) CrossEntropy(logits *Tensor, labels []int) *Tensor {
	if len(logits.Shape) != 2 || logits.Shape[0] != len(labels) {
		panic(fmt.Sprintf("train.CrossEntropy: logits %v for %d labels", logits.Shape, len(labels)))
	}
	n, cl := logits.Shape[0], logits.Shape[1]
	for i, l := range labels {
		if l < 0 || l >= cl {
			panic(fmt.Sprintf("train.CrossEntropy: label %d of example %d outside 0..%d", l, i, cl-1))
		}
	}
	// logp keeps log-softmax for the backward pass.
	logp := c.alloc(n * cl)
	out := c.newResult([]int{}, func(out *Tensor) {
		if !logits.requiresGrad {
			return
		}
		g := out.Grad[0] / float32(n)
		dl := c.gradOf(logits)
		for i := 0; i < n; i++ {
			for j := 0; j < cl; j++ {
				p := float32(math.Exp(float64(logp[i*cl+j])))
				if j == labels[i] {
					p--
				}
				dl[i*cl+j] += g * p
			}
		}
	}, logits)
	total := 0.0
	for i := 0; i < n; i++ {
		row := logits.Data[i*cl : (i+1)*cl]
		m := math.Inf(-1)
		for _, v := range row {
			m = max(m, float64(v))
		}
		s := 0.0
		for _, v := range row {
			s += math.Exp(float64(v) - m)
		}
		lse := m + math.Log(s)
		for j, v := range row {
			logp[i*cl+j] = float32(float64(v) - lse)
		}
		total -= float64(logp[i*cl+labels[i]])
	}
	out.Data[0] = float32(total / float64(max(n, 1)))
	return out
}
