package onnx

import (
	"errors"
	"fmt"
	"math"

	"github.com/kilnml/kiln/ir"
	"google.golang.org/protobuf/encoding/protowire"
)

// Encode serializes m as a ModelProto. Fields are written in field-number
// order with zero values omitted, so the output is deterministic:
// Encode(Decode(Encode(m))) equals Encode(m). Tensors are written inline
// (numeric data as raw_data) even if they were loaded from external data.
func Encode(m *ir.Model) ([]byte, error) {
	if m == nil {
		return nil, errors.New("encode: nil model")
	}
	b := make([]byte, 0, estimateModel(m))
	b = appendVarintField(b, modelIRVersion, uint64(m.IRVersion))
	b = appendStringField(b, modelProducerName, m.ProducerName)
	b = appendStringField(b, modelProducerVersion, m.ProducerVersion)
	b = appendStringField(b, modelDomain, m.Domain)
	b = appendVarintField(b, modelModelVersion, uint64(m.ModelVersion))
	b = appendStringField(b, modelDocString, m.Doc)
	if m.Graph != nil {
		var err error
		b, err = appendMessage(b, modelGraph, func(b []byte) ([]byte, error) { return appendGraph(b, m.Graph, 0) })
		if err != nil {
			return nil, fmt.Errorf("encode: %w", err)
		}
	}
	for _, o := range m.Opsets {
		b, _ = appendMessage(b, modelOpsetImport, func(b []byte) ([]byte, error) {
			b = appendStringField(b, opsetDomain, o.Domain)
			return appendVarintField(b, opsetVersion, uint64(o.Version)), nil
		})
	}
	for _, p := range m.Metadata {
		b = appendStringPair(b, modelMetadataProps, p)
	}
	for _, f := range m.Functions {
		b = appendBytesField(b, modelFunctions, f)
	}
	return b, nil
}

// estimateModel sums tensor bytes so that the output buffer is allocated once.
func estimateModel(m *ir.Model) int {
	var n int
	var walk func(g *ir.Graph, depth int)
	walk = func(g *ir.Graph, depth int) {
		if g == nil || depth > maxDepth {
			return
		}
		for _, t := range g.Initializers {
			if t != nil {
				n += len(t.Data) + 64
			}
		}
		for _, nd := range g.Nodes {
			if nd == nil {
				continue
			}
			n += 128
			for _, a := range nd.Attrs {
				if a == nil {
					continue
				}
				if a.T != nil {
					n += len(a.T.Data) + 64
				}
				walk(a.G, depth+1)
				for _, sg := range a.Graphs {
					walk(sg, depth+1)
				}
			}
		}
	}
	walk(m.Graph, 0)
	return n + n/32 + 64<<10 // names, types and value infos are not counted above
}

func appendGraph(b []byte, g *ir.Graph, depth int) ([]byte, error) {
	if depth >= maxDepth {
		return nil, fmt.Errorf("graph %q: graphs nested more than %d deep", g.Name, maxDepth)
	}
	var err error
	for i, n := range g.Nodes {
		b, err = appendMessage(b, graphNode, func(b []byte) ([]byte, error) { return appendNode(b, n, depth) })
		if err != nil {
			return nil, fmt.Errorf("graph %q: node #%d: %w", g.Name, i, err)
		}
	}
	b = appendStringField(b, graphName, g.Name)
	for _, t := range g.Initializers {
		b, err = appendMessage(b, graphInitializer, func(b []byte) ([]byte, error) { return appendTensorCtx(b, t) })
		if err != nil {
			return nil, fmt.Errorf("graph %q: initializer: %w", g.Name, err)
		}
	}
	b = appendStringField(b, graphDocString, g.Doc)
	lists := []struct {
		num  protowire.Number
		name string
		vs   []*ir.ValueInfo
	}{{graphInput, "input", g.Inputs}, {graphOutput, "output", g.Outputs}, {graphValueInfo, "value_info", g.ValueInfo}}
	for _, l := range lists {
		for _, v := range l.vs {
			if v == nil {
				return nil, fmt.Errorf("graph %q: nil %s", g.Name, l.name)
			}
			b, err = appendMessage(b, l.num, func(b []byte) ([]byte, error) { return appendValueInfo(b, v) })
			if err != nil {
				return nil, fmt.Errorf("graph %q: %s %q: %w", g.Name, l.name, v.Name, err)
			}
		}
	}
	for _, a := range g.QuantAnnotations {
		b = appendBytesField(b, graphQuantAnnotation, a)
	}
	for _, s := range g.SparseInitializers {
		b = appendBytesField(b, graphSparseInitializer, s)
	}
	return b, nil
}

func appendTensorCtx(b []byte, t *ir.Tensor) ([]byte, error) {
	out, err := appendTensor(b, t)
	if err != nil && t != nil {
		return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	return out, err
}

func appendNode(b []byte, n *ir.Node, depth int) ([]byte, error) {
	if n == nil {
		return nil, errors.New("nil node")
	}
	for _, s := range n.Inputs {
		b = appendStringAlways(b, nodeInput, s)
	}
	for _, s := range n.Outputs {
		b = appendStringAlways(b, nodeOutput, s)
	}
	b = appendStringField(b, nodeName, n.Name)
	b = appendStringField(b, nodeOpType, n.OpType)
	for _, a := range n.Attrs {
		var err error
		b, err = appendMessage(b, nodeAttribute, func(b []byte) ([]byte, error) { return appendAttribute(b, a, depth) })
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
	}
	b = appendStringField(b, nodeDocString, n.Doc)
	b = appendStringField(b, nodeDomain, n.Domain)
	return b, nil
}

func appendAttribute(b []byte, a *ir.Attribute, depth int) ([]byte, error) {
	if a == nil {
		return nil, errors.New("nil attribute")
	}
	out, err := appendAttributeBody(b, a, depth)
	if err != nil {
		return nil, fmt.Errorf("attribute %q: %w", a.Name, err)
	}
	return out, nil
}

func appendAttributeBody(b []byte, a *ir.Attribute, depth int) ([]byte, error) {
	var err error
	b = appendStringField(b, attrName, a.Name)
	if a.Type == ir.AttrFloat || math.Float32bits(a.F) != 0 {
		b = protowire.AppendTag(b, attrF, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, math.Float32bits(a.F))
	}
	if a.Type == ir.AttrInt || a.I != 0 {
		b = protowire.AppendTag(b, attrI, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(a.I))
	}
	if a.Type == ir.AttrString || len(a.S) > 0 {
		b = appendBytesField(b, attrS, a.S)
	}
	if a.T != nil {
		if b, err = appendMessage(b, attrT, func(b []byte) ([]byte, error) { return appendTensorCtx(b, a.T) }); err != nil {
			return nil, err
		}
	}
	if a.G != nil {
		if b, err = appendMessage(b, attrG, func(b []byte) ([]byte, error) { return appendGraph(b, a.G, depth+1) }); err != nil {
			return nil, err
		}
	}
	if len(a.Floats) > 0 {
		b = protowire.AppendTag(b, attrFloats, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(4*len(a.Floats)))
		for _, f := range a.Floats {
			b = protowire.AppendFixed32(b, math.Float32bits(f))
		}
	}
	if len(a.Ints) > 0 {
		b = appendPackedInt64s(b, attrInts, a.Ints)
	}
	for _, s := range a.Strings {
		b = appendBytesField(b, attrStrings, s)
	}
	for _, t := range a.Tensors {
		if b, err = appendMessage(b, attrTensors, func(b []byte) ([]byte, error) { return appendTensorCtx(b, t) }); err != nil {
			return nil, err
		}
	}
	for _, g := range a.Graphs {
		if g == nil {
			return nil, errors.New("nil graph")
		}
		if b, err = appendMessage(b, attrGraphs, func(b []byte) ([]byte, error) { return appendGraph(b, g, depth+1) }); err != nil {
			return nil, err
		}
	}
	b = appendStringField(b, attrDocString, a.Doc)
	if a.TP != nil {
		if b, err = appendMessage(b, attrTP, func(b []byte) ([]byte, error) { return appendType(b, a.TP, 0) }); err != nil {
			return nil, err
		}
	}
	for _, t := range a.TPs {
		if t == nil {
			return nil, errors.New("nil type_protos entry")
		}
		if b, err = appendMessage(b, attrTPs, func(b []byte) ([]byte, error) { return appendType(b, t, 0) }); err != nil {
			return nil, err
		}
	}
	b = appendVarintField(b, attrType, uint64(a.Type))
	b = appendStringField(b, attrRefAttrName, a.RefAttrName)
	// Sparse holds sparse_tensor first (for a SPARSE_TENSOR attribute), then sparse_tensors.
	for i, s := range a.Sparse {
		num := protowire.Number(attrSparseTensors)
		if i == 0 && a.Type == ir.AttrSparseTensor {
			num = attrSparseTensor
		}
		b = appendBytesField(b, num, s)
	}
	return b, nil
}

func appendValueInfo(b []byte, v *ir.ValueInfo) ([]byte, error) {
	b = appendStringField(b, valueInfoName, v.Name)
	if v.Type != nil {
		var err error
		if b, err = appendMessage(b, valueInfoType, func(b []byte) ([]byte, error) { return appendType(b, v.Type, 0) }); err != nil {
			return nil, err
		}
	}
	return appendStringField(b, valueInfoDocString, v.Doc), nil
}

func appendType(b []byte, t *ir.Type, depth int) ([]byte, error) {
	if depth >= maxDepth {
		return nil, fmt.Errorf("types nested more than %d deep", maxDepth)
	}
	elem := func(b []byte, num protowire.Number) ([]byte, error) {
		if t.Elem == nil {
			return b, nil
		}
		return appendMessage(b, num, func(b []byte) ([]byte, error) { return appendType(b, t.Elem, depth+1) })
	}
	var err error
	switch t.Kind {
	case ir.KindTensor, ir.KindSparseTensor:
		num := protowire.Number(typeTensor)
		if t.Kind == ir.KindSparseTensor {
			num = typeSparseTensor
		}
		b, _ = appendMessage(b, num, func(b []byte) ([]byte, error) {
			b = appendVarintField(b, tensorTypeElemType, uint64(t.DType))
			if t.HasShape {
				b, _ = appendMessage(b, tensorTypeShape, func(b []byte) ([]byte, error) {
					for _, d := range t.Shape {
						b, _ = appendMessage(b, shapeDim, func(b []byte) ([]byte, error) {
							switch {
							case d.Param != "":
								b = appendStringField(b, dimParam, d.Param)
							case d.Value >= 0:
								b = protowire.AppendTag(b, dimValue, protowire.VarintType)
								b = protowire.AppendVarint(b, uint64(d.Value))
							}
							return b, nil
						})
					}
					return b, nil
				})
			}
			return b, nil
		})
	case ir.KindSequence:
		b, err = appendMessage(b, typeSequence, func(b []byte) ([]byte, error) { return elem(b, seqElemType) })
	case ir.KindOptional:
		b, err = appendMessage(b, typeOptional, func(b []byte) ([]byte, error) { return elem(b, seqElemType) })
	case ir.KindMap:
		b, err = appendMessage(b, typeMap, func(b []byte) ([]byte, error) {
			b = appendVarintField(b, mapKeyType, uint64(t.DType))
			return elem(b, mapValueType)
		})
	default:
		return nil, fmt.Errorf("unknown type kind %d", t.Kind)
	}
	if err != nil {
		return nil, err
	}
	return appendStringField(b, typeDenotation, t.Denot), nil
}

// appendMessage appends field num holding the message that enc appends. The
// message is written in place and moved up by the length prefix's size
// afterwards, so no intermediate buffer is allocated per message.
func appendMessage(b []byte, num protowire.Number, enc func([]byte) ([]byte, error)) ([]byte, error) {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	start := len(b)
	b, err := enc(b)
	if err != nil {
		return nil, err
	}
	n := len(b) - start
	k := protowire.SizeVarint(uint64(n))
	for range k {
		b = append(b, 0)
	}
	copy(b[start+k:], b[start:start+n])
	protowire.AppendVarint(b[start:start], uint64(n))
	return b, nil
}

func appendVarintField(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func appendStringField(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	return appendStringAlways(b, num, s)
}

func appendStringAlways(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendBytesField(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendStringPair(b []byte, num protowire.Number, p ir.StringPair) []byte {
	b, _ = appendMessage(b, num, func(b []byte) ([]byte, error) {
		b = appendStringField(b, pairKey, p.Key)
		return appendStringField(b, pairValue, p.Value), nil
	})
	return b
}

func appendPackedInt64s(b []byte, num protowire.Number, vs []int64) []byte {
	size := 0
	for _, v := range vs {
		size += protowire.SizeVarint(uint64(v))
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(size))
	for _, v := range vs {
		b = protowire.AppendVarint(b, uint64(v))
	}
	return b
}
