package ref

import (
	"fmt"

	"github.com/kilnml/kiln/ir"
)

// attribute is the plan encoding of an ir.Attribute (JSON; []byte fields
// become base64). Graph-valued attributes (If/Loop/Scan bodies) cannot be
// lowered to an engine step.
type attribute struct {
	Name    string      `json:"name"`
	Type    ir.AttrType `json:"type"`
	F       float32     `json:"f,omitempty"`
	I       int64       `json:"i,omitempty"`
	S       []byte      `json:"s,omitempty"`
	T       *tensor     `json:"t,omitempty"`
	Floats  []float32   `json:"floats,omitempty"`
	Ints    []int64     `json:"ints,omitempty"`
	Strings [][]byte    `json:"strings,omitempty"`
	Tensors []*tensor   `json:"tensors,omitempty"`
}

type tensor struct {
	Name    string   `json:"name,omitempty"`
	DType   ir.DType `json:"dtype"`
	Dims    []int64  `json:"dims"`
	Data    []byte   `json:"data,omitempty"`
	Strings [][]byte `json:"strings,omitempty"`
}

func encodeTensor(t *ir.Tensor) *tensor {
	if t == nil {
		return nil
	}
	return &tensor{t.Name, t.DType, t.Dims, t.Data, t.Strings}
}

func (t *tensor) decode() (*ir.Tensor, error) {
	if t == nil {
		return nil, nil
	}
	out := &ir.Tensor{Name: t.Name, DType: t.DType, Dims: t.Dims, Strings: t.Strings}
	if t.Data != nil {
		out.Data = append(ir.AlignedBytes(int64(len(t.Data)))[:0], t.Data...)
	}
	if out.DType != ir.String && out.Data == nil {
		out.Data = []byte{}
	}
	if err := out.Check(); err != nil {
		return nil, err
	}
	return out, nil
}

func encodeAttr(a *ir.Attribute) (attribute, error) {
	switch a.Type {
	case ir.AttrGraph, ir.AttrGraphs, ir.AttrSparseTensor, ir.AttrSparseTensors, ir.AttrTypeProto, ir.AttrTypeProtos:
		return attribute{}, fmt.Errorf("attribute %q of type %s cannot be stored in an engine", a.Name, a.Type)
	}
	e := attribute{Name: a.Name, Type: a.Type, F: a.F, I: a.I, S: a.S, T: encodeTensor(a.T), Floats: a.Floats, Ints: a.Ints, Strings: a.Strings}
	for _, t := range a.Tensors {
		e.Tensors = append(e.Tensors, encodeTensor(t))
	}
	return e, nil
}

func (a attribute) decode() (*ir.Attribute, error) {
	out := &ir.Attribute{Name: a.Name, Type: a.Type, F: a.F, I: a.I, S: a.S, Floats: a.Floats, Ints: a.Ints, Strings: a.Strings}
	var err error
	if out.T, err = a.T.decode(); err != nil {
		return nil, fmt.Errorf("attribute %q: %w", a.Name, err)
	}
	for _, t := range a.Tensors {
		d, err := t.decode()
		if err != nil {
			return nil, fmt.Errorf("attribute %q: %w", a.Name, err)
		}
		out.Tensors = append(out.Tensors, d)
	}
	return out, nil
}
