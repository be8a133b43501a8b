// Package ir is kiln's in-memory graph: models, graphs, nodes, attributes,
// tensors, element types and (possibly symbolic) shapes. Everything else in
// kiln (the ONNX codec, the reference executor, passes, the builder) speaks ir.
package ir

import "fmt"

// DType is an element type. The numeric values are ONNX's
// TensorProto.DataType so that the codec maps them one to one.
type DType int32

const (
	Undefined      DType = 0
	Float32        DType = 1
	Uint8          DType = 2
	Int8           DType = 3
	Uint16         DType = 4
	Int16          DType = 5
	Int32          DType = 6
	Int64          DType = 7
	String         DType = 8
	Bool           DType = 9
	Float16        DType = 10
	Float64        DType = 11
	Uint32         DType = 12
	Uint64         DType = 13
	Complex64      DType = 14
	Complex128     DType = 15
	BFloat16       DType = 16
	Float8E4M3FN   DType = 17
	Float8E4M3FNUZ DType = 18
	Float8E5M2     DType = 19
	Float8E5M2FNUZ DType = 20
	Uint4          DType = 21
	Int4           DType = 22
	Float4E2M1     DType = 23
	Float8E8M0     DType = 24
	Uint2          DType = 25
	Int2           DType = 26
)

type dtypeInfo struct {
	name    string
	bits    int // storage bits per element (4 for int4: two per byte)
	float   bool
	signed  bool
	integer bool
}

var dtypeTable = map[DType]dtypeInfo{
	Float32:        {"float32", 32, true, true, false},
	Uint8:          {"uint8", 8, false, false, true},
	Int8:           {"int8", 8, false, true, true},
	Uint16:         {"uint16", 16, false, false, true},
	Int16:          {"int16", 16, false, true, true},
	Int32:          {"int32", 32, false, true, true},
	Int64:          {"int64", 64, false, true, true},
	String:         {"string", 0, false, false, false},
	Bool:           {"bool", 8, false, false, false},
	Float16:        {"float16", 16, true, true, false},
	Float64:        {"float64", 64, true, true, false},
	Uint32:         {"uint32", 32, false, false, true},
	Uint64:         {"uint64", 64, false, false, true},
	Complex64:      {"complex64", 64, false, true, false},
	Complex128:     {"complex128", 128, false, true, false},
	BFloat16:       {"bfloat16", 16, true, true, false},
	Float8E4M3FN:   {"float8e4m3fn", 8, true, true, false},
	Float8E4M3FNUZ: {"float8e4m3fnuz", 8, true, true, false},
	Float8E5M2:     {"float8e5m2", 8, true, true, false},
	Float8E5M2FNUZ: {"float8e5m2fnuz", 8, true, true, false},
	Uint4:          {"uint4", 4, false, false, true},
	Int4:           {"int4", 4, false, true, true},
	Float4E2M1:     {"float4e2m1", 4, true, true, false},
	Float8E8M0:     {"float8e8m0", 8, true, false, false},
	Uint2:          {"uint2", 2, false, false, true},
	Int2:           {"int2", 2, false, true, true},
}

// Valid reports whether d is an element type kiln knows.
func (d DType) Valid() bool { _, ok := dtypeTable[d]; return ok }

// String returns the lower-case name ("float32", "float8e4m3fn", ...).
func (d DType) String() string {
	if i, ok := dtypeTable[d]; ok {
		return i.name
	}
	return fmt.Sprintf("dtype(%d)", int32(d))
}

// ONNXName returns the upper-case name ONNX uses in text (FLOAT, INT64, ...).
func (d DType) ONNXName() string {
	switch d {
	case Float32:
		return "FLOAT"
	case Float64:
		return "DOUBLE"
	}
	if i, ok := dtypeTable[d]; ok {
		b := []byte(i.name)
		for k, c := range b {
			if c >= 'a' && c <= 'z' {
				b[k] = c - 32
			}
		}
		return string(b)
	}
	return d.String()
}

// ParseDType accepts kiln's and ONNX's names ("float32", "FLOAT", "fp16", ...).
func ParseDType(s string) (DType, error) {
	alias := map[string]DType{"float": Float32, "fp32": Float32, "double": Float64, "fp64": Float64,
		"half": Float16, "fp16": Float16, "bf16": BFloat16, "fp8": Float8E4M3FN, "e4m3": Float8E4M3FN, "e5m2": Float8E5M2}
	low := []byte(s)
	for k, c := range low {
		if c >= 'A' && c <= 'Z' {
			low[k] = c + 32
		}
	}
	if d, ok := alias[string(low)]; ok {
		return d, nil
	}
	for d, i := range dtypeTable {
		if i.name == string(low) {
			return d, nil
		}
	}
	return Undefined, fmt.Errorf("unknown dtype %q", s)
}

// Bits is the storage width of one element (4 for int4/uint4, 0 for string).
func (d DType) Bits() int { return dtypeTable[d].bits }

// IsFloat reports floating-point types, including float16, bfloat16 and the float8/float4 types.
func (d DType) IsFloat() bool { return dtypeTable[d].float }

// IsInteger reports the integer types (not bool).
func (d DType) IsInteger() bool { return dtypeTable[d].integer }

// IsSigned reports types with a sign (signed integers and floats except e8m0).
func (d DType) IsSigned() bool { return dtypeTable[d].signed }

// IsSubByte reports types packed several to a byte (int4, uint4, float4e2m1, int2, uint2).
func (d DType) IsSubByte() bool { b := dtypeTable[d].bits; return b > 0 && b < 8 }

// ByteSize returns the number of bytes n elements of d occupy when packed
// (sub-byte types are packed low bits first and rounded up to whole bytes).
func (d DType) ByteSize(n int64) int64 {
	b := int64(dtypeTable[d].bits)
	return (n*b + 7) / 8
}

// IntRange returns the inclusive range of an integer type (int4: -8..7).
func (d DType) IntRange() (lo, hi int64) {
	i := dtypeTable[d]
	if !i.integer {
		return 0, 0
	}
	if i.bits == 64 {
		if i.signed {
			return -1 << 63, 1<<63 - 1
		}
		return 0, 1<<63 - 1 // uint64 above int64 is handled by callers that care
	}
	if i.signed {
		return -(1 << (i.bits - 1)), 1<<(i.bits-1) - 1
	}
	return 0, 1<<i.bits - 1
}
