// Package conformance runs ONNX's backend test data (../shared/onnx-node and
// ../shared/models/**) through kiln's reference executor and compares with
// the expected outputs. The test in this package is the op-by-op
// correctness gate; expected.tsv records which cases pass and why the others
// are skipped.
package conformance

import (
	"fmt"
	"math"

	"github.com/kilnml/kiln/ir"
)

// Tolerances of ONNX's backend test runner for floating-point outputs.
const (
	RTol = 1e-3
	ATol = 1e-7
)

// Compare checks got against want: same dtype and dims; floats within
// |g-w| <= atol + rtol*|w| (NaN matches NaN, infinities must be equal);
// every other type exactly.
func Compare(got, want *ir.Tensor, rtol, atol float64) error {
	if got.DType != want.DType {
		return fmt.Errorf("dtype %s, want %s", got.DType, want.DType)
	}
	if len(got.Dims) != len(want.Dims) {
		return fmt.Errorf("shape %v, want %v", got.Dims, want.Dims)
	}
	for i := range got.Dims {
		if got.Dims[i] != want.Dims[i] {
			return fmt.Errorf("shape %v, want %v", got.Dims, want.Dims)
		}
	}
	n := want.Len()
	if want.DType == ir.String {
		for i := range want.Strings {
			if string(got.Strings[i]) != string(want.Strings[i]) {
				return fmt.Errorf("element %d: %q, want %q", i, got.Strings[i], want.Strings[i])
			}
		}
		return nil
	}
	if !want.DType.IsFloat() {
		for i := int64(0); i < n; i++ {
			if got.Int64At(i) != want.Int64At(i) {
				return fmt.Errorf("element %d: %d, want %d", i, got.Int64At(i), want.Int64At(i))
			}
		}
		return nil
	}
	bad, first := 0, int64(-1)
	maxAbs := 0.0
	for i := int64(0); i < n; i++ {
		g, w := got.Float64At(i), want.Float64At(i)
		if math.IsNaN(w) || math.IsNaN(g) {
			if math.IsNaN(w) != math.IsNaN(g) {
				bad++
				if first < 0 {
					first = i
				}
			}
			continue
		}
		if math.IsInf(w, 0) || math.IsInf(g, 0) {
			if g != w {
				bad++
				if first < 0 {
					first = i
				}
			}
			continue
		}
		d := math.Abs(g - w)
		maxAbs = max(maxAbs, d)
		if d > atol+rtol*math.Abs(w) {
			bad++
			if first < 0 {
				first = i
			}
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d elements differ (first at %d: %g, want %g; max abs diff %g)",
			bad, n, first, got.Float64At(first), want.Float64At(first), maxAbs)
	}
	return nil
}
