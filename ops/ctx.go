package ops

import (
	"fmt"

	"github.com/kilnml/kiln/ir"
)

// attrs gives kernels and inference functions attribute getters that
// remember the first type error instead of returning it at every call: the
// executor checks Err after the kernel returns.
type attrs struct {
	Node  *ir.Node
	Opset int64 // version of the node's domain imported by the model
	err   error
}

func (a *attrs) keep(err error) {
	if err != nil && a.err == nil {
		a.err = err
	}
}

// Err returns the first attribute error met.
func (a *attrs) Err() error { return a.err }

func (a *attrs) Int(name string, def int64) int64 {
	v, err := a.Node.AttrInt(name, def)
	a.keep(err)
	return v
}

func (a *attrs) Float(name string, def float32) float32 {
	v, err := a.Node.AttrFloat(name, def)
	a.keep(err)
	return v
}

func (a *attrs) String(name string, def string) string {
	v, err := a.Node.AttrString(name, def)
	a.keep(err)
	return v
}

func (a *attrs) Ints(name string, def []int64) []int64 {
	v, err := a.Node.AttrInts(name, def)
	a.keep(err)
	return v
}

func (a *attrs) Floats(name string, def []float32) []float32 {
	v, err := a.Node.AttrFloats(name, def)
	a.keep(err)
	return v
}

func (a *attrs) Tensor(name string) *ir.Tensor {
	v, err := a.Node.AttrTensor(name)
	a.keep(err)
	return v
}

// Has reports whether the node carries the attribute.
func (a *attrs) Has(name string) bool { return a.Node.Attr(name) != nil }

// Errorf makes an error that names the node.
func (a *attrs) Errorf(format string, args ...any) error {
	return fmt.Errorf("%s: %s", a.Node, fmt.Sprintf(format, args...))
}

// Ctx is what a kernel sees besides its inputs.
type Ctx struct {
	attrs
}

// NewCtx makes a kernel context (tests call kernels through it).
func NewCtx(n *ir.Node, opset int64) *Ctx { return &Ctx{attrs{Node: n, Opset: opset}} }

// NumOutputs is the number of outputs the node declares.
func (c *Ctx) NumOutputs() int { return len(c.Node.Outputs) }

// InferCtx is what an inference function sees.
type InferCtx struct {
	attrs
	In []*ir.Type // static type of each input; nil when absent or unknown
	// Const holds the value of inputs known at build time (initializers,
	// Constant outputs, folded subgraphs); nil otherwise.
	Const []*ir.Tensor
	// Value holds the known, possibly symbolic, value of small 0-D/1-D
	// integer inputs, e.g. the output of Shape on a [batch,3,224,224] input
	// is [batch,3,224,224]. Inference of Reshape/Expand/etc uses it so that a
	// symbolic batch survives PyTorch's Shape→Gather→Concat→Reshape chains.
	Value []ir.Shape
	// Out must be set, one entry per node output (nil for absent outputs).
	Out []*ir.Type
	// OutValue may be set for ops that carry symbolic values (Shape, Gather,
	// Concat, Unsqueeze, Squeeze, Slice, Cast, ...).
	OutValue []ir.Shape
}

// NewInferCtx makes an inference context with Out/OutValue sized for the node.
func NewInferCtx(n *ir.Node, opset int64, in []*ir.Type, cst []*ir.Tensor, val []ir.Shape) *InferCtx {
	c := &InferCtx{attrs: attrs{Node: n, Opset: opset}, In: in, Const: cst, Value: val}
	c.Out = make([]*ir.Type, len(n.Outputs))
	c.OutValue = make([]ir.Shape, len(n.Outputs))
	return c
}

// Input returns input i's type, or an error naming the node when it is
// absent or its type is unknown.
func (c *InferCtx) Input(i int) (*ir.Type, error) {
	if i >= len(c.In) || c.In[i] == nil {
		return nil, c.Errorf("type of input %d is unknown", i)
	}
	return c.In[i], nil
}

// ConstInts returns the integer values of input i when known at build time.
func (c *InferCtx) ConstInts(i int) ([]int64, bool) {
	if i >= len(c.Const) || c.Const[i] == nil {
		return nil, false
	}
	return c.Const[i].Int64s(), true
}
