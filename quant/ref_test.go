package quant

// Independent float64 references for the tests: small-float decoding from the
// format definitions, nearest-even rounding on an explicit grid of values, and
// integer round-half-even by comparison, none of which uses floatx or the
// package's own code paths.

import (
	"math"
	"sort"
	"sync"

	"github.com/kilnml/kiln/ir"
)

type nanKind int

const (
	ieeeNaN nanKind = iota // exponent all ones: Inf (mantissa 0) or NaN
	fnNaN                  // only S.1111.111 is NaN, no Inf (E4M3FN)
	fnuzNaN                // only 0x80 is NaN, no Inf, no -0
)

// refFloat describes a small float format from its definition.
type refFloat struct {
	dt          ir.DType
	ebits, mbit int
	bias        int
	nan         nanKind
}

var refFloats = []refFloat{
	{ir.Float8E4M3FN, 4, 3, 7, fnNaN},
	{ir.Float8E4M3FNUZ, 4, 3, 8, fnuzNaN},
	{ir.Float8E5M2, 5, 2, 15, ieeeNaN},
	{ir.Float8E5M2FNUZ, 5, 2, 16, fnuzNaN},
	{ir.Float16, 5, 10, 15, ieeeNaN},
	{ir.BFloat16, 8, 7, 127, ieeeNaN},
}

func (r refFloat) bits() int      { return 1 + r.ebits + r.mbit }
func (r refFloat) signBit() int64 { return 1 << (r.ebits + r.mbit) }

// isNaN and isInf classify a code.
func (r refFloat) isNaN(c int64) bool {
	mag := c &^ r.signBit()
	eAll := mag>>r.mbit == 1<<r.ebits-1
	switch r.nan {
	case fnuzNaN:
		return c == r.signBit()
	case fnNaN:
		return mag == r.signBit()-1
	}
	return eAll && mag&(1<<r.mbit-1) != 0
}

func (r refFloat) isInf(c int64) bool {
	mag := c &^ r.signBit()
	return r.nan == ieeeNaN && mag == (1<<r.ebits-1)<<r.mbit
}

// magValue is the value of a magnitude code read by the plain formula,
// ignoring NaN/Inf (so the code just past the largest finite one gives the
// "next" grid point used for rounding at the top of the range).
func (r refFloat) magValue(mag int64) float64 {
	e := int(mag >> r.mbit)
	m := float64(mag & (1<<r.mbit - 1))
	if e == 0 {
		return m * math.Pow(2, float64(1-r.bias-r.mbit))
	}
	return (1 + m/math.Pow(2, float64(r.mbit))) * math.Pow(2, float64(e-r.bias))
}

func (r refFloat) decode(c int64) float64 {
	switch {
	case r.isNaN(c):
		return math.NaN()
	case r.isInf(c):
		if c&r.signBit() != 0 {
			return math.Inf(-1)
		}
		return math.Inf(1)
	}
	v := r.magValue(c &^ r.signBit())
	if c&r.signBit() != 0 {
		v = -v
	}
	return v
}

// maxMag is the magnitude code of the largest finite value.
func (r refFloat) maxMag() int64 {
	switch r.nan {
	case fnNaN:
		return r.signBit() - 2
	case fnuzNaN:
		return r.signBit() - 1
	}
	return (1<<r.ebits-1)<<r.mbit - 1
}

// encode rounds v to the nearest grid value, ties to the even code; overflow
// and Inf follow ONNX Cast's float8 table (opset 24): saturate → ±max in all
// four formats, otherwise ±Inf where the format has it, else NaN.
func (r refFloat) encode(v float64, sat bool) int64 {
	sign := int64(0)
	if math.Signbit(v) {
		sign = r.signBit()
	}
	var nanCode int64
	switch r.nan {
	case fnNaN: // S.1111.111
		nanCode = sign | (r.signBit() - 1)
	case fnuzNaN:
		nanCode = r.signBit()
	default: // IEEE quiet NaN: exponent all ones, top mantissa bit
		nanCode = sign | (1<<r.ebits-1)<<r.mbit | 1<<(r.mbit-1)
	}
	if math.IsNaN(v) {
		return nanCode
	}
	overflow := func() int64 {
		switch {
		case sat:
			return sign | r.maxMag()
		case r.nan == ieeeNaN:
			return sign | (1<<r.ebits-1)<<r.mbit
		}
		return nanCode
	}
	a := math.Abs(v)
	if math.IsInf(a, 0) {
		return overflow()
	}
	top := r.maxMag() + 1 // virtual next grid point: rounding to it overflows
	grid := r.grid()
	k := sort.SearchFloat64s(grid, a)
	var mag int64
	switch {
	case k == 0:
		mag = 0
	case k > int(top):
		mag = top
	default:
		lo, hi := int64(k-1), int64(k)
		dlo, dhi := a-grid[lo], grid[hi]-a
		switch {
		case dlo < dhi:
			mag = lo
		case dhi < dlo:
			mag = hi
		case lo%2 == 0:
			mag = lo
		default:
			mag = hi
		}
	}
	if mag == top {
		return overflow()
	}
	if mag == 0 && r.nan == fnuzNaN {
		return 0
	}
	return sign | mag
}

var grids sync.Map // ir.DType → []float64

// grid lists magValue for magnitude codes 0..maxMag+1 (increasing).
func (r refFloat) grid() []float64 {
	if g, ok := grids.Load(r.dt); ok {
		return g.([]float64)
	}
	g := make([]float64, r.maxMag()+2)
	for i := range g {
		g[i] = r.magValue(int64(i))
	}
	grids.Store(r.dt, g)
	return g
}

// refRoundHalfEven rounds by comparing with the floor.
func refRoundHalfEven(v float64) float64 {
	f := math.Floor(v)
	switch d := v - f; {
	case d < 0.5:
		return f
	case d > 0.5:
		return f + 1
	case math.Mod(f, 2) == 0:
		return f
	}
	return f + 1
}

// refQuantizeInt is the integer reference: the float32 quotient (ONNX's
// x/scale), rounded half to even, plus the zero point, clamped.
func refQuantizeInt(x, s float32, z int32, lo, hi int64) int64 {
	q := float32(x / s)
	if q != q {
		return lo
	}
	r := refRoundHalfEven(float64(q)) + float64(z)
	return int64(math.Min(math.Max(r, float64(lo)), float64(hi)))
}

// refGroup is the scale index of flat element i by explicit multi-indexing:
// per-tensor 0, per-channel idx[axis], blocked the row-major position of idx
// with idx[axis] divided by the block size in the scale tensor.
func refGroup(i int64, dims []int64, axis, block int) int64 {
	if axis < 0 {
		return 0
	}
	idx := make([]int64, len(dims))
	for d := len(dims) - 1; d >= 0; d-- {
		idx[d] = i % dims[d]
		i /= dims[d]
	}
	if block == 0 {
		return idx[axis]
	}
	g := int64(0)
	for d := range dims {
		n, k := dims[d], idx[d]
		if d == axis {
			n, k = (dims[d]+int64(block)-1)/int64(block), idx[d]/int64(block)
		}
		g = g*n + k
	}
	return g
}
