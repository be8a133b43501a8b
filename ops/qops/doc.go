// Package qops registers the reference kernels of type conversion and
// quantization: Cast, CastLike, QuantizeLinear, DequantizeLinear,
// DynamicQuantizeLinear, QLinearConv, QLinearMatMul, ConvInteger, MatMulInteger.
package qops
