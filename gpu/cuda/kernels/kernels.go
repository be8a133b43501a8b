// Package kernels holds kiln's CUDA C sources, embedded in the binary and
// compiled by NVRTC for the device at run time (see gpu/cuda.Device.Module).
package kernels

import _ "embed"

// Source is kiln.cu: im2col, GEMM epilogues, elementwise, pooling,
// softmax, layernorm, quantize/dequantize and cast kernels.
//
//go:embed kiln.cu
var Source string

// Name is the program name NVRTC reports errors under.
const Name = "kiln.cu"
