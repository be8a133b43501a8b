package arith

import (
	"bytes"
	"math"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// binFns is one elementwise function in each computation type; nil where
// the op does not exist for that kind.
type binFns struct {
	f func(a, b float64) float64
	i func(a, b int64) int64
	u func(a, b uint64) uint64 // unsigned integers and bool (0/1)
}

// binaryOp is a broadcasting op of two inputs of one dtype.
type binaryOp struct {
	since   int64
	kinds   kind     // accepted input kinds
	out     ir.DType // ir.Bool for comparisons; Undefined: the inputs' dtype
	divides bool     // an integer divisor of 0 is an error
	fns     func(c *ops.Ctx) (binFns, error)
}

func static(f binFns) func(*ops.Ctx) (binFns, error) {
	return func(*ops.Ctx) (binFns, error) { return f, nil }
}

// Generic elementwise functions, instantiated once per computation type.
func add[T num](a, b T) T { return a + b }
func sub[T num](a, b T) T { return a - b }
func mul[T num](a, b T) T { return a * b }
func div[T num](a, b T) T { return a / b } // integers truncate; the kernel rejects 0 divisors

// maxOf and minOf propagate NaN (a != a only for NaN), as numpy's maximum does.
func maxOf[T num](a, b T) T {
	if a != a || a > b {
		return a
	}
	return b
}

func minOf[T num](a, b T) T {
	if a != a || a < b {
		return a
	}
	return b
}

func truth[T num](c bool) T {
	if c {
		return 1
	}
	return 0
}

func equal[T num](a, b T) T     { return truth[T](a == b) }
func less[T num](a, b T) T      { return truth[T](a < b) }
func lessEq[T num](a, b T) T    { return truth[T](a <= b) }
func greater[T num](a, b T) T   { return truth[T](a > b) }
func greaterEq[T num](a, b T) T { return truth[T](a >= b) }

// typed groups the instantiations of one generic function.
func typed(f func(a, b float64) float64, i func(a, b int64) int64, u func(a, b uint64) uint64) binFns {
	return binFns{f, i, u}
}

var binaries = map[string]*binaryOp{
	"Add":            {kinds: kNumeric, fns: static(typed(add[float64], add[int64], add[uint64]))},
	"Sub":            {kinds: kNumeric, fns: static(typed(sub[float64], sub[int64], sub[uint64]))},
	"Mul":            {kinds: kNumeric, fns: static(typed(mul[float64], mul[int64], mul[uint64]))},
	"Div":            {kinds: kNumeric, divides: true, fns: static(typed(div[float64], div[int64], div[uint64]))},
	"Mod":            {since: 10, kinds: kNumeric, divides: true, fns: modFns},
	"BitShift":       {since: 11, kinds: kUnsigned, fns: shiftFns},
	"And":            {kinds: kBool, fns: static(binFns{u: func(a, b uint64) uint64 { return a & b }})},
	"Or":             {kinds: kBool, fns: static(binFns{u: func(a, b uint64) uint64 { return a | b }})},
	"Xor":            {kinds: kBool, fns: static(binFns{u: func(a, b uint64) uint64 { return a ^ b }})},
	"Equal":          {kinds: kNumeric | kBool | kString, out: ir.Bool, fns: static(typed(equal[float64], equal[int64], equal[uint64]))},
	"Less":           {kinds: kNumeric, out: ir.Bool, fns: static(typed(less[float64], less[int64], less[uint64]))},
	"LessOrEqual":    {since: 12, kinds: kNumeric, out: ir.Bool, fns: static(typed(lessEq[float64], lessEq[int64], lessEq[uint64]))},
	"Greater":        {kinds: kNumeric, out: ir.Bool, fns: static(typed(greater[float64], greater[int64], greater[uint64]))},
	"GreaterOrEqual": {since: 12, kinds: kNumeric, out: ir.Bool, fns: static(typed(greaterEq[float64], greaterEq[int64], greaterEq[uint64]))},
}

// modFns follows Mod's fmod attribute: 0 gives the remainder with the sign
// of the divisor (Python's %), 1 the sign of the dividend (C's fmod).
func modFns(c *ops.Ctx) (binFns, error) {
	fmod := c.Int("fmod", 0)
	if fmod != 0 && fmod != 1 {
		return binFns{}, c.Errorf("fmod must be 0 or 1, got %d", fmod)
	}
	if fmod == 1 {
		return binFns{
			f: math.Mod,
			i: func(a, b int64) int64 { return a % b },
			u: func(a, b uint64) uint64 { return a % b },
		}, nil
	}
	return binFns{
		f: func(a, b float64) float64 {
			r := math.Mod(a, b)
			if r != 0 && (r < 0) != (b < 0) {
				r += b
			}
			return r
		},
		i: func(a, b int64) int64 {
			r := a % b
			if r != 0 && (r < 0) != (b < 0) {
				r += b
			}
			return r
		},
		u: func(a, b uint64) uint64 { return a % b },
	}, nil
}

// shiftFns computes in uint64 and lets the store wrap to the dtype's width, so
// shifting a uint8 left by 8 or more gives 0, as it does for uint64 by 64.
func shiftFns(c *ops.Ctx) (binFns, error) {
	switch d := c.String("direction", ""); d {
	case "LEFT":
		return binFns{u: func(a, b uint64) uint64 { return a << b }}, nil
	case "RIGHT":
		return binFns{u: func(a, b uint64) uint64 { return a >> b }}, nil
	default:
		return binFns{}, c.Errorf("direction must be LEFT or RIGHT, got %q", d)
	}
}

func init() {
	for name, op := range binaries {
		ops.Register(&ops.Op{Type: name, MinOpset: max(op.since, 7), Run: op.run, Infer: op.infer})
	}
	ops.Register(&ops.Op{Type: "Pow", MinOpset: 7, Run: pow, Infer: ops.BroadcastInfer(ir.Undefined, 0, 1)})
}

// inputs checks that the node got between lo and hi inputs (present where
// required) and returns them.
func inputs(c *ops.Ctx, in []*ir.Tensor, lo, hi int) error {
	if len(in) < lo || (hi >= 0 && len(in) > hi) {
		if lo == hi {
			return c.Errorf("takes %d inputs, got %d", lo, len(in))
		}
		return c.Errorf("takes %d to %d inputs, got %d", lo, hi, len(in))
	}
	for i := 0; i < lo; i++ {
		if in[i] == nil {
			return c.Errorf("input %d is required", i)
		}
	}
	return nil
}

func (op *binaryOp) run(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	if err := inputs(c, in, 2, 2); err != nil {
		return nil, err
	}
	a, b := in[0], in[1]
	if a.DType != b.DType {
		return nil, c.Errorf("inputs have different dtypes %s and %s", a.DType, b.DType)
	}
	k := kindOf(a.DType)
	if k&op.kinds == 0 {
		return nil, c.Errorf("does not accept %s inputs", a.DType)
	}
	f, err := op.fns(c)
	if err != nil {
		return nil, err
	}
	dims, err := broadcast(c, a.Dims, b.Dims)
	if err != nil {
		return nil, err
	}
	dt := a.DType
	if op.out != ir.Undefined {
		dt = op.out
	}
	var out *ir.Tensor
	switch k {
	case kFloat:
		out = apply2(f.f, a, b, dims, dt)
	case kSigned:
		if op.divides && hasZero(load[int64](b)) {
			return nil, c.Errorf("integer division by zero")
		}
		out = apply2(f.i, a, b, dims, dt)
	case kUnsigned, kBool:
		if op.divides && hasZero(load[uint64](b)) {
			return nil, c.Errorf("integer division by zero")
		}
		out = apply2(f.u, a, b, dims, dt)
	case kString: // only Equal accepts strings
		sa, sb := a.Strings, b.Strings
		out = store(dt, dims, zip(sa, sb, a.Dims, b.Dims, dims, func(x, y []byte) uint64 {
			return truth[uint64](bytes.Equal(x, y))
		}))
	}
	return []*ir.Tensor{out}, nil
}

func apply2[T num](f func(a, b T) T, a, b *ir.Tensor, dims []int64, dt ir.DType) *ir.Tensor {
	return store(dt, dims, zip(load[T](a), load[T](b), a.Dims, b.Dims, dims, f))
}

func hasZero[T num](v []T) bool {
	for _, x := range v {
		if x == 0 {
			return true
		}
	}
	return false
}

func (op *binaryOp) infer(c *ops.InferCtx) error {
	if err := c.CheckSameDType(0, 1); err != nil {
		return err
	}
	if len(c.In) != 2 {
		return c.Errorf("takes 2 inputs, got %d", len(c.In))
	}
	if t := c.In[0]; t != nil && t.DType != ir.Undefined && kindOf(t.DType)&op.kinds == 0 {
		return c.Errorf("does not accept %s inputs", t.DType)
	}
	if err := ops.BroadcastInfer(op.out, 0, 1)(c); err != nil {
		return err
	}
	if f, err := op.fns(ops.NewCtx(c.Node, c.Opset)); err == nil {
		inferValues(c, c.Node.OpType, exactInt(f, op.divides), 0, 1)
	}
	return nil
}

// pow raises a base of any numeric dtype to an exponent of any numeric dtype;
// the output has the base's dtype. Integer powers of integers are exact
// (wrapping like repeated multiplication); otherwise the power is taken in
// float64 and stored into the base's dtype (truncated for integer bases).
func pow(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	if err := inputs(c, in, 2, 2); err != nil {
		return nil, err
	}
	x, y := in[0], in[1]
	kx, ky := kindOf(x.DType), kindOf(y.DType)
	if kx&kNumeric == 0 || ky&kNumeric == 0 {
		return nil, c.Errorf("does not accept %s to the power of %s", x.DType, y.DType)
	}
	dims, err := broadcast(c, x.Dims, y.Dims)
	if err != nil {
		return nil, err
	}
	var (
		out     *ir.Tensor
		zeroNeg bool
	)
	switch {
	case kx == kFloat || ky == kFloat:
		out = apply2(math.Pow, x, y, dims, x.DType)
	case kx == kSigned:
		out, zeroNeg = powInt(load[int64](x), y, dims, x)
	default:
		out, zeroNeg = powInt(load[uint64](x), y, dims, x)
	}
	if zeroNeg {
		return nil, c.Errorf("integer 0 to a negative power")
	}
	return []*ir.Tensor{out}, nil
}

// powInt raises integers to integer powers; zeroNeg reports 0 to a
// negative power (a division by zero).
func powInt[T int64 | uint64](base []T, y *ir.Tensor, dims []int64, x *ir.Tensor) (out *ir.Tensor, zeroNeg bool) {
	var r []T
	if kindOf(y.DType) == kSigned {
		r = zip(base, load[int64](y), x.Dims, y.Dims, dims, func(b T, e int64) T {
			if e < 0 {
				zeroNeg = zeroNeg || b == 0
				return ipowNeg(b, e)
			}
			return ipow(b, uint64(e))
		})
	} else {
		r = zip(base, load[uint64](y), x.Dims, y.Dims, dims, ipow[T])
	}
	return store(x.DType, dims, r), zeroNeg
}

// ipow is exact square-and-multiply (wrapping on overflow, as integer
// multiplication does).
func ipow[T int64 | uint64](b T, e uint64) T {
	r := T(1)
	for ; e > 0; e >>= 1 {
		if e&1 == 1 {
			r *= b
		}
		b *= b
	}
	return r
}

// ipowNeg is b^e for e < 0 truncated toward zero: 1/b^|e| is 0 unless |b|
// is 1 (the caller rejects b == 0).
func ipowNeg[T int64 | uint64](b T, e int64) T {
	switch {
	case b == 1:
		return 1
	case b < 0 && T(0)-b == 1: // b == -1
		if e%2 == 0 {
			return 1
		}
		return b
	}
	return 0
}
