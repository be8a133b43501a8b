package ir

import (
	"fmt"
	"strconv"
	"strings"
)

// Dim is one dimension of a shape seen at graph level: a known size, a named
// symbol ("batch"), or unknown (Value < 0 and Param == "").
type Dim struct {
	Value int64
	Param string
}

// D returns a known dimension.
func D(v int64) Dim { return Dim{Value: v} }

// Sym returns a symbolic dimension.
func Sym(name string) Dim { return Dim{Value: -1, Param: name} }

// Unknown returns a dimension about which nothing is known.
func Unknown() Dim { return Dim{Value: -1} }

// Known reports whether the size is a number.
func (d Dim) Known() bool { return d.Param == "" && d.Value >= 0 }

func (d Dim) String() string {
	switch {
	case d.Param != "":
		return d.Param
	case d.Value >= 0:
		return strconv.FormatInt(d.Value, 10)
	default:
		return "?"
	}
}

// Shape is a graph-level shape. A nil Shape inside a Type with HasShape
// false means the rank is unknown; an empty non-nil Shape is a scalar.
type Shape []Dim

// ShapeOf turns concrete dims into a Shape.
func ShapeOf(dims []int64) Shape {
	s := make(Shape, len(dims))
	for i, v := range dims {
		s[i] = D(v)
	}
	return s
}

// Concrete returns the dims if all are known.
func (s Shape) Concrete() ([]int64, bool) {
	out := make([]int64, len(s))
	for i, d := range s {
		if !d.Known() {
			return nil, false
		}
		out[i] = d.Value
	}
	return out, true
}

func (s Shape) String() string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = d.String()
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// Equal compares dims by value and symbol name.
func (s Shape) Equal(o Shape) bool {
	if len(s) != len(o) {
		return false
	}
	for i := range s {
		if s[i] != o[i] {
			return false
		}
	}
	return true
}

// TypeKind distinguishes tensor types from ONNX's container types.
type TypeKind int

const (
	KindTensor TypeKind = iota
	KindSequence
	KindOptional
	KindMap
	KindSparseTensor
)

// Type is the static type of a graph value (ONNX TypeProto).
type Type struct {
	Kind     TypeKind
	DType    DType // element type of a tensor (or map value's key type for maps)
	Shape    Shape // valid when HasShape
	HasShape bool
	Elem     *Type  // element type of a sequence or optional, value type of a map
	Denot    string // ONNX denotation, kept for round trips
}

// TensorType returns a tensor Type with a known rank.
func TensorType(dt DType, s Shape) *Type {
	return &Type{Kind: KindTensor, DType: dt, Shape: s, HasShape: true}
}

func (t *Type) String() string {
	if t == nil {
		return "?"
	}
	switch t.Kind {
	case KindSequence:
		return "seq(" + t.Elem.String() + ")"
	case KindOptional:
		return "optional(" + t.Elem.String() + ")"
	case KindMap:
		return fmt.Sprintf("map(%s,%s)", t.DType, t.Elem)
	}
	if !t.HasShape {
		return t.DType.String() + "[...]"
	}
	return t.DType.String() + t.Shape.String()
}

// Clone returns a deep copy.
func (t *Type) Clone() *Type {
	if t == nil {
		return nil
	}
	c := *t
	c.Shape = append(Shape(nil), t.Shape...)
	if t.HasShape && c.Shape == nil {
		c.Shape = Shape{}
	}
	c.Elem = t.Elem.Clone()
	return &c
}

// NumElements returns the product of dims, checking for overflow and negative dims.
func NumElements(dims []int64) (int64, error) {
	n := int64(1)
	for _, d := range dims {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension %d in %v", d, dims)
		}
		if d != 0 && n > (1<<62)/d {
			return 0, fmt.Errorf("dimensions %v overflow", dims)
		}
		n *= d
	}
	return n, nil
}

// ParseShape reads "1x3x224x224" or "1,3,224,224"; "batch" style names become symbols.
func ParseShape(s string) (Shape, error) {
	if s == "" || s == "[]" {
		return Shape{}, nil
	}
	s = strings.Trim(s, "[]")
	sep := "x"
	if strings.Contains(s, ",") {
		sep = ","
	}
	var out Shape
	for _, p := range strings.Split(s, sep) {
		p = strings.TrimSpace(p)
		if v, err := strconv.ParseInt(p, 10, 64); err == nil {
			if v < 0 {
				return nil, fmt.Errorf("shape %q: negative dimension", s)
			}
			out = append(out, D(v))
		} else if p != "" {
			out = append(out, Sym(p))
		} else {
			return nil, fmt.Errorf("shape %q: empty dimension", s)
		}
	}
	return out, nil
}
