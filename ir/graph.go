package ir

import (
	"fmt"
	"slices"
)

// Model is an ONNX model: metadata, opset imports and the main graph.
type Model struct {
	IRVersion       int64
	Opsets          []OpsetImport
	ProducerName    string
	ProducerVersion string
	Domain          string
	ModelVersion    int64
	Doc             string
	Metadata        []StringPair
	Graph           *Graph
	// Functions holds model-local FunctionProtos as their encoded bytes: kiln
	// does not execute them, but keeps them so that save round-trips.
	Functions [][]byte
	// Path is the file the model was loaded from (for error messages and
	// external data), empty for models built in memory.
	Path string
}

// OpsetImport is one (domain, version) pair. The default domain is "".
type OpsetImport struct {
	Domain  string
	Version int64
}

// StringPair is ONNX's StringStringEntryProto.
type StringPair struct{ Key, Value string }

// Opset returns the imported version of a domain ("" and "ai.onnx" are the
// same domain), or 0 when the model does not import it.
func (m *Model) Opset(domain string) int64 {
	if domain == "ai.onnx" {
		domain = ""
	}
	for _, o := range m.Opsets {
		d := o.Domain
		if d == "ai.onnx" {
			d = ""
		}
		if d == domain {
			return o.Version
		}
	}
	return 0
}

// Graph is a computation graph. Node order in Nodes is the file's order,
// which ONNX requires to be topological; the verifier checks it.
type Graph struct {
	Name         string
	Doc          string
	Nodes        []*Node
	Inputs       []*ValueInfo // graph inputs, including those that also have an initializer
	Outputs      []*ValueInfo
	ValueInfo    []*ValueInfo // optional type annotations of intermediate values
	Initializers []*Tensor
	// SparseInitializers keeps encoded SparseTensorProtos for round trips.
	SparseInitializers [][]byte
	QuantAnnotations   [][]byte // encoded TensorAnnotations (quantization_annotation), kept for round trips
}

// ValueInfo names a value and (optionally) its type.
type ValueInfo struct {
	Name string
	Type *Type // nil when the file gives none
	Doc  string
}

// Node is one operator application. Inputs and Outputs are value names; an
// empty name marks an absent optional input or output.
type Node struct {
	Name    string
	OpType  string
	Domain  string
	Inputs  []string
	Outputs []string
	Attrs   []*Attribute
	Doc     string
}

// AttrType is ONNX's AttributeProto.AttributeType.
type AttrType int32

const (
	AttrUndefined     AttrType = 0
	AttrFloat         AttrType = 1
	AttrInt           AttrType = 2
	AttrString        AttrType = 3
	AttrTensor        AttrType = 4
	AttrGraph         AttrType = 5
	AttrFloats        AttrType = 6
	AttrInts          AttrType = 7
	AttrStrings       AttrType = 8
	AttrTensors       AttrType = 9
	AttrGraphs        AttrType = 10
	AttrSparseTensor  AttrType = 11
	AttrSparseTensors AttrType = 12
	AttrTypeProto     AttrType = 13
	AttrTypeProtos    AttrType = 14
)

// Attribute is one node attribute; the field matching Type holds the value.
type Attribute struct {
	Name    string
	Type    AttrType
	F       float32
	I       int64
	S       []byte
	T       *Tensor
	G       *Graph
	Floats  []float32
	Ints    []int64
	Strings [][]byte
	Tensors []*Tensor
	Graphs  []*Graph
	TP      *Type
	TPs     []*Type
	// Sparse keeps encoded SparseTensorProto values (sparse_tensor then sparse_tensors) for round trips.
	Sparse [][]byte
	// RefAttrName is set inside functions: the attribute takes the value of the caller's attribute of that name.
	RefAttrName string
	Doc         string
}

// Attr returns the attribute of that name, or nil.
func (n *Node) Attr(name string) *Attribute {
	for _, a := range n.Attrs {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// String gives "OpType 'name'" for messages.
func (n *Node) String() string {
	if n.Name != "" {
		return fmt.Sprintf("%s node %q", n.OpType, n.Name)
	}
	if len(n.Outputs) > 0 {
		return fmt.Sprintf("%s node (output %q)", n.OpType, n.Outputs[0])
	}
	return n.OpType + " node"
}

// Initializer returns the initializer of that name, or nil.
func (g *Graph) Initializer(name string) *Tensor {
	for _, t := range g.Initializers {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// InitializerMap indexes initializers by name.
func (g *Graph) InitializerMap() map[string]*Tensor {
	m := make(map[string]*Tensor, len(g.Initializers))
	for _, t := range g.Initializers {
		m[t.Name] = t
	}
	return m
}

// RealInputs returns the graph inputs that are not also initializers (what a
// user must feed).
func (g *Graph) RealInputs() []*ValueInfo {
	init := g.InitializerMap()
	var out []*ValueInfo
	for _, in := range g.Inputs {
		if _, ok := init[in.Name]; !ok {
			out = append(out, in)
		}
	}
	return out
}

// DropUnreadInitializers removes the initializers that no node and no graph
// output reads, and their entries among the graph inputs (older models list
// initializers there too): of all of them when only is nil, else of those
// for which only(name) is true. Rewrites that replace weights (quantized
// copies) use it so that a model does not carry both.
func (g *Graph) DropUnreadInitializers(only func(name string) bool) {
	read := map[string]bool{}
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			read[in] = true
		}
	}
	for _, o := range g.Outputs {
		read[o.Name] = true
	}
	gone := func(name string) bool { return !read[name] && (only == nil || only(name)) }
	dropped := map[string]bool{}
	g.Initializers = slices.DeleteFunc(g.Initializers, func(t *Tensor) bool {
		if gone(t.Name) {
			dropped[t.Name] = true
			return true
		}
		return false
	})
	g.Inputs = slices.DeleteFunc(g.Inputs, func(v *ValueInfo) bool { return dropped[v.Name] })
}

// Producers maps each value name to the node that produces it.
func (g *Graph) Producers() map[string]*Node {
	m := map[string]*Node{}
	for _, n := range g.Nodes {
		for _, o := range n.Outputs {
			if o != "" {
				m[o] = n
			}
		}
	}
	return m
}

// Consumers maps each value name to the nodes that read it.
func (g *Graph) Consumers() map[string][]*Node {
	m := map[string][]*Node{}
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			if in != "" {
				m[in] = append(m[in], n)
			}
		}
	}
	return m
}
