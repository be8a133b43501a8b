// Package nn registers the reference kernels of convolution, pooling,
// GEMM/MatMul, normalization, Resize and Einsum, and of the transformer ops
// Attention and RotaryEmbedding, for ONNX opsets 7 to 25:
//
//   - Conv, ConvTranspose (any spatial rank, groups, dilations, auto_pad,
//     output_padding/output_shape); Gemm, MatMul, Einsum.
//   - MaxPool (with Indices), AveragePool, LpPool, their Global forms, MaxUnpool.
//   - BatchNormalization (inference and training_mode), LayerNormalization,
//     InstanceNormalization, GroupNormalization, RMSNormalization, LRN,
//     MeanVarianceNormalization.
//   - Resize (nearest/linear/cubic, every coordinate transformation,
//     antialias, axes, keep_aspect_ratio_policy) and Upsample.
//   - Attention (opsets 23, 24) and RotaryEmbedding.
//
// These kernels are the specification the fast kernels are tested against:
// plain loops that accumulate in float64 and round once into the input's
// element type (float16, bfloat16, float32, float64). Window geometry
// (geom.go) and the per-kernel-offset index runs of Conv (taps.go) are
// computed once per call so that inner loops are bounds-free multiply-adds.
// Output planes are independent, so Conv, ConvTranspose, Gemm and MatMul
// spread them over cores; results do not depend on scheduling.
package nn
