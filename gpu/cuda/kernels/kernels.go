// Package kernels holds kiln's CUDA C sources, embedded in the binary and
// compiled by NVRTC for the device at run time (see gpu/cuda.Device.Module).
// Each module is common.cuh (conversions, activations, epilogue stores)
// followed by one source file.
package kernels

import _ "embed"

//go:embed common.cuh
var common string

//go:embed kiln.cu
var kiln string

//go:embed igemm.cu
var igemm string

//go:embed nhwc.cuh
var nhwc string

//go:embed wgmma.cu
var wgmma string

//go:embed wgmmap.cu
var wgmmap string

//go:embed wgmmah.cu
var wgmmah string

// Source is kiln.cu: im2col, GEMM epilogues, direct convolution,
// elementwise, pooling, softmax, layernorm, quantize/dequantize and cast
// kernels.
var Source = common + kiln

// Name is the program name NVRTC reports errors in Source under.
const Name = "kiln.cu"

// IGemm is igemm.cu, the implicit-GEMM convolution on the tensor cores
// (mma.sync), a module of its own so that a device whose compiler rejects
// it still runs everything else.
var IGemm = common + nhwc + igemm

// IGemmName is the program name NVRTC reports errors in IGemm under.
const IGemmName = "igemm.cu"

// WGemm is wgmma.cu, wgmmap.cu and wgmmah.cu, the NHWC implicit GEMM for
// 8-bit inputs on Hopper's warpgroup MMA (sm_90a), its persistent form and
// the halo-tile 3×3 kernels, a module of their own: a device or compiler
// without wgmma keeps igemm.cu's kernels.
var WGemm = common + nhwc + wgmma + wgmmap + wgmmah

// WGemmName is the program name NVRTC reports errors in WGemm under.
const WGemmName = "wgmma.cu"
