package ir

import "fmt"

// Typed attribute getters with defaults. They return an error when the
// attribute exists with another type, naming the node.

func (n *Node) AttrInt(name string, def int64) (int64, error) {
	a := n.Attr(name)
	if a == nil {
		return def, nil
	}
	if a.Type != AttrInt {
		return 0, fmt.Errorf("%s: attribute %q is %v, want int", n, name, a.Type)
	}
	return a.I, nil
}

func (n *Node) AttrFloat(name string, def float32) (float32, error) {
	a := n.Attr(name)
	if a == nil {
		return def, nil
	}
	if a.Type != AttrFloat {
		return 0, fmt.Errorf("%s: attribute %q is %v, want float", n, name, a.Type)
	}
	return a.F, nil
}

func (n *Node) AttrString(name string, def string) (string, error) {
	a := n.Attr(name)
	if a == nil {
		return def, nil
	}
	if a.Type != AttrString {
		return "", fmt.Errorf("%s: attribute %q is %v, want string", n, name, a.Type)
	}
	return string(a.S), nil
}

// AttrInts returns nil (not def) only when def is nil and the attribute is absent.
func (n *Node) AttrInts(name string, def []int64) ([]int64, error) {
	a := n.Attr(name)
	if a == nil {
		return def, nil
	}
	if a.Type != AttrInts {
		return nil, fmt.Errorf("%s: attribute %q is %v, want ints", n, name, a.Type)
	}
	return a.Ints, nil
}

func (n *Node) AttrFloats(name string, def []float32) ([]float32, error) {
	a := n.Attr(name)
	if a == nil {
		return def, nil
	}
	if a.Type != AttrFloats {
		return nil, fmt.Errorf("%s: attribute %q is %v, want floats", n, name, a.Type)
	}
	return a.Floats, nil
}

func (n *Node) AttrTensor(name string) (*Tensor, error) {
	a := n.Attr(name)
	if a == nil {
		return nil, nil
	}
	if a.Type != AttrTensor {
		return nil, fmt.Errorf("%s: attribute %q is %v, want tensor", n, name, a.Type)
	}
	return a.T, nil
}

func (a AttrType) String() string {
	names := map[AttrType]string{AttrFloat: "float", AttrInt: "int", AttrString: "string", AttrTensor: "tensor",
		AttrGraph: "graph", AttrFloats: "floats", AttrInts: "ints", AttrStrings: "strings", AttrTensors: "tensors",
		AttrGraphs: "graphs", AttrSparseTensor: "sparse_tensor", AttrSparseTensors: "sparse_tensors",
		AttrTypeProto: "type_proto", AttrTypeProtos: "type_protos"}
	if s, ok := names[a]; ok {
		return s
	}
	return fmt.Sprintf("attrtype(%d)", int32(a))
}
