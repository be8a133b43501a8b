// Package layout registers the reference kernels of shape and data-movement
// ops: Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Concat, Split,
// Slice, Gather, GatherElements, GatherND, Scatter, ScatterElements,
// ScatterND, Shape, Size, Constant, ConstantOfShape, Identity, Dropout, Pad,
// Expand, Tile, Range, OneHot, NonZero, Compress, Trilu, EyeLike,
// DepthToSpace, SpaceToDepth, ReverseSequence, CumSum, TopK and Unique, for
// ONNX opsets 7 to 25.
//
// Kernels move elements without looking at them, so they work for every
// element type: byte-aligned types are copied as bytes (contiguous runs with
// copy, strided runs through fixed-width words), packed sub-byte types
// (int4, uint4, int2, uint2, float4e2m1) bit field by bit field, strings as
// slices. Most ops reduce to one strided copy (strided.go): Transpose,
// Slice with any steps, Expand (stride 0 on broadcast axes), Tile and
// DepthToSpace/SpaceToDepth.
//
// Inference keeps symbolic dims wherever the op allows and propagates the
// symbolic values of small integer tensors (ops.InferCtx.Value/OutValue):
// Shape produces its input's dims, Gather, Slice, Concat, Split, Squeeze,
// Unsqueeze, Identity and 0/1-D Reshape carry them, and Reshape, Expand,
// Tile, ConstantOfShape, Range, OneHot and TopK consume them, so PyTorch's
// Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1])) keeps the batch
// symbol. Known negative numbers in values use ops.ValueDim's encoding.
// Concat of a known value with an input of unknown value but known length
// gives a partial value (unknown elements), which still keeps the symbols.
//
// Every output is capped at 2^31 elements: a hostile shape value must fail
// with an error naming the node, not exhaust memory.
package layout
