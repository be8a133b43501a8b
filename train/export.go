package train

import (
	"errors"
	"fmt"
	"strings"

	"github.com/kilnml/kiln/ir"
)

// ONNXExportable is implemented by layers that know their ONNX form. A layer
// added later (fake quantization for QAT, say) implements it to be exported.
type ONNXExportable interface {
	// ExportONNX appends the layer's nodes and initializers to e, reading the
	// value named input, and returns the name of the value it produces.
	ExportONNX(e *Exporter, input string) (output string, err error)
}

// Exporter builds the ONNX graph of a Sequential model.
type Exporter struct {
	Graph *ir.Graph
	// Batch is the name of the symbolic batch dimension.
	Batch string
}

// AddNode appends a node named name producing a value of the same name.
func (e *Exporter) AddNode(op, name string, inputs []string, attrs ...*ir.Attribute) string {
	e.Graph.Nodes = append(e.Graph.Nodes, &ir.Node{Name: name, OpType: op, Inputs: inputs, Outputs: []string{name}, Attrs: attrs})
	return name
}

// AddInitializer adds a float32 initializer holding a copy of t.
func (e *Exporter) AddInitializer(name string, t *Tensor) string {
	dims := make([]int64, len(t.Shape))
	for i, d := range t.Shape {
		dims[i] = int64(d)
	}
	it := ir.FromFloat32s(dims, t.Data)
	it.Name = name
	e.Graph.Initializers = append(e.Graph.Initializers, it)
	return name
}

// Ints and Int make node attributes.
func Ints(name string, v ...int64) *ir.Attribute {
	return &ir.Attribute{Name: name, Type: ir.AttrInts, Ints: v}
}
func Int(name string, v int64) *ir.Attribute {
	return &ir.Attribute{Name: name, Type: ir.AttrInt, I: v}
}

// ExportONNX returns the model as an ONNX graph (opset 13) with input
// "input" [batch, inputShape...] and output "output" [batch, classes],
// batch symbolic, and one initializer per parameter named as in the
// checkpoint ("conv1.weight", ...). Layers that cannot be exported are all
// listed in the error.
func ExportONNX(model *Sequential, inputShape []int, classes int) (*ir.Model, error) {
	e := &Exporter{Graph: &ir.Graph{Name: "SimpleCNN"}, Batch: "batch"}
	inShape := ir.Shape{ir.Sym(e.Batch)}
	for _, d := range inputShape {
		inShape = append(inShape, ir.D(int64(d)))
	}
	e.Graph.Inputs = []*ir.ValueInfo{{Name: "input", Type: ir.TensorType(ir.Float32, inShape)}}
	cur := "input"
	var bad []string
	for _, l := range model.Layers {
		x, ok := l.(ONNXExportable)
		if !ok {
			bad = append(bad, fmt.Sprintf("%s (%T)", l.Name(), l))
			continue
		}
		out, err := x.ExportONNX(e, cur)
		if err != nil {
			return nil, fmt.Errorf("exporting layer %s: %w", l.Name(), err)
		}
		cur = out
	}
	if len(bad) > 0 {
		return nil, errors.New("ONNX export: no ONNX form for layers " + strings.Join(bad, ", "))
	}
	if len(e.Graph.Nodes) == 0 {
		return nil, errors.New("ONNX export: the model has no layers")
	}
	// The last node's output becomes the graph output "output".
	last := e.Graph.Nodes[len(e.Graph.Nodes)-1]
	last.Outputs[0] = "output"
	e.Graph.Outputs = []*ir.ValueInfo{{Name: "output", Type: ir.TensorType(ir.Float32, ir.Shape{ir.Sym(e.Batch), ir.D(int64(classes))})}}
	return &ir.Model{
		IRVersion:    7, // the IR version that goes with opset 13
		Opsets:       []ir.OpsetImport{{Domain: "", Version: 13}},
		ProducerName: "kiln",
		Doc:          "trained by kiln train",
		Graph:        e.Graph,
	}, nil
}

func (l *Conv2dLayer) ExportONNX(e *Exporter, in string) (string, error) {
	k := int64(l.Kernel)
	w := e.AddInitializer(l.LayerName+".weight", l.Weight)
	b := e.AddInitializer(l.LayerName+".bias", l.Bias)
	return e.AddNode("Conv", l.LayerName, []string{in, w, b},
		Ints("kernel_shape", k, k), Ints("strides", 1, 1), Ints("pads", 0, 0, 0, 0), Ints("dilations", 1, 1), Int("group", 1)), nil
}

func (l *LinearLayer) ExportONNX(e *Exporter, in string) (string, error) {
	w := e.AddInitializer(l.LayerName+".weight", l.Weight)
	b := e.AddInitializer(l.LayerName+".bias", l.Bias)
	return e.AddNode("Gemm", l.LayerName, []string{in, w, b}, Int("transB", 1)), nil
}

func (l *ReLULayer) ExportONNX(e *Exporter, in string) (string, error) {
	return e.AddNode("Relu", l.LayerName, []string{in}), nil
}

func (l *MaxPool2dLayer) ExportONNX(e *Exporter, in string) (string, error) {
	k, s := int64(l.Kernel), int64(l.Stride)
	return e.AddNode("MaxPool", l.LayerName, []string{in},
		Ints("kernel_shape", k, k), Ints("strides", s, s), Ints("pads", 0, 0, 0, 0)), nil
}

func (l *FlattenLayer) ExportONNX(e *Exporter, in string) (string, error) {
	return e.AddNode("Flatten", l.LayerName, []string{in}, Int("axis", 1)), nil
}
