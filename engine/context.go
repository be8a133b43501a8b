package engine

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/kilnml/kiln/ir"
)

// Context executes an engine. A context is used by one goroutine at a
// time; make one per concurrent caller. After the first Execute with a
// given set of input shapes, Execute allocates nothing.
type Context struct {
	e       *Engine
	threads int
	profile int // -1 until chosen

	inputs  []*ir.Tensor // bound inputs, by binding index
	dims    [][]int64    // per value, for the current shapes
	views   []*ir.Tensor // per value: weights, inputs, arena views, shape values
	arena   []byte
	scratch []byte
	inBuf   []*ir.Tensor
	outBuf  []*ir.Tensor
	exec    *Exec
	shapeOK bool // dims and views match the bound inputs' shapes

	profiler Profiler // per-step timing; nil when off (see profile.go)
}

// SetThreads sets the worker goroutines kernels may use (>= 1).
func (c *Context) SetThreads(n int) {
	if n < 1 {
		n = 1
	}
	c.threads = n
	c.exec.Threads = n
}

// SetProfile selects an optimization profile; by default the first one
// whose range contains the bound input shapes is used.
func (c *Context) SetProfile(i int) error {
	if i < 0 || i >= len(c.e.plan.Profiles) {
		return fmt.Errorf("profile %d does not exist (the engine has %d)", i, len(c.e.plan.Profiles))
	}
	if c.profile != i {
		c.profile, c.shapeOK = i, false
		c.arena = nil
	}
	return nil
}

// SetInput binds a tensor to a named input. The tensor is read in place
// during Execute (not copied), so it must not change until Execute returns.
func (c *Context) SetInput(name string, t *ir.Tensor) error {
	i, ok := c.e.inByName[name]
	if !ok {
		return fmt.Errorf("%q is not an input of the engine (inputs: %s)", name, bindingNames(c.e.plan.Inputs))
	}
	b := c.e.plan.Inputs[i]
	if t.DType != b.DType {
		return fmt.Errorf("input %q: got %s, the engine wants %s", name, t.DType, b.DType)
	}
	if err := t.Check(); err != nil {
		return fmt.Errorf("input %q: %w", name, err)
	}
	if len(t.Dims) != len(b.Shape) {
		return fmt.Errorf("input %q: got shape %v (rank %d), the engine wants %v", name, t.Dims, len(t.Dims), b.Shape)
	}
	if prev := c.inputs[i]; prev == nil || !slices.Equal(prev.Dims, t.Dims) {
		c.shapeOK = false
	}
	c.inputs[i] = t
	return nil
}

// Output returns the tensor of a named output after Execute. It is a view
// into the context's memory, valid until the next Execute.
func (c *Context) Output(name string) (*ir.Tensor, error) {
	i, ok := c.e.outByName[name]
	if !ok {
		return nil, fmt.Errorf("%q is not an output of the engine (outputs: %s)", name, bindingNames(c.e.plan.Outputs))
	}
	v := c.views[c.e.plan.Outputs[i].Value]
	if v == nil {
		return nil, fmt.Errorf("output %q: Execute has not run", name)
	}
	return v, nil
}

// Execute runs the program on the bound inputs.
func (c *Context) Execute() error {
	for i, t := range c.inputs {
		if t == nil {
			return fmt.Errorf("input %q is not bound", c.e.plan.Inputs[i].Name)
		}
	}
	if !c.shapeOK {
		c.exec.Layout++ // also when prepare fails: views may have moved
		if err := c.prepare(); err != nil {
			return err
		}
	}
	c.exec.Execution++
	for i, b := range c.e.plan.Inputs {
		v := c.views[b.Value]
		v.Data = c.inputs[i].Data
	}
	for si := range c.e.plan.Steps {
		s := &c.e.plan.Steps[si]
		if s.ShapeStep {
			continue // computed by the shape pass
		}
		c.inBuf, c.outBuf = c.stepTensors(s, c.inBuf[:0], c.outBuf[:0])
		var t0 time.Time
		if c.profiler != nil {
			t0 = time.Now()
		}
		if err := c.e.kernels[si].Run(c.exec, c.inBuf, c.outBuf); err != nil {
			return fmt.Errorf("layer %q: %w", s.Name, err)
		}
		if c.profiler != nil {
			c.profiler.StepDone(si, time.Since(t0))
		}
	}
	return nil
}

// Run binds inputs by name, executes and returns the outputs by name (a
// convenience that allocates the result map; use SetInput/Execute/Output
// for allocation-free serving).
func (c *Context) Run(inputs map[string]*ir.Tensor) (map[string]*ir.Tensor, error) {
	var errs []error
	for name, t := range inputs {
		if err := c.SetInput(name, t); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := c.Execute(); err != nil {
		return nil, err
	}
	out := make(map[string]*ir.Tensor, len(c.e.plan.Outputs))
	for _, b := range c.e.plan.Outputs {
		out[b.Name] = c.views[b.Value]
	}
	return out, nil
}

func (c *Context) stepTensors(s *Step, in, out []*ir.Tensor) ([]*ir.Tensor, []*ir.Tensor) {
	for _, idx := range s.Inputs {
		if idx < 0 {
			in = append(in, nil)
		} else {
			in = append(in, c.views[idx])
		}
	}
	for _, idx := range s.Outputs {
		out = append(out, c.views[idx])
	}
	return in, out
}

func (c *Context) scratchBuf(n int) []byte {
	if cap(c.scratch) < n {
		c.scratch = ir.AlignedBytes(int64(n))
	}
	return c.scratch[:n]
}

func bindingNames(bs []Binding) string {
	var s []string
	for _, b := range bs {
		s = append(s, b.Name)
	}
	return fmt.Sprint(s)
}
