package onnx

import (
	"fmt"

	"github.com/kilnml/kiln/ir"
	"google.golang.org/protobuf/encoding/protowire"
)

// SequenceProto and OptionalProto (onnx-data.proto) field numbers and
// element kinds.
const (
	containerName     = 1
	containerElemType = 2
	containerTensor   = 3
	containerSparse   = 4
	containerSequence = 5
	containerMap      = 6
	containerOptional = 7
	elemUndefined     = 0
	elemTensor        = 1
	elemSparseTensor  = 2
	elemSequence      = 3
	elemMap           = 4
	elemOptional      = 5
)

var elemKindNames = map[int32]string{elemUndefined: "undefined", elemTensor: "tensor",
	elemSparseTensor: "sparse tensor", elemSequence: "sequence", elemMap: "map", elemOptional: "optional"}

func elemKindName(k int32) string {
	if s, ok := elemKindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("kind %d", k)
}

// DecodeSequence decodes a SequenceProto of tensors (ONNX test data for
// sequence-typed inputs and outputs). Sequences of other kinds give an error.
func DecodeSequence(b []byte) ([]*ir.Tensor, error) {
	d := &decoder{}
	seq, err := d.sequence(b)
	if err != nil {
		return nil, fmt.Errorf("sequence %q: %w", peekString(b, containerName), err)
	}
	return seq, nil
}

func (d *decoder) sequence(b []byte) ([]*ir.Tensor, error) {
	var elem int32
	seq := []*ir.Tensor{}
	other := int32(-1)
	err := eachField(b, func(f field) error {
		var err error
		switch f.num {
		case containerElemType:
			elem, err = f.int32v("elem_type")
		case containerTensor:
			if err = f.want("tensor_values", protowire.BytesType); err == nil {
				var t *ir.Tensor
				if t, err = d.tensor(f.b); err != nil {
					return fmt.Errorf("element %d: %w", len(seq), err)
				}
				seq = append(seq, t)
			}
		case containerSparse, containerSequence, containerMap, containerOptional:
			other = int32(f.num) - containerTensor + elemTensor
		case containerName:
		default:
			return unknownContainerField(f)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if other >= 0 {
		return nil, fmt.Errorf("sequences of %s values are unsupported", elemKindName(other))
	}
	if elem != elemTensor && !(elem == elemUndefined && len(seq) == 0) {
		return nil, fmt.Errorf("sequences of %s values are unsupported (elem_type %d)", elemKindName(elem), elem)
	}
	return seq, nil
}

// Optional is a decoded OptionalProto: empty (neither set), a tensor, or a
// sequence of tensors.
type Optional struct {
	Tensor     *ir.Tensor
	Sequence   []*ir.Tensor
	IsSequence bool // Sequence is set (possibly empty)
}

// Empty reports an optional with no value.
func (o *Optional) Empty() bool { return o.Tensor == nil && !o.IsSequence }

// DecodeOptional decodes an OptionalProto holding nothing, a tensor, or a
// sequence of tensors. Other kinds give an error.
func DecodeOptional(b []byte) (*Optional, error) {
	d := &decoder{}
	o, err := d.optional(b)
	if err != nil {
		return nil, fmt.Errorf("optional %q: %w", peekString(b, containerName), err)
	}
	return o, nil
}

func (d *decoder) optional(b []byte) (*Optional, error) {
	o := &Optional{}
	var elem int32
	other := int32(-1)
	err := eachField(b, func(f field) error {
		var err error
		switch f.num {
		case containerElemType:
			elem, err = f.int32v("elem_type")
		case containerTensor:
			if err = f.want("tensor_value", protowire.BytesType); err == nil {
				o.Tensor, err = d.tensor(f.b)
			}
		case containerSequence:
			if err = f.want("sequence_value", protowire.BytesType); err == nil {
				o.Sequence, err = d.sequence(f.b)
				o.IsSequence = true
				if err != nil {
					err = fmt.Errorf("sequence_value: %w", err)
				}
			}
		case containerSparse, containerMap, containerOptional:
			other = int32(f.num) - containerTensor + elemTensor
		case containerName:
		default:
			return unknownContainerField(f)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if other >= 0 {
		return nil, fmt.Errorf("optionals of %s values are unsupported", elemKindName(other))
	}
	switch {
	case o.Tensor != nil && o.IsSequence:
		return nil, fmt.Errorf("both tensor_value and sequence_value set")
	case o.Tensor != nil && elem != elemTensor, o.IsSequence && elem != elemSequence:
		return nil, fmt.Errorf("elem_type %d (%s) does not match the value", elem, elemKindName(elem))
	case o.Empty() && elem != elemUndefined && elem != elemTensor && elem != elemSequence:
		return nil, fmt.Errorf("optionals of %s values are unsupported", elemKindName(elem))
	}
	return o, nil
}

// unknownContainerField rejects fields SequenceProto and OptionalProto do not
// have: these small messages are easily confused with a TensorProto file,
// which would otherwise decode as an empty container.
func unknownContainerField(f field) error {
	return fmt.Errorf("unknown field %d (a TensorProto file?)", f.num)
}
