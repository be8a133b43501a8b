// Package ref is the portable fallback backend: any op the reference
// executor knows runs in an engine through its reference kernel, so a model
// builds even where no fast kernel exists. It is also what every fast
// kernel is compared with.
package ref

import (
	"encoding/json"
	"fmt"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
	_ "github.com/kilnml/kiln/ops/all"
)

// KernelID is the plan kernel id of reference steps.
const KernelID = "ref.op"

func init() { engine.RegisterKernel(KernelID, decode) }

// params is the encoded form of a reference step: the node's op and
// attributes, and which inputs are weights (their index in the weight list).
type params struct {
	OpType  string      `json:"op"`
	Domain  string      `json:"domain,omitempty"`
	Opset   int64       `json:"opset"`
	Name    string      `json:"name"`
	Attrs   []attribute `json:"attrs,omitempty"`
	NumIn   int         `json:"num_in"`
	NumOut  int         `json:"num_out"`
	Outputs []string    `json:"outputs"`
}

// Kernel runs one ONNX op with its reference implementation.
type Kernel struct {
	op   *ops.Op
	node *ir.Node
	p    params
}

// New makes a reference kernel for a node (the builder's lowering).
func New(n *ir.Node, opset int64) (*Kernel, []byte, error) {
	p := params{OpType: n.OpType, Domain: n.Domain, Opset: opset, Name: n.Name, NumIn: len(n.Inputs), NumOut: len(n.Outputs), Outputs: n.Outputs}
	for _, a := range n.Attrs {
		ea, err := encodeAttr(a)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", n, err)
		}
		p.Attrs = append(p.Attrs, ea)
	}
	data, err := json.Marshal(p)
	if err != nil {
		return nil, nil, err
	}
	k, err := decode(data, nil)
	if err != nil {
		return nil, nil, err
	}
	return k.(*Kernel), data, nil
}

func decode(data []byte, _ []*ir.Tensor) (engine.Kernel, error) {
	var p params
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, err
	}
	op, err := ops.Lookup(p.Domain, p.OpType, p.Opset)
	if err != nil {
		return nil, err
	}
	n := &ir.Node{Name: p.Name, OpType: p.OpType, Domain: p.Domain, Inputs: make([]string, p.NumIn), Outputs: p.Outputs}
	for i := range n.Inputs {
		n.Inputs[i] = fmt.Sprintf("in%d", i)
	}
	for _, a := range p.Attrs {
		da, err := a.decode()
		if err != nil {
			return nil, err
		}
		n.Attrs = append(n.Attrs, da)
	}
	return &Kernel{op: op, node: n, p: p}, nil
}

// Shapes uses the op's inference with the input dims (and the values of
// inputs that carry data: weights and shape-step results); when that leaves
// a dimension unknown and every input has data, it runs the op.
func (k *Kernel) Shapes(in []*ir.Tensor) ([][]int64, error) {
	types := make([]*ir.Type, len(in))
	consts := make([]*ir.Tensor, len(in))
	vals := make([]ir.Shape, len(in))
	allData := true
	for i, t := range in {
		if t == nil {
			continue
		}
		types[i] = ir.TensorType(t.DType, ir.ShapeOf(t.Dims))
		if t.Data != nil && t.Check() == nil {
			consts[i] = t
			vals[i] = ops.ValueOf(t)
		} else {
			allData = false
		}
	}
	c := ops.NewInferCtx(k.node, k.p.Opset, types, consts, vals)
	err := k.op.Infer(c)
	if err == nil {
		err = c.Err()
	}
	out := make([][]int64, len(k.node.Outputs))
	complete := err == nil
	if complete {
		for i, t := range c.Out {
			if k.node.Outputs[i] == "" {
				continue
			}
			if t == nil || !t.HasShape {
				complete = false
				break
			}
			d, ok := t.Shape.Concrete()
			if !ok {
				complete = false
				break
			}
			out[i] = d
		}
	}
	if complete {
		return out, nil
	}
	if allData {
		res, rerr := k.run(in)
		if rerr != nil {
			return nil, rerr
		}
		for i, t := range res {
			if t != nil {
				out[i] = t.Dims
			}
		}
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("%s: output shape depends on input values", k.node)
}

func (k *Kernel) run(in []*ir.Tensor) ([]*ir.Tensor, error) {
	c := ops.NewCtx(k.node, k.p.Opset)
	outs, err := k.op.Run(c, in)
	if err == nil {
		err = c.Err()
	}
	if err != nil {
		return nil, err
	}
	return outs, nil
}

// Run computes the op and copies each result into its planned buffer.
func (k *Kernel) Run(_ *engine.Exec, in, out []*ir.Tensor) error {
	res, err := k.run(in)
	if err != nil {
		return err
	}
	for i, o := range out {
		if o == nil || i >= len(res) || res[i] == nil {
			continue
		}
		if len(res[i].Data) != len(o.Data) || res[i].DType != o.DType {
			return fmt.Errorf("%s: output %d is %s%v, planned %s%v", k.node, i, res[i].DType, res[i].Dims, o.DType, o.Dims)
		}
		copy(o.Data, res[i].Data)
	}
	return nil
}

// Backend offers the reference kernel for every op kiln knows, at the
// lowest priority: it is the fallback, never the first choice.
type Backend struct{}

func (Backend) Name() string  { return "ref" }
func (Backend) Priority() int { return -100 }

func (Backend) Tactics(l *engine.Layer) []engine.Tactic {
	if _, err := ops.Lookup(l.Node.Domain, l.Node.OpType, l.Opset); err != nil {
		return nil
	}
	// Any precision: the node itself says what it computes (kiln.Q* layers
	// carry their scales), and the reference runs it as written.
	return []engine.Tactic{tactic{}}
}

type tactic struct{}

func (tactic) Name() string { return "ref" }

func (tactic) Lower(l *engine.Layer) (*engine.Lowered, error) {
	_, params, err := New(l.Node, l.Opset)
	if err != nil {
		return nil, err
	}
	return &engine.Lowered{Kernel: KernelID, Params: params}, nil
}

func init() { engine.RegisterBackend(Backend{}) }
