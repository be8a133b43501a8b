// Package qops registers the reference kernels of type conversion and
// quantization: Cast, CastLike, QuantizeLinear, DequantizeLinear,
// DynamicQuantizeLinear, QLinearConv, QLinearMatMul, ConvInteger, MatMulInteger.
//
// The kernels follow the ONNX operator documents; where a document leaves a
// case open, they do what ONNX's Python reference runtime (which produced the
// conformance data) does, and say so:
//   - Cast: see converter. Float to integer truncates; values out of range
//     (undefined in ONNX) saturate to int64 and then wrap to the target width.
//   - QuantizeLinear rounds x/scale half to even, then adds the zero point and
//     saturates. A zero scale gives +-Inf quotients, which saturate to the
//     type's range, and 0/0 gives the zero point; NaN input gives the zero
//     point (float8 outputs keep NaN).
//   - QLinearMatMul and QLinearConv compute the scale ratio in the scales'
//     type and round after adding the output zero point, as the reference does.
//
// Tests compare with ONNX's conformance data bit for bit (TestONNXBitExact)
// and, when KILN_ORT names a prepared copy of shared/tools/ort, with ONNX
// Runtime on random models (TestAgainstORT).
package qops
