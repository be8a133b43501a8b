// Package quant is kiln's quantization math: one parameter type (Params) for
// every quantized tensor, constructors from ranges, quantize / dequantize /
// fake-quantize, the mapping to and from ONNX Q/DQ nodes, and error
// measurement. Calibrators (quant/calib), the builder, Q/DQ import and export
// and QAT all build on it.
//
// # Mapping
//
// For integer targets
//
//	q = clamp(roundHalfEven(x/S) + Z, qmin, qmax)      x̂ = (q − Z)·S
//
// and for float targets (float8, float4e2m1, float16, bfloat16)
//
//	q = encode(x/S)  (round to nearest even)           x̂ = decode(q)·S
//
// x/S is one float32 division, the way ONNX's reference QuantizeLinear and
// ONNX Runtime compute it, so a quotient within one float32 ulp of a .5 tie
// rounds as theirs does (fast kernels that multiply by a precomputed 1/S
// instead may differ by one code there). Dequantization computes (q − Z)·S
// exactly and rounds once to float32. A NaN input quantizes to the lowest code
// for integer targets (ONNX leaves it undefined; ONNX Runtime and ONNX's
// reference on x86 give the lowest code) and to NaN for float formats that
// have one.
//
// # Ranges and conventions
//
//   - Symmetric (Z = 0), from amax = max|x|: S = amax/127 for int8 (the scale
//     TensorRT's calibration caches hold) in both ranges: narrow [-127, 127]
//     (ONNX Runtime's symmetric range; keeps -x representable, so weights and
//     products stay symmetric) or full [-128, 127] (the clamp range of ONNX
//     QuantizeLinear and of TensorRT's Q/DQ layers; -128 is reached only by
//     values below -127.5·S). Other signed widths use their own qmax (7 for
//     int4, 32767 for int16).
//   - Unsigned symmetric is the signed grid shifted: uint8 has Z = 128 and
//     S = amax/127 (narrow [1, 255]). ONNX Runtime's symmetric uint8 uses
//     S = 2·amax/255 instead; FromMinMax(Uint8, -amax, amax) gives that.
//   - Asymmetric (uint8 activations, ONNX Runtime's default), from min/max:
//     the range is first extended to contain 0, then S = (max−min)/255 and
//     Z = roundHalfEven(clamp(−min/S, 0, 255)), all in float32 exactly as
//     ONNX DynamicQuantizeLinear; 0 is always exactly representable, which
//     zero padding and ReLU need.
//   - Float8: S = amax/max, the format's largest finite value (448 for
//     E4M3FN), as TensorRT's FP8; Saturate (ONNX's default, set by the
//     constructors) clamps overflow to ±max, without it overflow gives ±Inf
//     (E5M2) or NaN (the formats without Inf). Float16 and bfloat16 use S = 1.
//   - Degenerate ranges: an all-zero tensor (amax == 0, or min == max == 0)
//     gets the scale of the range [−1, 1] for symmetric (1/127 for int8) and
//     of a range of width 1 for asymmetric (1/255 for uint8, as
//     DynamicQuantizeLinear), so zeros stay exact and no scale is ever 0.
//
// # Granularity
//
// Per-tensor (Axis == PerTensor), per-channel along any axis (one scale per
// index; weights are usually quantized per output channel: axis 0 for Conv,
// axis 1 for a MatMul/Gemm weight of shape [K, N]), and blocked (BlockSize > 0
// along Axis, the scales laid out as ONNX's blocked QuantizeLinear: x's dims
// with dims[Axis] replaced by ceil(dims[Axis]/B)). Axis is never negative in
// Params: FromQDQ normalizes ONNX axes.
//
// # Sub-byte types
//
// int4/uint4 (and int2/uint2, float4e2m1) are stored packed in ir.Tensor, low
// bits first: element 2k in the low nibble of byte k.
//
// # Agreement with ONNX, ONNX Runtime and TensorRT
//
//   - ONNX: bit-exact with every QuantizeLinear, DequantizeLinear and
//     DynamicQuantizeLinear conformance case in ../shared/onnx-node (float32
//     inputs), including blocked, int4/uint4/int2/uint2, int16/uint16, float8
//     and float4. ONNX's reference turns -0 into +0 for float4e2m1 (it adds the
//     zero point) but not for float8; kiln does the same.
//   - ONNX Runtime 1.30: bit-exact on Q→DQ pairs over every type, per-channel
//     and blocked, on data full of ties and near-ties, NaN and ±Inf
//     (ort_test.go, run with KILN_ORT_DIR). One difference: without
//     saturation, ONNX Runtime turns E4M3FN values in [480, 512)·S into ±448
//     where ONNX's spec (and kiln) give NaN. ONNX has no narrow range, so a
//     narrow Params exported as Q/DQ clamps to the full range in any runtime.
//     ONNX Runtime's Python quantizer computes scales and zero points in
//     float64 and uses S = 1 for an all-zero range: its parameters may differ
//     from kiln's in the last bit of the scale and, rarely, by one in the zero
//     point (e.g. int8 over [-2, 2]: kiln's float32 gives Z = -1).
//   - TensorRT: same scale convention (amax/127, amax/448 for FP8), rounding
//     (half to even) and clamp ([-128, 127]); TensorRT fails calibration on
//     an all-zero tensor where kiln uses the degenerate scale above.
//
// # Error measurement
//
// Measure reports MSE split into rounding (in-range elements) and clipping
// (saturated elements) parts, max |error|, SQNR in dB, and the shares of
// saturated and flushed-to-zero elements: the numbers calibrators trade off.
package quant
