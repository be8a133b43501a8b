package qops

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/kilnml/kiln/floatx"
	"github.com/kilnml/kiln/ir"
)

// converter writes values into a tensor of any element type the way ONNX's
// Cast does (reference: the ONNX Python reference runtime, i.e. numpy and
// ml_dtypes):
//   - floats round to nearest even, once, from the exact source value;
//     bfloat16 from float64 goes through float32 (as ONNX Runtime and
//     Eigen do); float8e8m0 through float32 (as ONNX's reference does);
//   - float8 follows the saturate flag (Cast's tables), float4e2m1 always
//     saturates, float8e8m0 uses round and sat;
//   - integers from floats truncate toward zero; out-of-range values are
//     undefined in ONNX: kiln saturates to int64 and then wraps to the
//     target width like integer-to-integer casts (so float 15 -> int4 is -1,
//     as the ONNX conformance data has it), and NaN gives 0;
//   - integers from integers wrap (two's complement), bool is x != 0 (NaN is true);
//   - strings print as numpy's str() does and parse plain and scientific
//     numbers, "INF", "+INF", "-INF" and "NaN" in any case.
type converter struct {
	to    ir.DType
	sat   bool
	round floatx.E8M0Round
}

// float stores f (an exact float64 image of the source value) at i.
func (cv *converter) float(t *ir.Tensor, i int64, f float64) {
	switch cv.to {
	case ir.Float32:
		t.F32()[i] = float32(f)
	case ir.Float64:
		t.F64()[i] = f
	case ir.Float16:
		t.U16()[i] = floatx.F64ToF16(f)
	case ir.BFloat16:
		t.U16()[i] = floatx.F32ToBF16(float32(f))
	case ir.Float8E4M3FN, ir.Float8E4M3FNUZ, ir.Float8E5M2, ir.Float8E5M2FNUZ:
		t.U8()[i] = floatx.F64ToF8(f, ir.F8Format(cv.to), cv.sat)
	case ir.Float8E8M0:
		t.U8()[i] = floatx.F64ToE8M0(float64(float32(f)), cv.round, cv.sat)
	case ir.Float4E2M1:
		setNibble(t, i, floatx.F64ToF4E2M1(f))
	case ir.Bool:
		if f != 0 {
			t.Data[i] = 1
		} else {
			t.Data[i] = 0
		}
	case ir.Uint64:
		switch {
		case math.IsNaN(f):
			t.U64()[i] = 0
		case f >= 18446744073709551615:
			t.U64()[i] = math.MaxUint64
		case f >= 0:
			t.U64()[i] = uint64(f)
		default:
			t.U64()[i] = uint64(truncInt64(f))
		}
	default: // the other integer types
		t.SetInt64At(i, truncInt64(f))
	}
}

// truncInt64 truncates toward zero, saturating to int64; NaN gives 0.
func truncInt64(f float64) int64 {
	switch {
	case math.IsNaN(f):
		return 0
	case f >= 9223372036854775807:
		return math.MaxInt64
	case f <= -9223372036854775808:
		return math.MinInt64
	}
	return int64(f)
}

// int stores an integer (or bool) value at i.
func (cv *converter) int(t *ir.Tensor, i int64, n int64) {
	switch {
	case cv.to == ir.Float32:
		t.F32()[i] = float32(n) // one rounding, from the exact integer
	case cv.to == ir.BFloat16:
		t.U16()[i] = floatx.F32ToBF16(float32(n))
	case cv.to.IsFloat():
		cv.float(t, i, float64(n)) // exact below 2^53; beyond, these formats overflow anyway
	default:
		t.SetInt64At(i, n) // wraps; bool is n != 0
	}
}

// uint stores a uint64 source value at i.
func (cv *converter) uint(t *ir.Tensor, i int64, u uint64) {
	switch {
	case cv.to == ir.Float32:
		t.F32()[i] = float32(u)
	case cv.to == ir.BFloat16:
		t.U16()[i] = floatx.F32ToBF16(float32(u))
	case cv.to.IsFloat():
		cv.float(t, i, float64(u))
	case cv.to == ir.Uint64:
		t.U64()[i] = u
	default:
		t.SetInt64At(i, int64(u))
	}
}

// convert casts src into a new tensor of cv.to; it errors only for strings
// that are not numbers.
func (cv *converter) convert(src *ir.Tensor) (*ir.Tensor, error) {
	dst := ir.NewTensor(cv.to, src.Dims)
	n := src.Len()
	if cv.to == ir.String {
		for i := int64(0); i < n; i++ {
			dst.Strings[i] = []byte(formatElem(src, i))
		}
		return dst, nil
	}
	for i := int64(0); i < n; i++ {
		switch {
		case src.DType == ir.String:
			if err := cv.parse(dst, i, string(src.Strings[i])); err != nil {
				return nil, fmt.Errorf("element %d: %v", i, err)
			}
		case src.DType == ir.Uint64:
			cv.uint(dst, i, src.U64()[i])
		case src.DType.IsFloat():
			cv.float(dst, i, src.Float64At(i))
		default:
			cv.int(dst, i, src.Int64At(i))
		}
	}
	return dst, nil
}

// parse converts one string element. Integer targets parse integers
// exactly; anything else (and integer targets given "2.5" or "1e3") goes
// through float64.
func (cv *converter) parse(t *ir.Tensor, i int64, s string) error {
	s = strings.TrimSpace(s)
	if cv.to == ir.Bool {
		switch strings.ToLower(s) {
		case "true":
			t.Data[i] = 1
			return nil
		case "false":
			t.Data[i] = 0
			return nil
		}
	}
	if !cv.to.IsFloat() {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			cv.int(t, i, n)
			return nil
		}
		if u, err := strconv.ParseUint(s, 10, 64); err == nil {
			cv.uint(t, i, u)
			return nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			cv.float(t, i, f) // +-Inf or 0, as C's strtod gives
			return nil
		}
		return fmt.Errorf("string %q is not a number", s)
	}
	cv.float(t, i, f)
	return nil
}

// formatElem prints element i as numpy's str() would: integers in decimal,
// bools as True/False, floats in the shortest form that reads back to the
// same value of the source type, positional for 1e-4 <= |v| < 1e16 (with
// ".0" when integral), scientific otherwise ("1e-07", "1.5e+20").
func formatElem(t *ir.Tensor, i int64) string {
	switch {
	case t.DType == ir.String:
		return string(t.Strings[i])
	case t.DType == ir.Bool:
		if t.Data[i] != 0 {
			return "True"
		}
		return "False"
	case t.DType == ir.Uint64:
		return strconv.FormatUint(t.U64()[i], 10)
	case t.DType.IsFloat():
		return formatFloat(t.Float64At(i), t.DType)
	}
	return strconv.FormatInt(t.Int64At(i), 10)
}

func formatFloat(v float64, dt ir.DType) string {
	switch {
	case math.IsNaN(v):
		return "nan"
	case math.IsInf(v, 1):
		return "inf"
	case math.IsInf(v, -1):
		return "-inf"
	}
	digits := shortestDigits(v, dt) // e.g. "1.2345e+02"
	mant, expStr, _ := strings.Cut(digits, "e")
	exp, _ := strconv.Atoi(expStr)
	if a := math.Abs(v); a != 0 && (a < 1e-4 || a >= 1e16) {
		mant = strings.TrimSuffix(strings.TrimRight(mant, "0"), ".")
		sign := "+"
		if exp < 0 {
			sign, exp = "-", -exp
		}
		return fmt.Sprintf("%se%s%02d", mant, sign, exp)
	}
	// positional: let strconv place the decimal point for the same digits
	prec := 0
	if dot := strings.IndexByte(mant, '.'); dot >= 0 {
		prec = len(strings.TrimRight(mant[dot+1:], "0"))
	}
	prec -= exp
	if prec < 1 {
		prec = 1
	}
	s := strconv.FormatFloat(v, 'f', prec, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(s, "0")
		if strings.HasSuffix(s, ".") {
			s += "0"
		}
	}
	return s
}

// shortestDigits returns v in %e form with the fewest digits that read back,
// rounded to dt, as the same value.
func shortestDigits(v float64, dt ir.DType) string {
	switch dt {
	case ir.Float64:
		return strconv.FormatFloat(v, 'e', -1, 64)
	case ir.Float32:
		return strconv.FormatFloat(v, 'e', -1, 32)
	}
	probe := ir.NewTensor(dt, []int64{1})
	cv := &converter{to: dt, sat: true}
	for p := 0; p < 17; p++ {
		s := strconv.FormatFloat(v, 'e', p, 64)
		f, _ := strconv.ParseFloat(s, 64)
		cv.float(probe, 0, f)
		if probe.Float64At(0) == v {
			return s
		}
	}
	return strconv.FormatFloat(v, 'e', -1, 64)
}
