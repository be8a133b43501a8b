package ops

import (
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/kilnml/kiln/ir"
)

// Session runs one model with the reference kernels. It is safe to call
// Run from several goroutines at once: a Session holds no per-run state.
type Session struct {
	model   *ir.Model
	order   []*ir.Node
	kernels []*Op
	opsets  []int64
	inits   map[string]*ir.Tensor
	inputs  []*ir.ValueInfo // what a caller must feed
	lastUse map[string]int  // value -> index in order of its last reader
	outputs map[string]bool
	// Observe, when set, sees every value the moment it is computed (graph
	// inputs first). Calibration and per-layer debugging hang off this.
	Observe func(name string, t *ir.Tensor)
}

// NewSession verifies the model, orders its nodes and finds a kernel for
// every node. It fails with an *UnsupportedOpsError listing every op kiln
// cannot run, or with every structural problem the verifier found.
func NewSession(m *ir.Model) (*Session, error) {
	where := m.Path
	if where == "" {
		where = "model"
	}
	if err := m.Verify(); err != nil {
		return nil, fmt.Errorf("%s: invalid graph:\n%w", where, err)
	}
	if err := CheckSupported(m); err != nil {
		return nil, err
	}
	order, err := m.Graph.TopoSort()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	s := &Session{model: m, order: order, inits: m.Graph.InitializerMap(), inputs: m.Graph.RealInputs(),
		lastUse: map[string]int{}, outputs: map[string]bool{}}
	for i, n := range order {
		opset := m.Opset(n.Domain)
		op, err := Lookup(n.Domain, n.OpType, opset)
		if err != nil {
			return nil, err
		}
		s.kernels = append(s.kernels, op)
		s.opsets = append(s.opsets, opset)
		for _, in := range n.Inputs {
			s.lastUse[in] = i
		}
	}
	for _, o := range m.Graph.Outputs {
		s.outputs[o.Name] = true
	}
	return s, nil
}

// Model returns the session's model.
func (s *Session) Model() *ir.Model { return s.model }

// Inputs lists the values a caller must feed, in graph order.
func (s *Session) Inputs() []*ir.ValueInfo { return s.inputs }

// Run executes the graph and returns the graph outputs by name.
func (s *Session) Run(inputs map[string]*ir.Tensor) (map[string]*ir.Tensor, error) {
	return s.RunObserved(inputs, s.Observe)
}

// RunObserved is Run with an observer for this call only (nil for none), so
// that concurrent runs can each collect what they see.
func (s *Session) RunObserved(inputs map[string]*ir.Tensor, observe func(name string, t *ir.Tensor)) (map[string]*ir.Tensor, error) {
	vals := make(map[string]*ir.Tensor, len(s.inits)+len(inputs))
	for k, v := range s.inits {
		vals[k] = v
	}
	if err := s.bindInputs(inputs, vals, observe); err != nil {
		return nil, err
	}
	for i, n := range s.order {
		if err := s.runNode(i, n, vals, observe); err != nil {
			return nil, err
		}
		// Drop values no later node reads, so memory follows liveness.
		for _, in := range n.Inputs {
			if s.lastUse[in] == i && !s.outputs[in] && s.inits[in] == nil {
				if _, isInput := inputs[in]; !isInput {
					delete(vals, in)
				}
			}
		}
	}
	out := make(map[string]*ir.Tensor, len(s.model.Graph.Outputs))
	for _, o := range s.model.Graph.Outputs {
		t, ok := vals[o.Name]
		if !ok {
			return nil, fmt.Errorf("graph output %q was not computed", o.Name)
		}
		out[o.Name] = t
	}
	return out, nil
}

func (s *Session) bindInputs(inputs map[string]*ir.Tensor, vals map[string]*ir.Tensor, observe func(string, *ir.Tensor)) error {
	known := map[string]bool{}
	var errs []error
	for _, in := range s.inputs {
		known[in.Name] = true
		t, ok := inputs[in.Name]
		if !ok || t == nil {
			errs = append(errs, fmt.Errorf("input %q is missing", in.Name))
			continue
		}
		if err := CheckInput(in, t); err != nil {
			errs = append(errs, err)
			continue
		}
		vals[in.Name] = t
		if observe != nil {
			observe(in.Name, t)
		}
	}
	for name, t := range inputs {
		if known[name] {
			continue
		}
		if _, isInit := s.inits[name]; isInit {
			// Feeding an initializer overrides it, as ONNX Runtime allows.
			if err := t.Check(); err != nil {
				errs = append(errs, fmt.Errorf("input %q: %w", name, err))
				continue
			}
			vals[name] = t
			continue
		}
		errs = append(errs, fmt.Errorf("%q is not an input of the model", name))
	}
	return errors.Join(errs...)
}

// CheckInput compares a fed tensor with the declared type of a graph input:
// dtype, rank and every known dimension (symbolic dims match anything).
func CheckInput(vi *ir.ValueInfo, t *ir.Tensor) error {
	if err := t.Check(); err != nil {
		return fmt.Errorf("input %q: %w", vi.Name, err)
	}
	ty := vi.Type
	if ty == nil || ty.Kind != ir.KindTensor {
		return nil
	}
	if ty.DType != ir.Undefined && ty.DType != t.DType {
		return fmt.Errorf("input %q: got %s, the model wants %s", vi.Name, t.DType, ty.DType)
	}
	if !ty.HasShape {
		return nil
	}
	if len(ty.Shape) != len(t.Dims) {
		return fmt.Errorf("input %q: got shape %v (rank %d), the model wants %v", vi.Name, t.Dims, len(t.Dims), ty.Shape)
	}
	for i, d := range ty.Shape {
		if d.Known() && d.Value != t.Dims[i] {
			return fmt.Errorf("input %q: got shape %v, the model wants %v (dimension %d differs)", vi.Name, t.Dims, ty.Shape, i)
		}
	}
	return nil
}

func (s *Session) runNode(i int, n *ir.Node, vals map[string]*ir.Tensor, observe func(string, *ir.Tensor)) (err error) {
	in := make([]*ir.Tensor, len(n.Inputs))
	for k, name := range n.Inputs {
		if name == "" {
			continue
		}
		t, ok := vals[name]
		if !ok {
			return fmt.Errorf("%s: input %q has no value", n, name)
		}
		in[k] = t
	}
	c := NewCtx(n, s.opsets[i])
	outs, err := runKernel(s.kernels[i].Run, c, in)
	if err != nil {
		return err
	}
	for k, name := range n.Outputs {
		if name == "" {
			continue
		}
		if k >= len(outs) || outs[k] == nil {
			return fmt.Errorf("%s: kernel produced no value for output %q", n, name)
		}
		t := outs[k]
		if err := t.Check(); err != nil {
			return fmt.Errorf("%s: kernel bug: output %q: %w", n, name, err)
		}
		if t.Name != name {
			// Kernels may return their inputs (Identity): name a shallow copy.
			c := *t
			c.Name = name
			t = &c
		}
		vals[name] = t
		if observe != nil {
			observe(name, t)
		}
	}
	return nil
}

// runKernel calls a kernel, turning attribute errors and panics into errors
// that name the node: a kernel bug must not take a server down.
func runKernel(k Kernel, c *Ctx, in []*ir.Tensor) (outs []*ir.Tensor, err error) {
	defer func() {
		if r := recover(); r != nil {
			outs, err = nil, fmt.Errorf("%s: internal error in kernel: %v\n%s", c.Node, r, debug.Stack())
		}
	}()
	outs, err = k(c, in)
	if aerr := c.Err(); aerr != nil {
		return nil, aerr
	}
	if err != nil {
		return nil, err
	}
	return outs, nil
}

// Run is NewSession + Run for one-off use.
func Run(m *ir.Model, inputs map[string]*ir.Tensor) (map[string]*ir.Tensor, error) {
	s, err := NewSession(m)
	if err != nil {
		return nil, err
	}
	return s.Run(inputs)
}
