// Package arith registers the reference kernels of elementwise arithmetic,
// activations, comparisons, logic, reductions and softmax.
package arith
