package onnx

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/kilnml/kiln/ir"
	"google.golang.org/protobuf/encoding/protowire"
)

// TensorProto field numbers (onnx.proto).
const (
	tensorDims         = 1
	tensorDataType     = 2
	tensorSegment      = 3
	tensorFloatData    = 4
	tensorInt32Data    = 5
	tensorStringData   = 6
	tensorInt64Data    = 7
	tensorName         = 8
	tensorRawData      = 9
	tensorDoubleData   = 10
	tensorUint64Data   = 11
	tensorDocString    = 12
	tensorExternalData = 13
	tensorDataLocation = 14
)

const dataLocationExternal = 1

// maxElements keeps element counts far from int64 overflow in byte-size
// arithmetic (complex128 is 16 bytes an element).
const maxElements = 1 << 56

// typedSource is one of TensorProto's typed repeated data fields.
type typedSource struct {
	name  string
	num   protowire.Number
	width int // 0: varint, else fixed width in bytes
	wire  protowire.Type
}

var (
	srcFloat  = typedSource{"float_data", tensorFloatData, 4, protowire.Fixed32Type}
	srcInt32  = typedSource{"int32_data", tensorInt32Data, 0, protowire.VarintType}
	srcInt64  = typedSource{"int64_data", tensorInt64Data, 0, protowire.VarintType}
	srcDouble = typedSource{"double_data", tensorDoubleData, 8, protowire.Fixed64Type}
	srcUint64 = typedSource{"uint64_data", tensorUint64Data, 0, protowire.VarintType}
	typedSrcs = []typedSource{srcFloat, srcInt32, srcInt64, srcDouble, srcUint64}
)

// typedByNum indexes typedSrcs by field number.
var typedByNum = map[protowire.Number]typedSource{
	tensorFloatData: srcFloat, tensorInt32Data: srcInt32, tensorInt64Data: srcInt64,
	tensorDoubleData: srcDouble, tensorUint64Data: srcUint64,
}

// sourceFor returns the typed field ONNX uses to store dt, and the number of
// values per element (2 for complex types).
func sourceFor(dt ir.DType) (typedSource, int64) {
	switch dt {
	case ir.Float32:
		return srcFloat, 1
	case ir.Complex64:
		return srcFloat, 2
	case ir.Float64:
		return srcDouble, 1
	case ir.Complex128:
		return srcDouble, 2
	case ir.Int64:
		return srcInt64, 1
	case ir.Uint32, ir.Uint64:
		return srcUint64, 1
	}
	return srcInt32, 1 // every other numeric type, one element per int32
}

// DecodeTensor decodes one serialized TensorProto (as in the ONNX test data
// files input_0.pb). External data is not allowed here: use ReadTensorFile.
func DecodeTensor(b []byte) (*ir.Tensor, error) {
	d := &decoder{}
	return d.tensor(b)
}

// tensor decodes a TensorProto. Its error names the tensor.
func (d *decoder) tensor(b []byte) (*ir.Tensor, error) {
	t, err := d.tensorBody(b)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", peekString(b, tensorName), err)
	}
	return t, nil
}

// tensorBody decodes in two passes: the first reads the metadata and counts
// the values each data field holds (nothing sized by a claim is allocated),
// the second copies the one data field in use straight into the tensor.
func (d *decoder) tensorBody(b []byte) (*ir.Tensor, error) {
	t := &ir.Tensor{}
	var (
		raw      []byte
		counts   [tensorUint64Data + 1]int64 // values held by each typed field
		nStrings int64
		external []ir.StringPair
		location int32
		dtype    int32
	)
	err := eachField(b, func(f field) error {
		var err error
		switch f.num {
		case tensorDims:
			t.Dims, err = appendInt64s(t.Dims, f, "dims")
		case tensorDataType:
			dtype, err = f.int32v("data_type")
		case tensorSegment:
			return errors.New("segmented tensors unsupported (or a SequenceProto/OptionalProto file read as a tensor?)")
		case tensorFloatData, tensorInt32Data, tensorInt64Data, tensorDoubleData, tensorUint64Data:
			s := typedByNum[f.num]
			var c int64
			c, err = f.countPacked(s.name, s.width, s.wire)
			counts[f.num] += c
		case tensorStringData:
			err = f.want("string_data", protowire.BytesType)
			nStrings++
		case tensorName:
			t.Name, err = f.str("name")
		case tensorRawData:
			if err = f.want("raw_data", protowire.BytesType); err == nil {
				raw = f.b
			}
		case tensorDocString:
			t.Doc, err = f.str("doc_string")
		case tensorExternalData:
			var p ir.StringPair
			if err = f.want("external_data", protowire.BytesType); err == nil {
				if p, err = decodeStringPair(f.b); err != nil {
					err = fmt.Errorf("external_data: %w", err)
				}
			}
			external = append(external, p)
		case tensorDataLocation:
			location, err = f.int32v("data_location")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	t.DType = ir.DType(dtype)
	t.Dims = nonNilSlice(t.Dims) // scalars have empty, non-nil dims, as ir.NewTensor makes them
	if !t.DType.Valid() {
		return nil, fmt.Errorf("unsupported data_type %d", dtype)
	}
	n, err := ir.NumElements(t.Dims)
	if err != nil {
		return nil, err
	}
	if n > maxElements {
		return nil, fmt.Errorf("dims %v: %d elements is too many", t.Dims, n)
	}
	if location == dataLocationExternal {
		t.Data, err = d.externalData(t.DType, n, external)
		return t, err
	}
	if location != 0 {
		return nil, fmt.Errorf("unknown data_location %d", location)
	}

	var sources []string
	for _, s := range typedSrcs {
		if counts[s.num] > 0 {
			sources = append(sources, s.name)
		}
	}
	if len(raw) > 0 {
		sources = append(sources, "raw_data")
	}
	if nStrings > 0 {
		sources = append(sources, "string_data")
	}
	if len(sources) > 1 {
		return nil, fmt.Errorf("data given in several fields %v", sources)
	}

	if t.DType == ir.String {
		if len(sources) == 1 && sources[0] != "string_data" {
			return nil, fmt.Errorf("string tensor has %s", sources[0])
		}
		if nStrings != n {
			return nil, fmt.Errorf("%d strings for dims %v (%d elements)", nStrings, t.Dims, n)
		}
		if n > 0 {
			t.Strings = make([][]byte, 0, n)
			_ = eachField(b, func(f field) error { // cannot fail: the first pass succeeded
				if f.num == tensorStringData {
					t.Strings = append(t.Strings, append([]byte(nil), f.b...))
				}
				return nil
			})
		}
		return t, nil
	}

	size := t.DType.ByteSize(n)
	switch {
	case len(sources) == 0:
		if n != 0 {
			return nil, fmt.Errorf("no data for %s%v (%d elements)", t.DType, t.Dims, n)
		}
		t.Data = ir.AlignedBytes(0)
	case sources[0] == "raw_data":
		if int64(len(raw)) != size {
			return nil, fmt.Errorf("raw_data has %d bytes, %s%v needs %d", len(raw), t.DType, t.Dims, size)
		}
		t.Data = ir.AlignedBytes(size)
		copy(t.Data, raw)
		normalizeBools(t)
		clearPadding(t, n)
	case sources[0] == "string_data":
		return nil, fmt.Errorf("%s tensor has string_data", t.DType)
	default:
		src, per := sourceFor(t.DType)
		if sources[0] != src.name {
			return nil, fmt.Errorf("%s tensor has %s (want %s or raw_data)", t.DType, sources[0], src.name)
		}
		bits := int64(t.DType.Bits()) / per
		switch c := counts[src.num]; {
		case c == n*per:
		case t.DType.IsSubByte() && c == size:
			// ONNX's own writers store sub-byte types already packed, one
			// byte per int32; one element per int32 is accepted too.
			bits = 8
		default:
			return nil, fmt.Errorf("%s has %d values, %s%v needs %d", src.name, c, t.DType, t.Dims, n*per)
		}
		t.Data = ir.AlignedBytes(size)
		isBool := t.DType == ir.Bool
		i := int64(0)
		err := eachField(b, func(f field) error {
			if f.num != src.num {
				return nil
			}
			return f.eachPacked(src.name, src.width, src.wire, func(v uint64) {
				if isBool && v != 0 {
					v = 1
				}
				putBits(t.Data, bits, i, v)
				i++
			})
		})
		if err != nil {
			return nil, err
		}
		clearPadding(t, n)
	}
	return t, nil
}

// clearPadding zeroes the unused high bits of the last byte of a sub-byte
// tensor with an odd number of elements, so equal tensors have equal bytes.
func clearPadding(t *ir.Tensor, n int64) {
	bits := int64(t.DType.Bits())
	if !t.DType.IsSubByte() || len(t.Data) == 0 || (n*bits)%8 == 0 {
		return
	}
	used := uint((n * bits) % 8)
	t.Data[len(t.Data)-1] &= byte(1<<used - 1)
}

// putBits stores the low bits of v as element i of a packed little-endian
// buffer (dst is zeroed; sub-byte elements fill each byte low bits first).
func putBits(dst []byte, bits, i int64, v uint64) {
	switch bits {
	case 8:
		dst[i] = byte(v)
	case 16:
		binary.LittleEndian.PutUint16(dst[2*i:], uint16(v))
	case 32:
		binary.LittleEndian.PutUint32(dst[4*i:], uint32(v))
	case 64:
		binary.LittleEndian.PutUint64(dst[8*i:], v)
	default: // 2 or 4
		per := 8 / bits
		sh := uint((i % per) * bits)
		dst[i/per] |= byte(v&(1<<bits-1)) << sh
	}
}

// normalizeBools makes every bool byte 0 or 1 (ONNX reads any non-zero as true).
func normalizeBools(t *ir.Tensor) {
	if t.DType != ir.Bool {
		return
	}
	for i, v := range t.Data {
		if v > 1 {
			t.Data[i] = 1
		}
	}
}

// EncodeTensor serializes t as a TensorProto: numeric data as raw_data,
// strings as string_data.
func EncodeTensor(t *ir.Tensor) ([]byte, error) {
	return appendTensor(nil, t)
}

func appendTensor(b []byte, t *ir.Tensor) ([]byte, error) {
	if t == nil {
		return nil, errors.New("nil tensor")
	}
	if err := t.Check(); err != nil {
		return nil, err
	}
	if len(t.Dims) > 0 {
		b = appendPackedInt64s(b, tensorDims, t.Dims)
	}
	b = appendVarintField(b, tensorDataType, uint64(t.DType))
	if t.DType == ir.String {
		for _, s := range t.Strings {
			b = protowire.AppendTag(b, tensorStringData, protowire.BytesType)
			b = protowire.AppendBytes(b, s)
		}
	}
	b = appendStringField(b, tensorName, t.Name)
	if t.DType != ir.String && len(t.Data) > 0 {
		b = protowire.AppendTag(b, tensorRawData, protowire.BytesType)
		b = protowire.AppendBytes(b, t.Data)
	}
	b = appendStringField(b, tensorDocString, t.Doc)
	return b, nil
}
