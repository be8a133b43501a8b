package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
)

// PlanGraph is a graph holding only the engine's bindings as inputs and
// outputs, so that LoadInputs, WriteOutputs and ReadExpected serve plans as
// they serve ONNX models.
func PlanGraph(p *engine.Plan) *ir.Graph {
	g := &ir.Graph{}
	for _, b := range p.Inputs {
		g.Inputs = append(g.Inputs, &ir.ValueInfo{Name: b.Name, Type: ir.TensorType(b.DType, b.Shape)})
	}
	for _, b := range p.Outputs {
		g.Outputs = append(g.Outputs, &ir.ValueInfo{Name: b.Name, Type: ir.TensorType(b.DType, b.Shape)})
	}
	return g
}

// PlanReport describes an engine plan (kiln inspect PLAN).
type PlanReport struct {
	Kind     string        `json:"kind"` // "plan"
	Path     string        `json:"path"`
	Size     int64         `json:"file_bytes"`
	Meta     engine.Meta   `json:"meta"`
	Inputs   []Value       `json:"inputs"`
	Outputs  []Value       `json:"outputs"`
	Profiles []PlanProfile `json:"profiles"`
	Steps    []PlanStep    `json:"steps"`
	Weights  int           `json:"weights"`
	// WeightBytes is the size of the packed weights.
	WeightBytes int64 `json:"weight_bytes"`
	// LoadWarnings are what loading the plan on this machine reports
	// (tactics replaced by portable ones); LoadError why it cannot run here.
	LoadWarnings []string `json:"load_warnings"`
	LoadError    string   `json:"load_error,omitempty"`
}

// PlanProfile is one optimization profile.
type PlanProfile struct {
	Inputs     []ProfileInput `json:"inputs"`
	ArenaBytes int64          `json:"arena_bytes"`
	NaiveBytes int64          `json:"naive_bytes"`
}

// ProfileInput is an input's shape range in a profile.
type ProfileInput struct {
	Name string  `json:"name"`
	Min  []int64 `json:"min"`
	Opt  []int64 `json:"opt"`
	Max  []int64 `json:"max"`
}

// PlanStep is one layer of the engine.
type PlanStep struct {
	Name      string   `json:"name"`
	Members   []string `json:"members"`
	Ops       []string `json:"ops"`
	Precision string   `json:"precision"`
	Kernel    string   `json:"kernel"`
	Tactic    string   `json:"tactic"`
	ShapeStep bool     `json:"shape_step"`
	Inputs    []Value  `json:"inputs"`
	Outputs   []Value  `json:"outputs"`
}

// InspectPlan builds the report of a plan read from path (size: the file's
// bytes); loadWarnings/loadErr come from binding it to kernels.
func InspectPlan(path string, size int64, p *engine.Plan, loadWarnings []string, loadErr error) *PlanReport {
	r := &PlanReport{Kind: "plan", Path: path, Size: size, Meta: p.Meta, Inputs: []Value{}, Outputs: []Value{},
		Profiles: []PlanProfile{}, Steps: []PlanStep{}, Weights: len(p.Weights), LoadWarnings: append([]string{}, loadWarnings...)}
	if r.Meta.Config == nil {
		r.Meta.Config = map[string]string{}
	}
	if r.Meta.CPUFeatures == nil {
		r.Meta.CPUFeatures = []string{}
	}
	if loadErr != nil {
		r.LoadError = loadErr.Error()
	}
	for _, w := range p.Weights {
		r.WeightBytes += int64(len(w.Data))
	}
	for _, b := range p.Inputs {
		r.Inputs = append(r.Inputs, valueOf(b.Name, ir.TensorType(b.DType, b.Shape)))
	}
	for _, b := range p.Outputs {
		r.Outputs = append(r.Outputs, valueOf(b.Name, ir.TensorType(b.DType, b.Shape)))
	}
	for _, pr := range p.Profiles {
		pp := PlanProfile{Inputs: []ProfileInput{}, ArenaBytes: pr.ArenaSize, NaiveBytes: pr.NaiveSize}
		for _, b := range p.Inputs {
			pp.Inputs = append(pp.Inputs, ProfileInput{Name: b.Name, Min: pr.Min[b.Name], Opt: pr.Opt[b.Name], Max: pr.Max[b.Name]})
		}
		r.Profiles = append(r.Profiles, pp)
	}
	value := func(idx int) Value {
		if idx < 0 {
			return Value{Name: "", DType: "-", Type: "(absent)"}
		}
		v := p.Values[idx]
		return valueOf(v.Name, ir.TensorType(v.DType, v.Shape))
	}
	for _, s := range p.Steps {
		ps := PlanStep{Name: s.Name, Members: nonNil(s.Members), Ops: nonNil(s.OpTypes), Precision: s.Precision,
			Kernel: s.Kernel, Tactic: s.Tactic, ShapeStep: s.ShapeStep, Inputs: []Value{}, Outputs: []Value{}}
		for _, idx := range s.Inputs {
			ps.Inputs = append(ps.Inputs, value(idx))
		}
		for _, idx := range s.Outputs {
			ps.Outputs = append(ps.Outputs, value(idx))
		}
		r.Steps = append(r.Steps, ps)
	}
	return r
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// WriteText prints the plan report for people.
func (r *PlanReport) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	p := ew.printf
	m := r.Meta
	p("Plan:        %s (%s)\n", r.Path, HumanBytes(r.Size))
	p("Built by:    kiln %s, %s\n", orDash(m.Kiln), orDash(m.Created))
	p("Source:      %s (sha256 %s)\n", orDash(m.SourceName), orDash(m.SourceSHA))
	var keys []string
	for k := range m.Config {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var cfg []string
	for _, k := range keys {
		cfg = append(cfg, k+"="+m.Config[k])
	}
	p("Config:      %s\n", orDash(strings.Join(cfg, ", ")))
	if m.CalibSHA != "" {
		p("Calibration: cache sha256 %s\n", m.CalibSHA)
	}
	p("Backend:     %s\n", orDash(m.Backend))
	p("CPU features: %s\n", orDash(strings.Join(m.CPUFeatures, " ")))
	p("Weights:     %d tensors, %s\n", r.Weights, HumanBytes(r.WeightBytes))
	bindings := func(title string, vs []Value) {
		p("\n%s (%d):\n", title, len(vs))
		tw := tabwriter.NewWriter(ew, 2, 4, 2, ' ', 0)
		for _, v := range vs {
			fmt.Fprintf(tw, "  %s\t%s\n", v.Name, shapeText(v))
		}
		tw.Flush()
	}
	bindings("Inputs", r.Inputs)
	bindings("Outputs", r.Outputs)
	p("\nProfiles (%d):\n", len(r.Profiles))
	for k, pr := range r.Profiles {
		saved := ""
		if pr.NaiveBytes > 0 {
			saved = fmt.Sprintf(", %.0f%% saved by reuse", 100*float64(pr.NaiveBytes-pr.ArenaBytes)/float64(pr.NaiveBytes))
		}
		p("  %d: activation arena %s (naive sum %s%s)\n", k, HumanBytes(pr.ArenaBytes), HumanBytes(pr.NaiveBytes), saved)
		for _, in := range pr.Inputs {
			p("     %s: min %s, opt %s, max %s\n", in.Name, dimsText(in.Min), dimsText(in.Opt), dimsText(in.Max))
		}
	}
	p("\nLayers (%d):\n", len(r.Steps))
	for i, s := range r.Steps {
		shape := ""
		if s.ShapeStep {
			shape = ", shape step"
		}
		p("  [%d] %s\n", i, s.Name)
		if len(s.Members) > 1 {
			var ms []string
			for k, mb := range s.Members {
				if k < len(s.Ops) {
					mb += " (" + s.Ops[k] + ")"
				}
				ms = append(ms, mb)
			}
			p("      fused:     %s\n", strings.Join(ms, " + "))
		} else if len(s.Ops) == 1 {
			p("      op:        %s\n", s.Ops[0])
		}
		p("      precision: %s, kernel %s, tactic %s%s\n", s.Precision, s.Kernel, orDash(s.Tactic), shape)
		for _, v := range s.Inputs {
			p("      in:        %s %s\n", v.Name, shapeText(v))
		}
		for _, v := range s.Outputs {
			p("      out:       %s %s\n", v.Name, shapeText(v))
		}
	}
	if len(m.Notes) > 0 {
		p("\nBuild notes:\n")
		for _, n := range m.Notes {
			p("  %s\n", n)
		}
	}
	if len(r.LoadWarnings) > 0 {
		p("\nWarnings when loading here:\n")
		for _, n := range r.LoadWarnings {
			p("  %s\n", n)
		}
	}
	if r.LoadError != "" {
		p("\nThis plan cannot run here: %s\n", r.LoadError)
	}
	return ew.err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func dimsText(d []int64) string {
	if d == nil {
		return "-"
	}
	if len(d) == 0 {
		return "scalar"
	}
	s := make([]string, len(d))
	for i, x := range d {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, "x")
}

// UnmarshalJSON reads what MarshalJSON writes: a number, a symbol or null.
func (d *Dim) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch x := v.(type) {
	case nil:
		d.Dim = ir.Dim{Value: -1}
	case float64:
		d.Dim = ir.D(int64(x))
	case string:
		d.Dim = ir.Sym(x)
	default:
		return fmt.Errorf("dimension %s is not a number, a name or null", b)
	}
	return nil
}
