// Package passes holds kiln's graph → graph optimizations, one rewrite rule
// per file, each keeping the graph valid (ir.Model.Verify) and runnable by
// the reference executor (ops.Run), so that every pass is tested by "same
// outputs before and after":
//
//   - FoldConstants: nodes whose outputs are known at build time become
//     initializers (bounded in size; random ops are never folded);
//   - RemoveNoOps: Identity, inference Dropout, Cast to the same type,
//     identity Transpose, Reshape/Flatten/Squeeze/Unsqueeze/Expand whose
//     output shape provably equals the input's, Unsqueeze→Squeeze pairs;
//   - SimplifyShapeChains: Reshape shapes computed by Shape→Gather→Concat
//     chains become constants using ONNX's 0 ("copy this dim"), so dynamic
//     batch survives and the chain dies;
//   - FoldBatchNorm: BatchNormalization folded into the Conv, ConvTranspose
//     or Gemm before it;
//   - FuseLayers: Conv/Gemm/MatMul + bias Add + residual Add + activation
//     into one kiln.Conv/kiln.Gemm/kiln.MatMul node (see docs/ENGINE.md);
//   - EliminateDeadCode: nodes nobody reads, unused initializers.
//
// Optimize runs them all to a fixed point. The builder registers Optimize
// as its "optimize" pass (builder/optimize.go); this package does not
// import the builder, which imports it.
//
// Names: a value that survives keeps its name; a fused node writes the
// output of its last member, so graph outputs and calibration ranges keep
// their names. When a removed node wrote a graph output, its producer's
// output is renamed instead.
package passes
