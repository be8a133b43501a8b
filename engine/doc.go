// Package engine is kiln's runtime: a Plan is a lowered, serializable
// program (steps over numbered values, weights already packed for their
// kernels), an Engine is a plan bound to kernels, and a Context executes it
// with named bindings. Loading a plan needs neither the builder nor ONNX.
//
// # Program model
//
// Every tensor the program touches is a Value: a graph input, a weight
// (constant, stored in the plan), or the output of a Step. A Step runs one
// Kernel (a backend's implementation of a possibly fused layer) with a
// tactic chosen at build time. Kernels are recreated at load time from their
// id and encoded parameters through a registry that backends fill in init.
//
// # Shapes
//
// Input shapes may vary within an optimization profile. When a context's
// input shapes change, a shape pass walks the steps asking each kernel for
// its output dims; steps marked ShapeStep (small integer tensors computed
// from shapes and constants, e.g. PyTorch's Shape→Gather→Concat chains that
// feed Reshape) are executed during that pass so their values are known to
// the kernels that read them. Activation memory comes from one arena per
// context, laid out by the builder's liveness-based planner at the
// profile's maximum shapes, so a context never allocates after its first
// Execute for a given shape.
package engine
