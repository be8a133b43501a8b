package arith

import (
	"math"

	"github.com/kilnml/kiln/floatx"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// Every kernel here computes in one of three Go types and converts once at
// the edges: float types in float64 (rounded once to the output dtype),
// signed integers in int64 and unsigned integers (and bool) in uint64, so
// that integer results are exact (int64 never goes through float64, uint64
// never through int64) and narrower integers wrap as a C cast would.

// num is the set of types kernels compute in.
type num interface{ float64 | int64 | uint64 }

// kind classifies dtypes by the Go type they are computed in; kinds are bits
// so that an op can state the set it accepts.
type kind uint8

const (
	kFloat    kind = 1 << iota // float16/32/64, bfloat16, float8, float4: float64
	kSigned                    // int2/4/8/16/32/64: int64
	kUnsigned                  // uint2/4/8/16/32/64: uint64
	kBool                      // bool: uint64 0/1
	kString                    // string: compared or copied, never computed

	kInt     = kSigned | kUnsigned
	kNumeric = kFloat | kInt
)

func kindOf(dt ir.DType) kind {
	switch {
	case dt == ir.Bool:
		return kBool
	case dt == ir.String:
		return kString
	case dt.IsFloat():
		return kFloat
	case dt.IsInteger() && dt.IsSigned():
		return kSigned
	case dt.IsInteger():
		return kUnsigned
	}
	return 0
}

// load converts a tensor's elements to T (exactly, for the kind T belongs to).
func load[T num](t *ir.Tensor) []T {
	var z T
	switch any(z).(type) {
	case float64:
		if t.DType == ir.Float64 {
			return any(append([]float64(nil), t.F64()...)).([]T)
		}
		return any(t.Float64s()).([]T)
	case int64:
		if t.DType == ir.Int64 {
			return any(append([]int64(nil), t.I64()...)).([]T)
		}
		return any(t.Int64s()).([]T)
	default:
		if t.DType == ir.Uint64 {
			return any(append([]uint64(nil), t.U64()...)).([]T)
		}
		out := make([]uint64, t.Len())
		for i := range out {
			out[i] = uint64(t.Int64At(int64(i)))
		}
		return any(out).([]T)
	}
}

// store builds a tensor of dtype dt from values v. Floats round once to a
// float dtype (to nearest even); float values stored into an integer dtype
// truncate toward zero and saturate (NaN gives 0), as numpy's astype and a C
// cast do; integers wrap to narrower integers; anything non-zero is true.
func store[T num](dt ir.DType, dims []int64, v []T) *ir.Tensor {
	t := ir.NewTensor(dt, dims)
	switch v := any(v).(type) {
	case []float64:
		storeFloats(t, v)
	case []int64:
		switch {
		case dt == ir.Int64:
			copy(t.I64(), v)
		case dt.IsFloat():
			storeFloats(t, convert[float64](v))
		default:
			for i, x := range v {
				t.SetInt64At(int64(i), x)
			}
		}
	case []uint64:
		switch {
		case dt == ir.Uint64:
			copy(t.U64(), v)
		case dt.IsFloat():
			storeFloats(t, convert[float64](v))
		default:
			for i, x := range v {
				t.SetInt64At(int64(i), int64(x))
			}
		}
	}
	return t
}

func storeFloats(t *ir.Tensor, v []float64) {
	switch dt := t.DType; {
	case dt == ir.Float32:
		f := t.F32()
		for i, x := range v {
			f[i] = float32(x)
		}
	case dt == ir.Float64:
		copy(t.F64(), v)
	case dt == ir.BFloat16:
		u := t.U16()
		for i, x := range v {
			u[i] = floatx.F64ToBF16(x) // ir's setter rounds through float32
		}
	case dt == ir.Float8E4M3FN || dt == ir.Float8E4M3FNUZ || dt == ir.Float8E5M2 || dt == ir.Float8E5M2FNUZ:
		u := t.U8()
		for i, x := range v {
			u[i] = floatx.F64ToF8(x, ir.F8Format(dt), true)
		}
	case dt.IsInteger() && dt.IsSigned():
		lo, hi := dt.IntRange()
		for i, x := range v {
			t.SetInt64At(int64(i), truncInt(x, lo, hi))
		}
	case dt == ir.Uint64:
		u := t.U64()
		for i, x := range v {
			u[i] = truncUint(x)
		}
	case dt.IsInteger():
		_, hi := dt.IntRange()
		for i, x := range v {
			t.SetInt64At(int64(i), truncInt(x, 0, hi))
		}
	default:
		for i, x := range v {
			t.SetFloat64At(int64(i), x)
		}
	}
}

// truncInt converts toward zero, saturating at [lo, hi]; NaN gives 0.
func truncInt(x float64, lo, hi int64) int64 {
	switch {
	case math.IsNaN(x):
		return 0
	case x <= float64(lo):
		return lo
	case x >= float64(hi): // float64(hi) may round up to 2^63: compare before converting
		return hi
	}
	return int64(x)
}

func truncUint(x float64) uint64 {
	switch {
	case math.IsNaN(x) || x <= 0:
		return 0
	case x >= 18446744073709551615:
		return math.MaxUint64
	}
	return uint64(x)
}

// maxElements bounds what a broadcast may allocate (as in ops/nn and
// ops/qops), so that hostile shapes get an error instead of exhausting memory.
const maxElements = 1 << 31

// broadcast is ops.BroadcastDims with the error naming the node and a bound
// on the result's size.
func broadcast(c *ops.Ctx, shapes ...[]int64) ([]int64, error) {
	dims, err := ops.BroadcastDims(shapes...)
	if err != nil {
		return nil, c.Errorf("%v", err)
	}
	if n, err := ir.NumElements(dims); err != nil || n > maxElements {
		return nil, c.Errorf("broadcast output %v is too large", dims)
	}
	return dims, nil
}

// walk visits every element of a tensor of dims out in row-major order and
// calls fn(o, idx) with idx[k] the flat index of the element of input k
// (of dims ins[k]) that broadcasts to it. It is an odometer: no division per
// element. idx is reused between calls.
func walk(out []int64, ins [][]int64, fn func(o int64, idx []int64)) {
	n := int64(1)
	for _, d := range out {
		n *= d
	}
	if n == 0 {
		return
	}
	idx := make([]int64, len(ins))
	same := true
	for _, in := range ins {
		same = same && equalDims(in, out)
	}
	if same { // no broadcasting: every index is o
		for o := int64(0); o < n; o++ {
			for k := range idx {
				idx[k] = o
			}
			fn(o, idx)
		}
		return
	}
	rank := len(out)
	// str[k][ax]: stride of input k along output axis ax, 0 where it broadcasts.
	str := make([][]int64, len(ins))
	for k, in := range ins {
		str[k] = make([]int64, rank)
		st := int64(1)
		for ax := len(in) - 1; ax >= 0; ax-- {
			if in[ax] != 1 {
				str[k][rank-len(in)+ax] = st
			}
			st *= in[ax]
		}
	}
	pos := make([]int64, rank)
	for o := int64(0); o < n; o++ {
		fn(o, idx)
		for ax := rank - 1; ax >= 0; ax-- {
			pos[ax]++
			for k := range idx {
				idx[k] += str[k][ax]
			}
			if pos[ax] < out[ax] {
				break
			}
			for k := range idx {
				idx[k] -= str[k][ax] * out[ax]
			}
			pos[ax] = 0
		}
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

// zip applies f elementwise to a and b broadcast to out.
func zip[A, B, R any](a []A, b []B, ad, bd, out []int64, f func(x A, y B) R) []R {
	res := make([]R, numel(out))
	walk(out, [][]int64{ad, bd}, func(o int64, idx []int64) {
		res[o] = f(a[idx[0]], b[idx[1]])
	})
	return res
}

// convert is a Go conversion of every element (integer to float rounds to nearest).
func convert[R, T num](v []T) []R {
	out := make([]R, len(v))
	for i, x := range v {
		out[i] = R(x)
	}
	return out
}

func numel(dims []int64) int64 {
	n := int64(1)
	for _, d := range dims {
		n *= d
	}
	return n
}
