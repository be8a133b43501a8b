package onnx

import (
	"fmt"

	"github.com/kilnml/kiln/ir"
	"google.golang.org/protobuf/encoding/protowire"
)

// TypeProto and its parts (onnx.proto field numbers).
const (
	typeTensor       = 1
	typeSequence     = 4
	typeMap          = 5
	typeDenotation   = 6
	typeSparseTensor = 8
	typeOptional     = 9

	tensorTypeElemType = 1
	tensorTypeShape    = 2
	mapKeyType         = 1
	mapValueType       = 2
	seqElemType        = 1
	shapeDim           = 1
	dimValue           = 1
	dimParam           = 2
)

// decodeType decodes a TypeProto. A TypeProto with no value (or an opaque
// type) becomes a tensor type of undefined element type and unknown rank.
func decodeType(b []byte, depth int) (*ir.Type, error) {
	if depth >= maxDepth {
		return nil, fmt.Errorf("types nested more than %d deep", maxDepth)
	}
	t := &ir.Type{Kind: ir.KindTensor}
	err := eachField(b, func(f field) error {
		var err error
		switch f.num {
		case typeTensor, typeSparseTensor:
			kind, name := ir.KindTensor, "tensor_type"
			if f.num == typeSparseTensor {
				kind, name = ir.KindSparseTensor, "sparse_tensor_type"
			}
			if err = f.want(name, protowire.BytesType); err != nil {
				return err
			}
			*t = ir.Type{Kind: kind, Denot: t.Denot}
			if err = decodeTensorType(f.b, t); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		case typeSequence, typeOptional:
			kind, name := ir.KindSequence, "sequence_type"
			if f.num == typeOptional {
				kind, name = ir.KindOptional, "optional_type"
			}
			if err = f.want(name, protowire.BytesType); err != nil {
				return err
			}
			*t = ir.Type{Kind: kind, Denot: t.Denot}
			err = eachField(f.b, func(f field) error {
				if f.num != seqElemType {
					return nil
				}
				if err := f.want("elem_type", protowire.BytesType); err != nil {
					return err
				}
				var err error
				t.Elem, err = decodeType(f.b, depth+1)
				return err
			})
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		case typeMap:
			if err = f.want("map_type", protowire.BytesType); err != nil {
				return err
			}
			*t = ir.Type{Kind: ir.KindMap, Denot: t.Denot}
			err = eachField(f.b, func(f field) error {
				var err error
				switch f.num {
				case mapKeyType:
					var k int32
					k, err = f.int32v("key_type")
					t.DType = ir.DType(k)
				case mapValueType:
					if err = f.want("value_type", protowire.BytesType); err == nil {
						t.Elem, err = decodeType(f.b, depth+1)
					}
				}
				return err
			})
			if err != nil {
				return fmt.Errorf("map_type: %w", err)
			}
		case typeDenotation:
			t.Denot, err = f.str("denotation")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// decodeTensorType fills elem type and shape of a (sparse) tensor type.
func decodeTensorType(b []byte, t *ir.Type) error {
	return eachField(b, func(f field) error {
		var err error
		switch f.num {
		case tensorTypeElemType:
			var e int32
			e, err = f.int32v("elem_type")
			t.DType = ir.DType(e)
		case tensorTypeShape:
			if err = f.want("shape", protowire.BytesType); err != nil {
				return err
			}
			t.HasShape = true
			t.Shape = ir.Shape{}
			err = eachField(f.b, func(f field) error {
				if f.num != shapeDim {
					return nil
				}
				if err := f.want("dim", protowire.BytesType); err != nil {
					return err
				}
				dim, err := decodeDim(f.b)
				if err != nil {
					return fmt.Errorf("dim %d: %w", len(t.Shape), err)
				}
				t.Shape = append(t.Shape, dim)
				return nil
			})
			if err != nil {
				err = fmt.Errorf("shape: %w", err)
			}
		}
		return err
	})
}

// decodeDim reads a TensorShapeProto.Dimension: a value, a symbol, or
// neither (unknown). Negative values, which some exporters write for
// "unknown", become unknown.
func decodeDim(b []byte) (ir.Dim, error) {
	d := ir.Unknown()
	err := eachField(b, func(f field) error {
		var err error
		switch f.num {
		case dimValue:
			var v int64
			v, err = f.int64v("dim_value")
			d = ir.Dim{Value: v}
			if v < 0 {
				d = ir.Unknown()
			}
		case dimParam:
			var p string
			p, err = f.str("dim_param")
			d = ir.Sym(p)
		}
		return err
	})
	return d, err
}
