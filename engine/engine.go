package engine

import (
	"fmt"
	"runtime"

	"github.com/kilnml/kiln/ir"
)

// Engine is a plan bound to its kernels. It is immutable and may be shared
// by any number of contexts on any goroutines.
type Engine struct {
	plan    *Plan
	kernels []Kernel
	inByName,
	outByName map[string]int // binding index
	Warnings []string // e.g. tactics replaced because this CPU lacks an instruction set
}

// NewEngine recreates every step's kernel from the plan.
func NewEngine(p *Plan) (*Engine, error) {
	if err := p.Validate(); err != nil {
		return nil, &FormatError{Reason: "inconsistent plan: " + err.Error()}
	}
	e := &Engine{plan: p, inByName: map[string]int{}, outByName: map[string]int{}}
	for i, s := range p.Steps {
		dec, err := LookupKernel(s.Kernel)
		if err != nil {
			return nil, fmt.Errorf("step %d (%s): %w", i, s.Name, err)
		}
		w := make([]*ir.Tensor, len(s.Weights))
		for k, idx := range s.Weights {
			w[k] = p.Weights[idx]
		}
		k, err := dec(s.Params, w)
		if err != nil {
			return nil, fmt.Errorf("step %d (%s): kernel %s: %w", i, s.Name, s.Kernel, err)
		}
		if pw, ok := k.(interface{ PortabilityWarning() string }); ok {
			if msg := pw.PortabilityWarning(); msg != "" {
				e.Warnings = append(e.Warnings, fmt.Sprintf("layer %q: %s", s.Name, msg))
			}
		}
		e.kernels = append(e.kernels, k)
	}
	linkDevices(p, e.kernels) // device.go: accelerator steps pass tensors in device memory
	for i, b := range p.Inputs {
		e.inByName[b.Name] = i
	}
	for i, b := range p.Outputs {
		e.outByName[b.Name] = i
	}
	return e, nil
}

// Load reads a plan file and binds it.
func Load(path string) (*Engine, error) {
	p, err := ReadPlanFile(path)
	if err != nil {
		return nil, err
	}
	e, err := NewEngine(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return e, nil
}

// Plan returns the engine's plan (read-only).
func (e *Engine) Plan() *Plan { return e.plan }

// Inputs and Outputs describe the bindings.
func (e *Engine) Inputs() []Binding  { return e.plan.Inputs }
func (e *Engine) Outputs() []Binding { return e.plan.Outputs }

// NewContext makes an execution context using GOMAXPROCS threads.
func (e *Engine) NewContext() *Context {
	c := &Context{e: e, threads: runtime.GOMAXPROCS(0), profile: -1}
	n := len(e.plan.Values)
	c.views = make([]*ir.Tensor, n)
	c.dims = make([][]int64, n)
	for i, v := range e.plan.Values {
		if v.Weight >= 0 {
			c.views[i] = e.plan.Weights[v.Weight]
			c.dims[i] = c.views[i].Dims
		}
	}
	c.inputs = make([]*ir.Tensor, len(e.plan.Inputs))
	c.exec = &Exec{Threads: c.threads, Scratch: c.scratchBuf}
	return c
}
