package onnx

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"
)

// field is one decoded protobuf field. For varint and fixed fields the value
// is in v; for length-delimited fields b points into the input (callers copy
// what they keep: nothing decoded may alias the caller's buffer).
type field struct {
	num protowire.Number
	typ protowire.Type
	v   uint64
	b   []byte
}

var wireNames = map[protowire.Type]string{
	protowire.VarintType: "varint", protowire.Fixed32Type: "fixed32", protowire.Fixed64Type: "fixed64",
	protowire.BytesType: "bytes", protowire.StartGroupType: "group", protowire.EndGroupType: "end-group",
}

func wireName(t protowire.Type) string {
	if s, ok := wireNames[t]; ok {
		return s
	}
	return fmt.Sprintf("wiretype(%d)", t)
}

// eachField walks the fields of one message in order; fn's error stops the
// walk. Unknown fields are simply not handled by fn.
func eachField(b []byte, fn func(f field) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("bad field tag: %w", protowire.ParseError(n))
		}
		b = b[n:]
		f := field{num: num, typ: typ}
		switch typ {
		case protowire.VarintType:
			f.v, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var v uint32
			v, n = protowire.ConsumeFixed32(b)
			f.v = uint64(v)
		case protowire.Fixed64Type:
			f.v, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			f.b, n = protowire.ConsumeBytes(b)
		case protowire.StartGroupType:
			// ONNX has no groups: fn skips it as an unknown field, or
			// rejects it through want() where the field number is known.
			n = protowire.ConsumeFieldValue(num, typ, b)
		default:
			return fmt.Errorf("field %d: unexpected wire type %s", num, wireName(typ))
		}
		if n < 0 {
			return fmt.Errorf("field %d (%s): %w", num, wireName(typ), protowire.ParseError(n))
		}
		b = b[n:]
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

// want checks the wire type of a known field.
func (f field) want(name string, t protowire.Type) error {
	if f.typ != t {
		return fmt.Errorf("field %s (%d): wire type %s, want %s", name, f.num, wireName(f.typ), wireName(t))
	}
	return nil
}

func (f field) str(name string) (string, error) {
	if err := f.want(name, protowire.BytesType); err != nil {
		return "", err
	}
	return string(f.b), nil
}

func (f field) bytesCopy(name string) ([]byte, error) {
	if err := f.want(name, protowire.BytesType); err != nil {
		return nil, err
	}
	if len(f.b) == 0 {
		return nil, nil
	}
	return append([]byte(nil), f.b...), nil
}

func (f field) int64v(name string) (int64, error) {
	if err := f.want(name, protowire.VarintType); err != nil {
		return 0, err
	}
	return int64(f.v), nil
}

// int32v reads an int32/enum field (negative values are sign-extended varints).
func (f field) int32v(name string) (int32, error) {
	if err := f.want(name, protowire.VarintType); err != nil {
		return 0, err
	}
	return int32(f.v), nil
}

// countPacked returns how many values a repeated scalar field holds, for a
// field that may be packed (bytes) or a single unpacked value. width is 0
// for varints, else the fixed width in bytes.
func (f field) countPacked(name string, width int, unpacked protowire.Type) (int64, error) {
	switch f.typ {
	case unpacked:
		return 1, nil
	case protowire.BytesType:
		if width == 0 {
			var c int64
			for _, x := range f.b {
				if x < 0x80 {
					c++
				}
			}
			if len(f.b) > 0 && f.b[len(f.b)-1] >= 0x80 {
				return 0, fmt.Errorf("field %s (%d): truncated packed varint", name, f.num)
			}
			return c, nil
		}
		if len(f.b)%width != 0 {
			return 0, fmt.Errorf("field %s (%d): packed length %d not a multiple of %d", name, f.num, len(f.b), width)
		}
		return int64(len(f.b) / width), nil
	}
	return 0, fmt.Errorf("field %s (%d): wire type %s, want %s or packed bytes", name, f.num, wireName(f.typ), wireName(unpacked))
}

// eachPacked calls fn with every value of a repeated scalar field (packed
// or not). Fixed32 values are passed as their bits.
func (f field) eachPacked(name string, width int, unpacked protowire.Type, fn func(v uint64)) error {
	if f.typ == unpacked {
		fn(f.v)
		return nil
	}
	if f.typ != protowire.BytesType {
		return fmt.Errorf("field %s (%d): wire type %s, want %s or packed bytes", name, f.num, wireName(f.typ), wireName(unpacked))
	}
	b := f.b
	switch width {
	case 0:
		for len(b) > 0 {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return fmt.Errorf("field %s (%d): packed varint: %w", name, f.num, protowire.ParseError(n))
			}
			fn(v)
			b = b[n:]
		}
	case 4:
		if len(b)%4 != 0 {
			return fmt.Errorf("field %s (%d): packed length %d not a multiple of 4", name, f.num, len(b))
		}
		for ; len(b) >= 4; b = b[4:] {
			fn(uint64(binary.LittleEndian.Uint32(b)))
		}
	case 8:
		if len(b)%8 != 0 {
			return fmt.Errorf("field %s (%d): packed length %d not a multiple of 8", name, f.num, len(b))
		}
		for ; len(b) >= 8; b = b[8:] {
			fn(binary.LittleEndian.Uint64(b))
		}
	}
	return nil
}

// appendInt64s appends a repeated int64 field's values (packed or not),
// growing dst once by the exact count so memory stays bounded by the input.
func appendInt64s(dst []int64, f field, name string) ([]int64, error) {
	c, err := f.countPacked(name, 0, protowire.VarintType)
	if err != nil {
		return nil, err
	}
	if c == 0 {
		return dst, nil
	}
	dst = slices.Grow(dst, int(c))
	err = f.eachPacked(name, 0, protowire.VarintType, func(v uint64) { dst = append(dst, int64(v)) })
	return dst, err
}

func appendFloat32s(dst []float32, f field, name string) ([]float32, error) {
	c, err := f.countPacked(name, 4, protowire.Fixed32Type)
	if err != nil {
		return nil, err
	}
	if c == 0 {
		return dst, nil
	}
	dst = slices.Grow(dst, int(c))
	err = f.eachPacked(name, 4, protowire.Fixed32Type, func(v uint64) { dst = append(dst, math.Float32frombits(uint32(v))) })
	return dst, err
}

// peekString returns the first string field num of a message, ignoring
// errors; used only to name the thing an error happened in.
func peekString(b []byte, num protowire.Number) string {
	s := ""
	_ = eachField(b, func(f field) error {
		if f.num == num && f.typ == protowire.BytesType && s == "" {
			s = string(f.b)
			if len(s) > 200 {
				s = s[:200] + "..."
			}
		}
		return nil
	})
	return s
}

func float32frombits(v uint64) float32 { return math.Float32frombits(uint32(v)) }
