package arith

import (
	"math"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// unaryFns is one elementwise function in each computation type; nil where
// the op does not exist for that kind.
type unaryFns struct {
	f func(float64) float64
	i func(int64) int64
	u func(uint64) uint64 // unsigned integers and bool (0/1)
}

// unaryOp is an elementwise op of one input. fns reads the attributes.
type unaryOp struct {
	since int64
	kinds kind     // accepted input kinds; 0 means kFloat
	out   ir.DType // ir.Bool for IsNaN/IsInf; Undefined: the input's dtype
	fns   func(c *ops.Ctx) (unaryFns, error)
}

func float(f func(float64) float64) func(*ops.Ctx) (unaryFns, error) {
	return func(*ops.Ctx) (unaryFns, error) { return unaryFns{f: f}, nil }
}

func static1(f unaryFns) func(*ops.Ctx) (unaryFns, error) {
	return func(*ops.Ctx) (unaryFns, error) { return f, nil }
}

// attr1 makes an op whose function takes one float attribute.
func attr1(name string, def float32, f func(x, a float64) float64) func(*ops.Ctx) (unaryFns, error) {
	return func(c *ops.Ctx) (unaryFns, error) {
		a := float64(c.Float(name, def))
		return unaryFns{f: func(x float64) float64 { return f(x, a) }}, nil
	}
}

// attr2 makes an op whose function takes two float attributes.
func attr2(n1 string, d1 float32, n2 string, d2 float32, f func(x, a, b float64) float64) func(*ops.Ctx) (unaryFns, error) {
	return func(c *ops.Ctx) (unaryFns, error) {
		a, b := float64(c.Float(n1, d1)), float64(c.Float(n2, d2))
		return unaryFns{f: func(x float64) float64 { return f(x, a, b) }}, nil
	}
}

var unaries = map[string]*unaryOp{
	"Abs":        {kinds: kNumeric, fns: static1(unaryFns{math.Abs, absInt, func(x uint64) uint64 { return x }})},
	"Neg":        {kinds: kFloat | kSigned, fns: static1(unaryFns{f: func(x float64) float64 { return -x }, i: func(x int64) int64 { return -x }})},
	"Sign":       {since: 9, kinds: kNumeric, fns: static1(unaryFns{sign, signInt, func(x uint64) uint64 { return min(x, 1) }})},
	"Relu":       {kinds: kFloat | kSigned, fns: static1(unaryFns{f: relu[float64], i: relu[int64]})},
	"Not":        {since: 1, kinds: kBool, fns: static1(unaryFns{u: func(x uint64) uint64 { return 1 - x }})},
	"Sigmoid":    {fns: float(sigmoid)},
	"Tanh":       {fns: float(math.Tanh)},
	"Erf":        {since: 9, fns: float(math.Erf)},
	"Sqrt":       {fns: float(math.Sqrt)},
	"Exp":        {fns: float(math.Exp)},
	"Log":        {fns: float(math.Log)},
	"Reciprocal": {fns: float(func(x float64) float64 { return 1 / x })},
	"Floor":      {fns: float(math.Floor)},
	"Ceil":       {fns: float(math.Ceil)},
	"Round":      {since: 11, fns: float(math.RoundToEven)},
	"Softplus":   {since: 1, fns: float(softplus)},
	"Softsign":   {since: 1, fns: float(func(x float64) float64 { return x / (1 + math.Abs(x)) })},
	"Mish":       {since: 18, fns: float(func(x float64) float64 { return x * math.Tanh(softplus(x)) })},
	"HardSwish":  {since: 14, fns: float(func(x float64) float64 { return x * hardSigmoid(x, 1.0/6, 0.5) })},
	"Sin":        {since: 7, fns: float(math.Sin)},
	"Cos":        {since: 7, fns: float(math.Cos)},
	"Tan":        {since: 7, fns: float(math.Tan)},
	"Asin":       {since: 7, fns: float(math.Asin)},
	"Acos":       {since: 7, fns: float(math.Acos)},
	"Atan":       {since: 7, fns: float(math.Atan)},
	"Sinh":       {since: 9, fns: float(math.Sinh)},
	"Cosh":       {since: 9, fns: float(math.Cosh)},
	"Asinh":      {since: 9, fns: float(math.Asinh)},
	"Acosh":      {since: 9, fns: float(math.Acosh)},
	"Atanh":      {since: 9, fns: float(math.Atanh)},
	"IsNaN":      {since: 9, out: ir.Bool, fns: float(func(x float64) float64 { return truth[float64](math.IsNaN(x)) })},
	"IsInf":      {since: 10, out: ir.Bool, fns: isInf},
	"Gelu":       {since: 20, fns: gelu},
	"LeakyRelu": {fns: attr1("alpha", 0.01, func(x, a float64) float64 {
		if x < 0 {
			return a * x
		}
		return x
	})},
	"Elu": {fns: attr1("alpha", 1, func(x, a float64) float64 {
		if x < 0 {
			return a * math.Expm1(x)
		}
		return x
	})},
	"Celu": {since: 12, fns: attr1("alpha", 1, func(x, a float64) float64 {
		return max(0, x) + min(0, a*math.Expm1(x/a))
	})},
	"ThresholdedRelu": {since: 10, fns: attr1("alpha", 1, func(x, a float64) float64 {
		if x > a {
			return x
		}
		return 0
	})},
	"Swish":       {since: 24, fns: attr1("alpha", 1, func(x, a float64) float64 { return x * sigmoid(a*x) })},
	"HardSigmoid": {fns: attr2("alpha", 0.2, "beta", 0.5, hardSigmoid)},
	"Selu": {fns: attr2("alpha", 1.67326319217681884765625, "gamma", 1.05070102214813232421875,
		func(x, a, g float64) float64 {
			if x <= 0 {
				return g * a * math.Expm1(x)
			}
			return g * x
		})},
	"Shrink": {since: 9, kinds: kNumeric, fns: shrink},
}

func init() {
	for name, op := range unaries {
		if op.kinds == 0 {
			op.kinds = kFloat
		}
		if op.since == 0 {
			op.since = 6 // versions 1 to 5 had the consumed_inputs attribute
		}
		ops.Register(&ops.Op{Type: name, MinOpset: op.since, Run: op.run, Infer: op.infer})
	}
}

func absInt(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

func relu[T num](x T) T {
	if x < 0 {
		return 0
	}
	return x // NaN stays NaN
}

func sign(x float64) float64 {
	switch {
	case x > 0:
		return 1
	case x < 0:
		return -1
	case x == 0:
		return 0
	}
	return x // NaN
}

func signInt(x int64) int64 { return truth[int64](x > 0) - truth[int64](x < 0) }

// sigmoid never overflows: exp is only taken of non-positive numbers.
func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

// softplus is log(1+exp(x)) without overflow for large x.
func softplus(x float64) float64 {
	if x > 0 {
		return x + math.Log1p(math.Exp(-x))
	}
	return math.Log1p(math.Exp(x))
}

func hardSigmoid(x, alpha, beta float64) float64 { return max(0, min(1, alpha*x+beta)) }

func gelu(c *ops.Ctx) (unaryFns, error) {
	switch a := c.String("approximate", "none"); a {
	case "none":
		return unaryFns{f: func(x float64) float64 { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) }}, nil
	case "tanh":
		k := math.Sqrt(2 / math.Pi)
		return unaryFns{f: func(x float64) float64 { return 0.5 * x * (1 + math.Tanh(k*(x+0.044715*x*x*x))) }}, nil
	default:
		return unaryFns{}, c.Errorf("approximate must be none or tanh, got %q", a)
	}
}

func isInf(c *ops.Ctx) (unaryFns, error) {
	neg, pos := c.Int("detect_negative", 1) != 0, c.Int("detect_positive", 1) != 0
	return unaryFns{f: func(x float64) float64 {
		return truth[float64]((pos && math.IsInf(x, 1)) || (neg && math.IsInf(x, -1)))
	}}, nil
}

// shrink exists for every numeric type: integers are computed in float64
// (the attributes are floats) and truncated back.
func shrink(c *ops.Ctx) (unaryFns, error) {
	bias, lambd := float64(c.Float("bias", 0)), float64(c.Float("lambd", 0.5))
	f := func(x float64) float64 {
		switch {
		case x < -lambd:
			return x + bias
		case x > lambd:
			return x - bias
		}
		return 0
	}
	return unaryFns{
		f: f,
		i: func(x int64) int64 { return truncInt(f(float64(x)), math.MinInt64, math.MaxInt64) },
		u: func(x uint64) uint64 { return truncUint(f(float64(x))) },
	}, nil
}

func (op *unaryOp) run(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	if err := inputs(c, in, 1, 1); err != nil {
		return nil, err
	}
	x := in[0]
	k := kindOf(x.DType)
	if k&op.kinds == 0 {
		return nil, c.Errorf("does not accept %s input", x.DType)
	}
	f, err := op.fns(c)
	if err != nil {
		return nil, err
	}
	dt := x.DType
	if op.out != ir.Undefined {
		dt = op.out
	}
	var out *ir.Tensor
	switch k {
	case kFloat:
		out = apply1(f.f, x, dt)
	case kSigned:
		out = apply1(f.i, x, dt)
	default:
		out = apply1(f.u, x, dt)
	}
	return []*ir.Tensor{out}, nil
}

func apply1[T num](f func(T) T, x *ir.Tensor, dt ir.DType) *ir.Tensor {
	v := load[T](x)
	for i, e := range v {
		v[i] = f(e)
	}
	return store(dt, x.Dims, v)
}

func (op *unaryOp) infer(c *ops.InferCtx) error {
	t, err := c.Input(0)
	if err != nil {
		return err
	}
	if t.DType != ir.Undefined && kindOf(t.DType)&op.kinds == 0 {
		return c.Errorf("does not accept %s input", t.DType)
	}
	out := t.Clone()
	if op.out != ir.Undefined {
		out.DType = op.out
	}
	c.Out[0] = out
	foldValues(c, op.run)
	return nil
}
