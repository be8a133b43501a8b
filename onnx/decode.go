// Package onnx loads and saves ONNX models and TensorProto files by decoding
// the protobuf wire format by hand (protowire), into kiln's ir types.
//
// Decoding is defensive: every length is checked against the buffer, declared
// tensor sizes against the bytes actually present before anything is
// allocated, nesting depth is bounded, and errors name the graph, node,
// attribute, tensor and field involved. Decoded values never alias the input.
package onnx

import (
	"errors"
	"fmt"

	"github.com/kilnml/kiln/ir"
	"google.golang.org/protobuf/encoding/protowire"
)

// maxDepth bounds nested graphs (If/Loop/Scan bodies) and nested types.
const maxDepth = 64

// Field numbers from onnx.proto.
const (
	modelIRVersion       = 1
	modelProducerName    = 2
	modelProducerVersion = 3
	modelDomain          = 4
	modelModelVersion    = 5
	modelDocString       = 6
	modelGraph           = 7
	modelOpsetImport     = 8
	modelMetadataProps   = 14
	modelFunctions       = 25

	graphNode              = 1
	graphName              = 2
	graphInitializer       = 5
	graphDocString         = 10
	graphInput             = 11
	graphOutput            = 12
	graphValueInfo         = 13
	graphQuantAnnotation   = 14
	graphSparseInitializer = 15

	nodeInput     = 1
	nodeOutput    = 2
	nodeName      = 3
	nodeOpType    = 4
	nodeAttribute = 5
	nodeDocString = 6
	nodeDomain    = 7

	attrName          = 1
	attrF             = 2
	attrI             = 3
	attrS             = 4
	attrT             = 5
	attrG             = 6
	attrFloats        = 7
	attrInts          = 8
	attrStrings       = 9
	attrTensors       = 10
	attrGraphs        = 11
	attrDocString     = 13
	attrTP            = 14
	attrTPs           = 15
	attrType          = 20
	attrRefAttrName   = 21
	attrSparseTensor  = 22
	attrSparseTensors = 23

	valueInfoName      = 1
	valueInfoType      = 2
	valueInfoDocString = 3

	opsetDomain  = 1
	opsetVersion = 2
	pairKey      = 1
	pairValue    = 2
)

// decoder carries what decoding needs beyond the bytes: the directory that
// external data locations are relative to.
type decoder struct {
	baseDir string
}

// Decode decodes a serialized ModelProto. baseDir is the directory external
// tensor data is read from ("" refuses external data). m.Path is left empty.
func Decode(data []byte, baseDir string) (*ir.Model, error) {
	d := &decoder{baseDir: baseDir}
	return d.model(data)
}

func (d *decoder) model(b []byte) (*ir.Model, error) {
	m := &ir.Model{}
	err := eachField(b, func(f field) error {
		var err error
		switch f.num {
		case modelIRVersion:
			m.IRVersion, err = f.int64v("ir_version")
		case modelProducerName:
			m.ProducerName, err = f.str("producer_name")
		case modelProducerVersion:
			m.ProducerVersion, err = f.str("producer_version")
		case modelDomain:
			m.Domain, err = f.str("domain")
		case modelModelVersion:
			m.ModelVersion, err = f.int64v("model_version")
		case modelDocString:
			m.Doc, err = f.str("doc_string")
		case modelGraph:
			if err = f.want("graph", protowire.BytesType); err == nil {
				m.Graph, err = d.graph(f.b, 0)
			}
		case modelOpsetImport:
			var o ir.OpsetImport
			if err = f.want("opset_import", protowire.BytesType); err == nil {
				o, err = decodeOpset(f.b)
				m.Opsets = append(m.Opsets, o)
			}
		case modelMetadataProps:
			var p ir.StringPair
			if err = f.want("metadata_props", protowire.BytesType); err == nil {
				if p, err = decodeStringPair(f.b); err != nil {
					err = fmt.Errorf("metadata_props: %w", err)
				}
				m.Metadata = append(m.Metadata, p)
			}
		case modelFunctions:
			var fn []byte
			if fn, err = f.bytesCopy("functions"); err == nil {
				m.Functions = append(m.Functions, nonNil(fn))
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if m.Graph == nil {
		return nil, errors.New("model has no graph (not an ONNX model?)")
	}
	return m, nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func decodeOpset(b []byte) (ir.OpsetImport, error) {
	var o ir.OpsetImport
	err := eachField(b, func(f field) error {
		var err error
		switch f.num {
		case opsetDomain:
			o.Domain, err = f.str("domain")
		case opsetVersion:
			o.Version, err = f.int64v("version")
		}
		return err
	})
	if err != nil {
		return o, fmt.Errorf("opset_import: %w", err)
	}
	return o, nil
}

func decodeStringPair(b []byte) (ir.StringPair, error) {
	var p ir.StringPair
	err := eachField(b, func(f field) error {
		var err error
		switch f.num {
		case pairKey:
			p.Key, err = f.str("key")
		case pairValue:
			p.Value, err = f.str("value")
		}
		return err
	})
	return p, err
}

// graph decodes a GraphProto; depth counts the graphs it is nested in.
func (d *decoder) graph(b []byte, depth int) (*ir.Graph, error) {
	g, err := d.graphBody(b, depth)
	if err != nil {
		return nil, fmt.Errorf("graph %q: %w", peekString(b, graphName), err)
	}
	return g, nil
}

func (d *decoder) graphBody(b []byte, depth int) (*ir.Graph, error) {
	if depth >= maxDepth {
		return nil, fmt.Errorf("graphs nested more than %d deep", maxDepth)
	}
	g := &ir.Graph{}
	err := eachField(b, func(f field) error {
		var err error
		switch f.num {
		case graphNode:
			if err = f.want("node", protowire.BytesType); err == nil {
				var n *ir.Node
				n, err = d.node(f.b, len(g.Nodes), depth)
				g.Nodes = append(g.Nodes, n)
			}
		case graphName:
			g.Name, err = f.str("name")
		case graphInitializer:
			if err = f.want("initializer", protowire.BytesType); err == nil {
				var t *ir.Tensor
				if t, err = d.tensor(f.b); err != nil {
					err = fmt.Errorf("initializer: %w", err)
				}
				g.Initializers = append(g.Initializers, t)
			}
		case graphDocString:
			g.Doc, err = f.str("doc_string")
		case graphInput, graphOutput, graphValueInfo:
			name := "value_info"
			switch f.num {
			case graphInput:
				name = "input"
			case graphOutput:
				name = "output"
			}
			if err = f.want(name, protowire.BytesType); err != nil {
				return err
			}
			var v *ir.ValueInfo
			if v, err = decodeValueInfo(f.b); err != nil {
				return fmt.Errorf("%s %q: %w", name, peekString(f.b, valueInfoName), err)
			}
			switch f.num {
			case graphInput:
				g.Inputs = append(g.Inputs, v)
			case graphOutput:
				g.Outputs = append(g.Outputs, v)
			default:
				g.ValueInfo = append(g.ValueInfo, v)
			}
		case graphQuantAnnotation:
			var a []byte
			if a, err = f.bytesCopy("quantization_annotation"); err == nil {
				g.QuantAnnotations = append(g.QuantAnnotations, nonNil(a))
			}
		case graphSparseInitializer:
			var s []byte
			if s, err = f.bytesCopy("sparse_initializer"); err == nil {
				g.SparseInitializers = append(g.SparseInitializers, nonNil(s))
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

func (d *decoder) node(b []byte, index, depth int) (*ir.Node, error) {
	n := &ir.Node{}
	err := eachField(b, func(f field) error {
		var err error
		switch f.num {
		case nodeInput:
			var s string
			s, err = f.str("input")
			n.Inputs = append(n.Inputs, s)
		case nodeOutput:
			var s string
			s, err = f.str("output")
			n.Outputs = append(n.Outputs, s)
		case nodeName:
			n.Name, err = f.str("name")
		case nodeOpType:
			n.OpType, err = f.str("op_type")
		case nodeAttribute:
			if err = f.want("attribute", protowire.BytesType); err == nil {
				var a *ir.Attribute
				a, err = d.attribute(f.b, depth)
				n.Attrs = append(n.Attrs, a)
			}
		case nodeDocString:
			n.Doc, err = f.str("doc_string")
		case nodeDomain:
			n.Domain, err = f.str("domain")
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("node #%d %q (%s): %w", index, peekString(b, nodeName), peekString(b, nodeOpType), err)
	}
	return n, nil
}

func (d *decoder) attribute(b []byte, depth int) (*ir.Attribute, error) {
	a, err := d.attributeBody(b, depth)
	if err != nil {
		return nil, fmt.Errorf("attribute %q: %w", peekString(b, attrName), err)
	}
	return a, nil
}

func (d *decoder) attributeBody(b []byte, depth int) (*ir.Attribute, error) {
	a := &ir.Attribute{}
	var sparseOne, sparseMany [][]byte
	err := eachField(b, func(f field) error {
		var err error
		switch f.num {
		case attrName:
			a.Name, err = f.str("name")
		case attrRefAttrName:
			a.RefAttrName, err = f.str("ref_attr_name")
		case attrDocString:
			a.Doc, err = f.str("doc_string")
		case attrType:
			var t int32
			t, err = f.int32v("type")
			a.Type = ir.AttrType(t)
		case attrF:
			if err = f.want("f", protowire.Fixed32Type); err == nil {
				a.F = float32frombits(f.v)
			}
		case attrI:
			a.I, err = f.int64v("i")
		case attrS:
			a.S, err = f.bytesCopy("s")
		case attrT:
			if err = f.want("t", protowire.BytesType); err == nil {
				a.T, err = d.tensor(f.b)
			}
		case attrG:
			if err = f.want("g", protowire.BytesType); err == nil {
				a.G, err = d.graph(f.b, depth+1)
			}
		case attrFloats:
			a.Floats, err = appendFloat32s(a.Floats, f, "floats")
		case attrInts:
			a.Ints, err = appendInt64s(a.Ints, f, "ints")
		case attrStrings:
			var s []byte
			s, err = f.bytesCopy("strings")
			a.Strings = append(a.Strings, s)
		case attrTensors:
			if err = f.want("tensors", protowire.BytesType); err == nil {
				var t *ir.Tensor
				t, err = d.tensor(f.b)
				a.Tensors = append(a.Tensors, t)
			}
		case attrGraphs:
			if err = f.want("graphs", protowire.BytesType); err == nil {
				var g *ir.Graph
				g, err = d.graph(f.b, depth+1)
				a.Graphs = append(a.Graphs, g)
			}
		case attrTP:
			if err = f.want("tp", protowire.BytesType); err == nil {
				a.TP, err = decodeType(f.b, 0)
			}
		case attrTPs:
			if err = f.want("type_protos", protowire.BytesType); err == nil {
				var t *ir.Type
				t, err = decodeType(f.b, 0)
				a.TPs = append(a.TPs, t)
			}
		case attrSparseTensor:
			var s []byte
			if s, err = f.bytesCopy("sparse_tensor"); err == nil {
				sparseOne = [][]byte{nonNil(s)} // a later occurrence replaces it, as in protobuf
			}
		case attrSparseTensors:
			var s []byte
			if s, err = f.bytesCopy("sparse_tensors"); err == nil {
				sparseMany = append(sparseMany, nonNil(s))
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	a.Sparse = append(sparseOne, sparseMany...)
	// A present list attribute is never nil, even when empty (ir's getters
	// distinguish absent from empty by nil).
	switch a.Type {
	case ir.AttrFloats:
		a.Floats = nonNilSlice(a.Floats)
	case ir.AttrInts:
		a.Ints = nonNilSlice(a.Ints)
	case ir.AttrStrings:
		a.Strings = nonNilSlice(a.Strings)
	case ir.AttrTensors:
		a.Tensors = nonNilSlice(a.Tensors)
	case ir.AttrGraphs:
		a.Graphs = nonNilSlice(a.Graphs)
	case ir.AttrTypeProtos:
		a.TPs = nonNilSlice(a.TPs)
	}
	return a, nil
}

func nonNilSlice[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func decodeValueInfo(b []byte) (*ir.ValueInfo, error) {
	v := &ir.ValueInfo{}
	err := eachField(b, func(f field) error {
		var err error
		switch f.num {
		case valueInfoName:
			v.Name, err = f.str("name")
		case valueInfoType:
			if err = f.want("type", protowire.BytesType); err == nil {
				v.Type, err = decodeType(f.b, 0)
			}
		case valueInfoDocString:
			v.Doc, err = f.str("doc_string")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}
