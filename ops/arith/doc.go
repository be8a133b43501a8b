// Package arith registers the reference kernels of elementwise arithmetic,
// activations, comparisons, logic, reductions and softmax.
//
// Every op family is one table from op name to its elementwise function(s)
// and one generic kernel:
//   - binary.go: Add, Sub, Mul, Div, Mod, Pow, BitShift, And/Or/Xor and the
//     comparisons (broadcasting, two inputs of one dtype, Pow mixed);
//   - variadic.go: Max, Min, Sum, Mean over 1..N broadcasting inputs;
//   - unary.go: activations and math functions, attributes read per node;
//   - select.go: Clip, PRelu, Where;
//   - reduce.go: the Reduce* ops (axes as attribute or input by opset,
//     keepdims, noop_with_empty_axes, identities for empty reductions);
//   - softmax.go: ArgMax/ArgMin, Softmax/LogSoftmax/Hardmax.
//
// Numbers are computed in one of three Go types (values.go): float dtypes in
// float64, rounded once to the output dtype; signed integers in int64 and
// unsigned integers in uint64, exactly, wrapping to narrower types as C
// does. Integer division by zero is an error, not a panic.
//
// Inference keeps symbolic dims, and carries the values of small integer
// tensors (symbolic.go) through shape arithmetic, so that a PyTorch
// export's Shape → Equal → Where → Expand chain keeps its batch symbol.
package arith
