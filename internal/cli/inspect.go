package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// Report is what `kiln inspect` prints about one file. Each kind of file
// (ONNX model now, engine plans later) has its own report type; all of them
// print as text and marshal to JSON.
type Report interface {
	WriteText(w io.Writer) error
}

// Dim is a dimension in a report: a number, a symbol, or "?" (null in JSON).
type Dim struct{ ir.Dim }

func (d Dim) MarshalJSON() ([]byte, error) {
	switch {
	case d.Param != "":
		return json.Marshal(d.Param)
	case d.Value >= 0:
		return json.Marshal(d.Value)
	}
	return []byte("null"), nil
}

// Value describes a graph input or output.
type Value struct {
	Name  string `json:"name"`
	DType string `json:"dtype"`           // "?" when the file gives no type
	Shape []Dim  `json:"shape,omitempty"` // absent when the rank is unknown
	// Type is the whole type as text (float32[batch,10], seq(...)).
	Type string `json:"type"`
}

func valueOf(name string, t *ir.Type) Value {
	v := Value{Name: name, DType: "?", Type: t.String()}
	if t != nil && t.Kind == ir.KindTensor {
		v.DType = t.DType.String()
		if t.HasShape {
			v.Shape = []Dim{}
			for _, d := range t.Shape {
				v.Shape = append(v.Shape, Dim{d})
			}
		}
	}
	return v
}

// OpCount is one line of the op histogram.
type OpCount struct {
	Op    string `json:"op"` // "Conv", or "com.microsoft::FusedConv" outside the default domain
	Count int    `json:"count"`
}

// Opset is an imported operator set ("ai.onnx" for the default domain).
type Opset struct {
	Domain  string `json:"domain"`
	Version int64  `json:"version"`
}

// Params counts the model's constant tensors.
type Params struct {
	Initializers     int   `json:"initializers"`
	InitializerElems int64 `json:"initializer_elements"`
	InitializerBytes int64 `json:"initializer_bytes"`
	Constants        int   `json:"constant_nodes"`
	ConstantElems    int64 `json:"constant_elements"`
	ConstantBytes    int64 `json:"constant_bytes"`
	Elems            int64 `json:"total_elements"`
	Bytes            int64 `json:"total_bytes"`
}

// Unsupported is an op kiln cannot run, with every node that uses it.
type Unsupported struct {
	Op     string   `json:"op"`
	Domain string   `json:"domain"`
	Opset  int64    `json:"opset"`
	Reason string   `json:"reason"`
	Nodes  []string `json:"nodes"`
}

// ModelReport describes an ONNX model.
type ModelReport struct {
	Kind            string    `json:"kind"` // "onnx"
	Path            string    `json:"path"`
	Producer        string    `json:"producer"`
	ProducerVersion string    `json:"producer_version"`
	IRVersion       int64     `json:"ir_version"`
	ModelVersion    int64     `json:"model_version,omitempty"`
	Domain          string    `json:"domain,omitempty"`
	Graph           string    `json:"graph"`
	Opsets          []Opset   `json:"opsets"`
	Inputs          []Value   `json:"inputs"`
	Outputs         []Value   `json:"outputs"`
	Nodes           int       `json:"nodes"`
	Ops             []OpCount `json:"ops"`
	Params          Params    `json:"parameters"`
	// InferredOutputs holds the outputs' types as kiln's shape inference
	// sees them; InferenceErrors what stopped it, if anything.
	InferredOutputs []Value  `json:"inferred_outputs,omitempty"`
	InferenceErrors []string `json:"inference_errors,omitempty"`
	// InferenceWarnings: declared types kiln overrides with the inferred
	// ones, as ONNX Runtime does (ops.Inference.Warnings).
	InferenceWarnings []string `json:"inference_warnings,omitempty"`
	// InferenceFollowOn counts inference errors left out of
	// InferenceErrors because unsupported ops explain them.
	InferenceFollowOn int `json:"inference_follow_on_errors,omitempty"`
	// Problems are structural errors the verifier found.
	Problems    []string      `json:"problems,omitempty"`
	Unsupported []Unsupported `json:"unsupported_ops"`
}

// InspectModel builds the report of a loaded model. It fails only on a
// model without a graph; problems with the model are part of the report.
func InspectModel(m *ir.Model) (*ModelReport, error) {
	g := m.Graph
	if g == nil {
		return nil, fmt.Errorf("%s: the model has no graph", m.Path)
	}
	r := &ModelReport{Kind: "onnx", Path: m.Path, Producer: m.ProducerName, ProducerVersion: m.ProducerVersion,
		IRVersion: m.IRVersion, ModelVersion: m.ModelVersion, Domain: m.Domain, Graph: g.Name,
		Nodes: len(g.Nodes), Opsets: []Opset{}, Inputs: []Value{}, Outputs: []Value{}, Unsupported: []Unsupported{}}
	for _, o := range m.Opsets {
		d := o.Domain
		if d == "" {
			d = "ai.onnx"
		}
		r.Opsets = append(r.Opsets, Opset{d, o.Version})
	}
	for _, in := range g.RealInputs() {
		r.Inputs = append(r.Inputs, valueOf(in.Name, in.Type))
	}
	for _, o := range g.Outputs {
		r.Outputs = append(r.Outputs, valueOf(o.Name, o.Type))
	}
	r.Ops = histogram(g)
	r.Params = countParams(g)
	if err := m.Verify(); err != nil {
		r.Problems = errorLines(err)
	}
	if err := ops.CheckSupported(m); err != nil {
		var ue *ops.UnsupportedOpsError
		if !errors.As(err, &ue) {
			return nil, err
		}
		for _, op := range ue.Ops {
			d := op.Domain
			if d == "" {
				d = "ai.onnx"
			}
			r.Unsupported = append(r.Unsupported, Unsupported{Op: op.OpType, Domain: d, Opset: op.Opset,
				Reason: op.Reason, Nodes: op.Nodes})
		}
	}
	if len(r.Problems) == 0 {
		types, warnings, err := inferTypes(m)
		r.InferenceWarnings = warnings
		for _, o := range g.Outputs {
			if t := types[o.Name]; t != nil {
				r.InferredOutputs = append(r.InferredOutputs, valueOf(o.Name, t))
			}
		}
		if err != nil {
			r.InferenceErrors = errorLines(err)
			if len(r.Unsupported) > 0 {
				r.InferenceErrors, r.InferenceFollowOn = dropFollowOn(r.InferenceErrors)
			}
		}
	}
	return r, nil
}

// inferTypes runs shape inference, turning a panic in an inference function
// into an error so that inspect always gets to print its report.
func inferTypes(m *ir.Model) (types map[string]*ir.Type, warnings []string, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("shape inference crashed: %v", p)
		}
	}()
	inf, err := ops.Infer(m, ops.InferOptions{})
	if inf == nil {
		return nil, nil, err
	}
	return inf.Types, inf.Warnings, err
}

// dropFollowOn removes the inference errors that unsupported ops cause (the
// op itself, and nodes downstream whose input types are therefore unknown):
// the report lists those ops separately.
func dropFollowOn(lines []string) (kept []string, dropped int) {
	for _, l := range lines {
		if strings.Contains(l, " is not supported") || strings.Contains(l, " is supported only for opsets") ||
			strings.HasSuffix(l, " is unknown") {
			dropped++
			continue
		}
		kept = append(kept, l)
	}
	return kept, dropped
}

func errorLines(err error) []string {
	var out []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func histogram(g *ir.Graph) []OpCount {
	counts := map[string]int{}
	for _, n := range g.Nodes {
		op := n.OpType
		if n.Domain != "" && n.Domain != "ai.onnx" {
			op = n.Domain + "::" + op
		}
		counts[op]++
	}
	out := make([]OpCount, 0, len(counts))
	for op, c := range counts {
		out = append(out, OpCount{op, c})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Op < out[j].Op
	})
	return out
}

func tensorBytes(t *ir.Tensor) int64 {
	if t.DType == ir.String {
		n := int64(0)
		for _, s := range t.Strings {
			n += int64(len(s))
		}
		return n
	}
	return int64(len(t.Data))
}

func countParams(g *ir.Graph) Params {
	var p Params
	for _, t := range g.Initializers {
		p.Initializers++
		p.InitializerElems += t.Len()
		p.InitializerBytes += tensorBytes(t)
	}
	for _, n := range g.Nodes {
		if n.OpType != "Constant" || (n.Domain != "" && n.Domain != "ai.onnx") {
			continue
		}
		elems, bytes := constantSize(n)
		p.Constants++
		p.ConstantElems += elems
		p.ConstantBytes += bytes
	}
	p.Elems = p.InitializerElems + p.ConstantElems
	p.Bytes = p.InitializerBytes + p.ConstantBytes
	return p
}

// constantSize sizes a Constant node's value, whichever attribute holds it.
func constantSize(n *ir.Node) (elems, bytes int64) {
	for _, a := range n.Attrs {
		switch a.Name {
		case "value":
			if a.T != nil {
				return a.T.Len(), tensorBytes(a.T)
			}
		case "value_float", "value_int":
			return 1, map[string]int64{"value_float": 4, "value_int": 8}[a.Name]
		case "value_floats":
			return int64(len(a.Floats)), 4 * int64(len(a.Floats))
		case "value_ints":
			return int64(len(a.Ints)), 8 * int64(len(a.Ints))
		case "value_string":
			return 1, int64(len(a.S))
		case "value_strings":
			b := int64(0)
			for _, s := range a.Strings {
				b += int64(len(s))
			}
			return int64(len(a.Strings)), b
		}
	}
	return 0, 0
}
