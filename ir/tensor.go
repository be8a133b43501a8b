package ir

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/kilnml/kiln/floatx"
)

// Tensor is a dense tensor: element type, concrete dims and the packed
// little-endian bytes (sub-byte types two or four to a byte, low bits first;
// bool one byte per element, 0 or 1). String tensors keep their elements in
// Strings instead. Data is always 8-byte aligned when made by this package,
// so the typed views below are safe.
type Tensor struct {
	Name    string
	DType   DType
	Dims    []int64
	Data    []byte
	Strings [][]byte
	Doc     string
}

// AlignedBytes returns n zeroed bytes whose start is 8-byte aligned.
func AlignedBytes(n int64) []byte {
	if n == 0 {
		return []byte{}
	}
	w := make([]uint64, (n+7)/8)
	return unsafe.Slice((*byte)(unsafe.Pointer(&w[0])), n)
}

// NewTensor allocates a zeroed tensor. It panics on negative or overflowing
// dims: callers that take dims from files validate them first (NumElements).
func NewTensor(dt DType, dims []int64) *Tensor {
	n, err := NumElements(dims)
	if err != nil {
		panic(err)
	}
	t := &Tensor{DType: dt, Dims: append([]int64{}, dims...)}
	if dt == String {
		t.Strings = make([][]byte, n)
		return t
	}
	t.Data = AlignedBytes(dt.ByteSize(n))
	return t
}

// Len is the number of elements.
func (t *Tensor) Len() int64 {
	n := int64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// Rank is len(Dims).
func (t *Tensor) Rank() int { return len(t.Dims) }

// Type returns the tensor's static type.
func (t *Tensor) Type() *Type { return TensorType(t.DType, ShapeOf(t.Dims)) }

func (t *Tensor) String() string {
	return fmt.Sprintf("%s %s%v", t.Name, t.DType, t.Dims)
}

// Clone deep-copies the tensor.
func (t *Tensor) Clone() *Tensor {
	c := *t
	c.Dims = append([]int64{}, t.Dims...)
	if t.Data != nil {
		c.Data = AlignedBytes(int64(len(t.Data)))
		copy(c.Data, t.Data)
	}
	if t.Strings != nil {
		c.Strings = make([][]byte, len(t.Strings))
		for i, s := range t.Strings {
			c.Strings[i] = append([]byte{}, s...)
		}
	}
	return &c
}

// Check verifies that the data length matches dtype and dims.
func (t *Tensor) Check() error {
	if !t.DType.Valid() {
		return fmt.Errorf("tensor %q: unknown dtype %d", t.Name, t.DType)
	}
	n, err := NumElements(t.Dims)
	if err != nil {
		return fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	if t.DType == String {
		if int64(len(t.Strings)) != n {
			return fmt.Errorf("tensor %q: %d strings for dims %v", t.Name, len(t.Strings), t.Dims)
		}
		return nil
	}
	if want := t.DType.ByteSize(n); int64(len(t.Data)) != want {
		return fmt.Errorf("tensor %q: %s%v needs %d bytes, has %d", t.Name, t.DType, t.Dims, want, len(t.Data))
	}
	return nil
}

// view reinterprets Data as []T. allowed is a bit set of dtypes (1<<dtype);
// a bit set instead of a variadic list keeps the hot path allocation-free.
func view[T any](t *Tensor, allowed uint64) []T {
	if t.DType < 0 || t.DType >= 64 || allowed&(1<<uint(t.DType)) == 0 {
		panic(viewError(t, allowed))
	}
	var z T
	if len(t.Data) == 0 {
		return []T{}
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&t.Data[0])), len(t.Data)/int(unsafe.Sizeof(z)))
}

func viewError(t *Tensor, allowed uint64) string {
	var names []string
	for d := DType(0); d < 64; d++ {
		if allowed&(1<<uint(d)) != 0 {
			names = append(names, d.String())
		}
	}
	return fmt.Sprintf("ir: tensor %q is %s, not %v", t.Name, t.DType, names)
}

func bits(ds ...DType) uint64 {
	var m uint64
	for _, d := range ds {
		m |= 1 << uint(d)
	}
	return m
}

var (
	u8Types  = bits(Uint8, Bool, Float8E4M3FN, Float8E4M3FNUZ, Float8E5M2, Float8E5M2FNUZ, Float8E8M0)
	u16Types = bits(Uint16, Float16, BFloat16)
)

// Typed views sharing memory with Data. They panic if the dtype differs.
func (t *Tensor) F32() []float32 { return view[float32](t, 1<<Float32) }
func (t *Tensor) F64() []float64 { return view[float64](t, 1<<Float64) }
func (t *Tensor) I8() []int8     { return view[int8](t, 1<<Int8) }
func (t *Tensor) U8() []uint8 {
	return view[uint8](t, u8Types)
}
func (t *Tensor) I16() []int16  { return view[int16](t, 1<<Int16) }
func (t *Tensor) U16() []uint16 { return view[uint16](t, u16Types) }
func (t *Tensor) I32() []int32  { return view[int32](t, 1<<Int32) }
func (t *Tensor) U32() []uint32 { return view[uint32](t, 1<<Uint32) }
func (t *Tensor) I64() []int64  { return view[int64](t, 1<<Int64) }
func (t *Tensor) U64() []uint64 { return view[uint64](t, 1<<Uint64) }

// subByte reads element i of a packed int4/uint4/int2/uint2/float4 tensor as raw bits.
func (t *Tensor) subByte(i int64) uint8 {
	bits := int64(t.DType.Bits())
	per := 8 / bits
	b := t.Data[i/per]
	return (b >> uint((i%per)*bits)) & uint8(1<<bits-1)
}

func (t *Tensor) setSubByte(i int64, v uint8) {
	bits := int64(t.DType.Bits())
	per := 8 / bits
	sh := uint((i % per) * bits)
	m := uint8(1<<bits-1) << sh
	t.Data[i/per] = t.Data[i/per]&^m | (v<<sh)&m
}

// Float64At returns element i converted exactly to float64 (bool as 0/1;
// uint64/int64 beyond 2^53 lose precision: use Int64At for integers).
func (t *Tensor) Float64At(i int64) float64 {
	switch t.DType {
	case Float32:
		return float64(t.F32()[i])
	case Float64:
		return t.F64()[i]
	case Float16:
		return float64(floatx.F16ToF32(t.U16()[i]))
	case BFloat16:
		return float64(floatx.BF16ToF32(t.U16()[i]))
	case Float8E4M3FN, Float8E4M3FNUZ, Float8E5M2, Float8E5M2FNUZ:
		return float64(floatx.F8ToF32(t.U8()[i], F8Format(t.DType)))
	case Float8E8M0:
		return float64(floatx.E8M0ToF32(t.U8()[i]))
	case Float4E2M1:
		return float64(floatx.F4E2M1ToF32(t.subByte(i)))
	case Uint64:
		return float64(t.U64()[i])
	}
	if !t.DType.IsInteger() && t.DType != Bool {
		// Int64At would call back here: a plain panic is recoverable, endless recursion is not.
		panic(fmt.Sprintf("ir: tensor %q is %s, not a number", t.Name, t.DType))
	}
	return float64(t.Int64At(i))
}

// Int64At returns element i of an integer or bool tensor (floats truncate toward zero).
func (t *Tensor) Int64At(i int64) int64 {
	switch t.DType {
	case Int8:
		return int64(t.I8()[i])
	case Uint8, Bool:
		return int64(t.Data[i])
	case Int16:
		return int64(t.I16()[i])
	case Uint16:
		return int64(t.U16()[i])
	case Int32:
		return int64(t.I32()[i])
	case Uint32:
		return int64(t.U32()[i])
	case Int64:
		return t.I64()[i]
	case Uint64:
		return int64(t.U64()[i])
	case Uint4, Uint2:
		return int64(t.subByte(i))
	case Int4, Int2:
		bits := t.DType.Bits()
		v := int64(t.subByte(i))
		if v >= 1<<(bits-1) {
			v -= 1 << bits
		}
		return v
	}
	f := t.Float64At(i)
	if math.IsNaN(f) {
		return 0
	}
	return int64(f)
}

// SetFloat64At stores v into element i, rounding to the element type: floats
// round to nearest even (float8 saturating as ONNX's default), integers
// round to nearest even and saturate, bool is v != 0.
func (t *Tensor) SetFloat64At(i int64, v float64) {
	switch t.DType {
	case Float32:
		t.F32()[i] = float32(v)
	case Float64:
		t.F64()[i] = v
	case Float16:
		t.U16()[i] = floatx.F64ToF16(v)
	case BFloat16:
		t.U16()[i] = floatx.F32ToBF16(float32(v))
	case Float8E4M3FN, Float8E4M3FNUZ, Float8E5M2, Float8E5M2FNUZ:
		t.U8()[i] = floatx.F64ToF8(v, F8Format(t.DType), true)
	case Float8E8M0:
		t.U8()[i] = floatx.F32ToE8M0(float32(v), true)
	case Float4E2M1:
		t.setSubByte(i, floatx.F64ToF4E2M1(v))
	case Bool:
		if v != 0 {
			t.Data[i] = 1
		} else {
			t.Data[i] = 0
		}
	case Uint64:
		r := math.RoundToEven(v)
		switch {
		case math.IsNaN(r) || r <= 0:
			t.U64()[i] = 0
		case r >= 18446744073709551615:
			t.U64()[i] = math.MaxUint64
		default:
			t.U64()[i] = uint64(r)
		}
	default:
		lo, hi := t.DType.IntRange()
		r := math.RoundToEven(v)
		var n int64
		switch {
		case math.IsNaN(r):
			n = 0
		case r <= float64(lo):
			n = lo
		case r >= float64(hi):
			n = hi
		default:
			n = int64(r)
		}
		t.SetInt64At(i, n)
	}
}

// SetInt64At stores v into element i of an integer or bool tensor, wrapping
// as a C cast would (callers clamp first where ONNX asks for saturation).
// For float tensors it stores float64(v).
func (t *Tensor) SetInt64At(i int64, v int64) {
	switch t.DType {
	case Int8:
		t.I8()[i] = int8(v)
	case Uint8:
		t.Data[i] = uint8(v)
	case Bool:
		if v != 0 {
			t.Data[i] = 1
		} else {
			t.Data[i] = 0
		}
	case Int16:
		t.I16()[i] = int16(v)
	case Uint16:
		t.U16()[i] = uint16(v)
	case Int32:
		t.I32()[i] = int32(v)
	case Uint32:
		t.U32()[i] = uint32(v)
	case Int64:
		t.I64()[i] = v
	case Uint64:
		t.U64()[i] = uint64(v)
	case Uint4, Int4, Uint2, Int2:
		t.setSubByte(i, uint8(v))
	default:
		if !t.DType.IsFloat() {
			// SetFloat64At would call back here: a plain panic is recoverable, endless recursion is not.
			panic(fmt.Sprintf("ir: tensor %q is %s, not a number", t.Name, t.DType))
		}
		t.SetFloat64At(i, float64(v))
	}
}

// Float64s converts all elements to float64 (a copy).
func (t *Tensor) Float64s() []float64 {
	n := t.Len()
	out := make([]float64, n)
	if t.DType == Float32 {
		for i, v := range t.F32() {
			out[i] = float64(v)
		}
		return out
	}
	for i := int64(0); i < n; i++ {
		out[i] = t.Float64At(i)
	}
	return out
}

// Int64s converts all elements of an integer/bool tensor to int64 (a copy).
func (t *Tensor) Int64s() []int64 {
	n := t.Len()
	out := make([]int64, n)
	for i := int64(0); i < n; i++ {
		out[i] = t.Int64At(i)
	}
	return out
}

// FromFloat64s builds a tensor of type dt from float64 values (see SetFloat64At for rounding).
func FromFloat64s(dt DType, dims []int64, vals []float64) *Tensor {
	t := NewTensor(dt, dims)
	if int64(len(vals)) != t.Len() {
		panic(fmt.Sprintf("ir.FromFloat64s: %d values for dims %v", len(vals), dims))
	}
	for i, v := range vals {
		t.SetFloat64At(int64(i), v)
	}
	return t
}

// FromInt64s builds an integer tensor of type dt.
func FromInt64s(dt DType, dims []int64, vals []int64) *Tensor {
	t := NewTensor(dt, dims)
	if int64(len(vals)) != t.Len() {
		panic(fmt.Sprintf("ir.FromInt64s: %d values for dims %v", len(vals), dims))
	}
	for i, v := range vals {
		t.SetInt64At(int64(i), v)
	}
	return t
}

// FromFloat32s builds a float32 tensor, copying vals.
func FromFloat32s(dims []int64, vals []float32) *Tensor {
	t := NewTensor(Float32, dims)
	if int64(len(vals)) != t.Len() {
		panic(fmt.Sprintf("ir.FromFloat32s: %d values for dims %v", len(vals), dims))
	}
	copy(t.F32(), vals)
	return t
}

// Scalar helpers.
func ScalarInt64(v int64) *Tensor     { return FromInt64s(Int64, nil, []int64{v}) }
func ScalarFloat32(v float32) *Tensor { return FromFloat32s(nil, []float32{v}) }

// F8Format maps a float8 dtype to its floatx format.
func F8Format(d DType) floatx.F8Format {
	switch d {
	case Float8E4M3FN:
		return floatx.E4M3FN
	case Float8E4M3FNUZ:
		return floatx.E4M3FNUZ
	case Float8E5M2:
		return floatx.E5M2
	case Float8E5M2FNUZ:
		return floatx.E5M2FNUZ
	}
	panic("ir.F8Format: not a float8 type: " + d.String())
}
