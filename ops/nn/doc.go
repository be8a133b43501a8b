// Package nn registers the reference kernels of convolution, pooling,
// GEMM/MatMul, normalization, Resize and Einsum.
package nn
