package engine

import (
	"fmt"

	"github.com/kilnml/kiln/ir"
)

// Plan is a lowered program: what the builder produces and what Serialize
// writes. Everything a loader needs is here; nothing refers back to ONNX.
type Plan struct {
	Meta     Meta
	Values   []Value
	Steps    []Step
	Inputs   []Binding
	Outputs  []Binding
	Weights  []*ir.Tensor // constants, already packed for their kernels
	Profiles []Profile
}

// Meta is what a user needs to trust a plan.
type Meta struct {
	Kiln        string            `json:"kiln_version"`
	Created     string            `json:"created"`
	SourceSHA   string            `json:"source_sha256"`   // of the ONNX file
	SourceName  string            `json:"source_name"`     // file name, for reports
	Config      map[string]string `json:"config"`          // build flags as given
	CalibSHA    string            `json:"calib_sha256"`    // of the calibration cache used, if any
	CPUFeatures []string          `json:"cpu_features"`    // what the chosen tactics assume
	Backend     string            `json:"backend"`         // "cpu", "cuda"
	Notes       []string          `json:"notes,omitempty"` // build report lines worth keeping
}

// Value is one tensor of the program.
type Value struct {
	Name   string   `json:"name"`
	DType  ir.DType `json:"dtype"`
	Shape  ir.Shape `json:"shape"`  // as inferred at build time (symbolic dims kept)
	Weight int      `json:"weight"` // index into Plan.Weights, or -1
	Output bool     `json:"output,omitempty"`
}

// Step runs one kernel.
type Step struct {
	Name      string   `json:"name"`    // layer name; fused layers join their parts with " + "
	Members   []string `json:"members"` // original ONNX node names
	OpTypes   []string `json:"ops"`     // original op types, parallel to Members
	Kernel    string   `json:"kernel"`  // registered kernel id
	Tactic    string   `json:"tactic"`
	Precision string   `json:"precision"`
	Params    []byte   `json:"params"`
	Inputs    []int    `json:"inputs"`  // value indices; -1 for an absent optional input
	Outputs   []int    `json:"outputs"` // value indices
	Weights   []int    `json:"weights"` // weight indices handed to the kernel's decoder
	ShapeStep bool     `json:"shape_step,omitempty"`
}

// Binding is a named input or output of the engine.
type Binding struct {
	Name  string   `json:"name"`
	Value int      `json:"value"`
	DType ir.DType `json:"dtype"`
	Shape ir.Shape `json:"shape"`
}

// Profile is an optimization profile: the range of input shapes a context
// may use, and the activation memory layout planned at the maximum shapes.
type Profile struct {
	Min       map[string][]int64 `json:"min"`
	Opt       map[string][]int64 `json:"opt"`
	Max       map[string][]int64 `json:"max"`
	Offsets   []int64            `json:"offsets"` // per value: byte offset in the arena, -1 if not in it
	Sizes     []int64            `json:"sizes"`   // per value: bytes reserved at Max
	ArenaSize int64              `json:"arena_size"`
	NaiveSize int64              `json:"naive_size"` // sum of activation sizes without reuse, for reports
}

// Validate checks internal consistency: indices in range, bindings valid.
// Serialize and Deserialize call it; a builder bug or a corrupt file stops
// here with a reason instead of failing later.
func (p *Plan) Validate() error {
	nv := len(p.Values)
	for i, v := range p.Values {
		if v.Weight < -1 || v.Weight >= len(p.Weights) {
			return fmt.Errorf("value %d (%q): weight index %d out of range", i, v.Name, v.Weight)
		}
		if !v.DType.Valid() {
			return fmt.Errorf("value %d (%q): invalid dtype %d", i, v.Name, v.DType)
		}
	}
	for i, s := range p.Steps {
		for _, idx := range s.Inputs {
			if idx < -1 || idx >= nv {
				return fmt.Errorf("step %d (%q): input value %d out of range", i, s.Name, idx)
			}
		}
		for _, idx := range s.Outputs {
			if idx < 0 || idx >= nv {
				return fmt.Errorf("step %d (%q): output value %d out of range", i, s.Name, idx)
			}
		}
		for _, idx := range s.Weights {
			if idx < 0 || idx >= len(p.Weights) {
				return fmt.Errorf("step %d (%q): weight %d out of range", i, s.Name, idx)
			}
		}
	}
	for _, b := range append(append([]Binding{}, p.Inputs...), p.Outputs...) {
		if b.Value < 0 || b.Value >= nv {
			return fmt.Errorf("binding %q: value %d out of range", b.Name, b.Value)
		}
	}
	if len(p.Profiles) == 0 {
		return fmt.Errorf("plan has no optimization profile")
	}
	for k, pr := range p.Profiles {
		if len(pr.Offsets) != nv || len(pr.Sizes) != nv {
			return fmt.Errorf("profile %d: memory plan covers %d values, plan has %d", k, len(pr.Offsets), nv)
		}
		for i := range pr.Offsets {
			if pr.Offsets[i] >= 0 && (pr.Sizes[i] < 0 || pr.Offsets[i]+pr.Sizes[i] > pr.ArenaSize) {
				return fmt.Errorf("profile %d: value %d lies outside the arena", k, i)
			}
		}
		for _, b := range p.Inputs {
			mn, mx := pr.Min[b.Name], pr.Max[b.Name]
			if len(mn) != len(mx) || len(mn) != len(b.Shape) {
				return fmt.Errorf("profile %d: input %q: min/max shapes %v/%v do not match rank %d", k, b.Name, mn, mx, len(b.Shape))
			}
		}
	}
	return nil
}
