package onnx

import (
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// Tiny protobuf writer for hand-made test inputs (valid and hostile).

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func fBytes(num protowire.Number, v []byte) []byte {
	b := protowire.AppendTag(nil, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func fStr(num protowire.Number, s string) []byte { return fBytes(num, []byte(s)) }

func fVarint(num protowire.Number, v uint64) []byte {
	b := protowire.AppendTag(nil, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func fFixed32(num protowire.Number, v uint32) []byte {
	b := protowire.AppendTag(nil, num, protowire.Fixed32Type)
	return protowire.AppendFixed32(b, v)
}

func fFixed64(num protowire.Number, v uint64) []byte {
	b := protowire.AppendTag(nil, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, v)
}

func packedVarints(num protowire.Number, vs ...int64) []byte {
	var p []byte
	for _, v := range vs {
		p = protowire.AppendVarint(p, uint64(v))
	}
	return fBytes(num, p)
}

func packedFloats(num protowire.Number, vs ...float32) []byte {
	var p []byte
	for _, v := range vs {
		p = protowire.AppendFixed32(p, math.Float32bits(v))
	}
	return fBytes(num, p)
}

// tensorProto builds a TensorProto with the given name, dtype, dims and
// extra (data) fields.
func tensorProto(name string, dtype int, dims []int64, extra ...[]byte) []byte {
	b := packedVarints(tensorDims, dims...)
	if len(dims) == 0 {
		b = nil
	}
	b = cat(b, fVarint(tensorDataType, uint64(dtype)), fStr(tensorName, name))
	return cat(append([][]byte{b}, extra...)...)
}

// modelWithNodes wraps graph fields into a ModelProto importing opset 17.
func modelProto(graphFields ...[]byte) []byte {
	return cat(
		fVarint(modelIRVersion, 8),
		fBytes(modelOpsetImport, cat(fStr(opsetDomain, ""), fVarint(opsetVersion, 17))),
		fBytes(modelGraph, cat(graphFields...)),
	)
}

// constantNode is a Constant node whose "value" attribute holds tensor.
func constantNode(name string, tensor []byte) []byte {
	attr := cat(fStr(attrName, "value"), fVarint(attrType, 4), fBytes(attrT, tensor))
	return fBytes(graphNode, cat(fStr(nodeOutput, name+"_out"), fStr(nodeName, name), fStr(nodeOpType, "Constant"),
		fBytes(nodeAttribute, attr)))
}
