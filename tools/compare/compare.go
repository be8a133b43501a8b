// Package compare checks tensors against expected values with ONNX's test
// rule and reports the size of the differences. `kiln run --compare` and
// `kiln compare` print its results.
package compare

import (
	"bytes"
	"fmt"
	"math"

	"github.com/kilnml/kiln/ir"
)

// Tolerance is the rule |actual − expected| ≤ ATol + RTol·|expected| that
// ONNX's backend test runner applies to floating-point outputs. Every other
// type must match exactly.
type Tolerance struct {
	ATol, RTol float64
}

// ONNXTest is the tolerance of ONNX's backend test runner.
var ONNXTest = Tolerance{ATol: 1e-7, RTol: 1e-3}

// Allows reports whether actual is within tolerance of expected: NaN
// matches only NaN, an infinity only the same infinity.
func (t Tolerance) Allows(actual, expected float64) bool {
	switch {
	case math.IsNaN(expected) || math.IsNaN(actual):
		return math.IsNaN(expected) && math.IsNaN(actual)
	case math.IsInf(expected, 0) || math.IsInf(actual, 0):
		return actual == expected
	}
	return math.Abs(actual-expected) <= t.ATol+t.RTol*math.Abs(expected)
}

// Result describes how one actual tensor differs from the expected one.
type Result struct {
	Name string
	// Problem is set when the tensors cannot be compared element by element
	// (different dtypes or shapes); the numbers below are then zero.
	Problem string
	N       int64 // elements compared
	// Mismatches counts elements outside tolerance.
	Mismatches int64
	// MaxAbs is the largest |actual − expected| over elements where both are
	// finite; MaxRel the largest |actual − expected| / |expected| over those
	// whose expected value is not zero.
	MaxAbs, MaxRel float64
	// First is the index of the first mismatching element (-1 when none),
	// with its values.
	First            int64
	Actual, Expected string
}

// Pass reports whether the tensors matched.
func (r *Result) Pass() bool { return r.Problem == "" && r.Mismatches == 0 }

func (r *Result) String() string {
	if r.Problem != "" {
		return fmt.Sprintf("%s: FAIL: %s", r.Name, r.Problem)
	}
	s := fmt.Sprintf("%s: max abs %.3g, max rel %.3g", r.Name, r.MaxAbs, r.MaxRel)
	if r.Pass() {
		return s + ": PASS"
	}
	return fmt.Sprintf("%s: FAIL: %d of %d elements differ (first at %d: %s, expected %s)",
		s, r.Mismatches, r.N, r.First, r.Actual, r.Expected)
}

// Tensors compares actual with expected.
func Tensors(name string, actual, expected *ir.Tensor, tol Tolerance) *Result {
	r := &Result{Name: name, First: -1}
	if actual.DType != expected.DType {
		r.Problem = fmt.Sprintf("dtype %s, expected %s", actual.DType, expected.DType)
		return r
	}
	if !equalDims(actual.Dims, expected.Dims) {
		r.Problem = fmt.Sprintf("shape %v, expected %v", actual.Dims, expected.Dims)
		return r
	}
	for _, t := range []*ir.Tensor{actual, expected} {
		if err := t.Check(); err != nil {
			r.Problem = err.Error()
			return r
		}
	}
	r.N = expected.Len()
	var match func(i int64) bool
	var show func(t *ir.Tensor, i int64) string
	switch dt := expected.DType; {
	case dt == ir.String:
		match = func(i int64) bool { return bytes.Equal(actual.Strings[i], expected.Strings[i]) }
		show = func(t *ir.Tensor, i int64) string { return fmt.Sprintf("%q", t.Strings[i]) }
	case dt.IsFloat():
		match = func(i int64) bool { return tol.Allows(actual.Float64At(i), expected.Float64At(i)) }
		show = func(t *ir.Tensor, i int64) string { return fmt.Sprint(t.Float64At(i)) }
	case dt == ir.Uint64:
		u := func(t *ir.Tensor, i int64) uint64 { return t.U64()[i] }
		match = func(i int64) bool { return u(actual, i) == u(expected, i) }
		show = func(t *ir.Tensor, i int64) string { return fmt.Sprint(u(t, i)) }
	default: // integers and bool: exact
		match = func(i int64) bool { return actual.Int64At(i) == expected.Int64At(i) }
		show = func(t *ir.Tensor, i int64) string { return fmt.Sprint(t.Int64At(i)) }
	}
	for i := int64(0); i < r.N; i++ {
		if expected.DType != ir.String {
			r.addDiff(actual.Float64At(i), expected.Float64At(i))
		}
		if !match(i) {
			if r.Mismatches == 0 {
				r.First, r.Actual, r.Expected = i, show(actual, i), show(expected, i)
			}
			r.Mismatches++
		}
	}
	return r
}

func (r *Result) addDiff(a, e float64) {
	if math.IsNaN(a) || math.IsNaN(e) || math.IsInf(a, 0) || math.IsInf(e, 0) {
		return
	}
	d := math.Abs(a - e)
	r.MaxAbs = max(r.MaxAbs, d)
	if e != 0 {
		r.MaxRel = max(r.MaxRel, d/math.Abs(e))
	}
}

func equalDims(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
