package builder

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	// The fallback backend is always there; fast backends register when
	// imported (the kiln command links backend/cpu; a Go program building
	// engines imports it too, as database/sql programs import their driver).
	_ "github.com/kilnml/kiln/backend/ref"
	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
	"github.com/kilnml/kiln/quant/smooth"
	"github.com/kilnml/kiln/version"
)

// Report describes what the builder did, layer by layer.
type Report struct {
	Layers   []LayerReport
	Fusions  []string
	Warnings []string
	// Activation memory of profile 0 at its maximum shapes.
	ArenaBytes, NaiveBytes int64
	// SmoothQuant: the activations smoothed and α (Config.SmoothQuant).
	Smoothed         []smooth.Site
	SmoothQuantAlpha float64
	// FP8Formats: the per-tensor format choice of an FP8 build (E4M3, E5M2
	// or FP16 for each calibrated activation), with the reason.
	FP8Formats []FP8Choice
}

// LayerReport is one line of the build report (and of `kiln inspect PLAN`).
type LayerReport struct {
	Name      string
	Members   []string
	Precision string
	Kernel    string
	Tactic    string
	Inputs    []string // "name dtype[shape]"
	Outputs   []string
	ShapeStep bool
}

type build struct {
	cfg    Config
	m      *ir.Model
	rep    *Report
	inf    *ops.Inference
	plan   *engine.Plan
	valIdx map[string]int
	wIdx   map[string]int // weight name -> index in plan.Weights
	timing *timingCache   // tactic choices of this build (tactics.go)
}

// Build optimizes the model and lowers it to a plan. source is the model
// file's bytes, hashed into the plan's metadata (nil is allowed).
func Build(m *ir.Model, source []byte, cfg Config) (*engine.Plan, *Report, error) {
	b := &build{cfg: cfg, m: m.Clone(), rep: &Report{}, valIdx: map[string]int{}, wIdx: map[string]int{}}
	b.plan = &engine.Plan{}
	where := m.Path
	if where == "" {
		where = "model"
	}
	if err := b.m.Verify(); err != nil {
		return nil, nil, fmt.Errorf("%s: invalid graph:\n%w", where, err)
	}
	if err := ops.CheckSupported(b.m); err != nil {
		return nil, nil, err
	}
	profiles, err := b.resolveProfiles()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", where, err)
	}
	if err := b.optimize(); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", where, err)
	}
	if err := b.quantize(); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", where, err)
	}
	if err := b.toFP16(); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", where, err)
	}
	if err := b.fusePools(); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", where, err)
	}
	inf, err := ops.Infer(b.m, ops.InferOptions{FoldLimit: 1 << 24})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: shape inference: %w", where, err)
	}
	b.inf = inf
	b.rep.Warnings = append(b.rep.Warnings, inf.Warnings...)
	if err := b.lower(); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", where, err)
	}
	b.plan.Profiles = profiles
	if err := engine.PlanMemory(b.plan); err != nil {
		return nil, nil, fmt.Errorf("%s: memory planning: %w", where, err)
	}
	b.rep.ArenaBytes, b.rep.NaiveBytes = b.plan.Profiles[0].ArenaSize, b.plan.Profiles[0].NaiveSize
	b.meta(source)
	return b.plan, b.rep, nil
}

// optimize runs the graph passes (see passes.go).
func (b *build) optimize() error {
	for _, p := range Passes {
		if err := p.Run(b.m, &b.cfg, b.rep); err != nil {
			return fmt.Errorf("pass %s: %w", p.Name, err)
		}
	}
	return nil
}

// lower turns every non-constant node into a step.
func (b *build) lower() error {
	g := b.m.Graph
	order, err := g.TopoSort()
	if err != nil {
		return err
	}
	for _, in := range g.RealInputs() {
		t := b.inf.Types[in.Name]
		if t == nil || t.Kind != ir.KindTensor {
			return fmt.Errorf("input %q: engines take tensor inputs with a known element type", in.Name)
		}
		idx := b.addValue(in.Name, t, -1)
		b.plan.Inputs = append(b.plan.Inputs, engine.Binding{Name: in.Name, Value: idx, DType: t.DType, Shape: t.Shape})
	}
	var errs []error
	for _, n := range order {
		if b.isConstNode(n) {
			continue
		}
		if err := b.lowerNode(n); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, o := range g.Outputs {
		idx, ok := b.valIdx[o.Name]
		if !ok || b.plan.Values[idx].Weight >= 0 || b.isInput(o.Name) {
			// The output is a constant or an input: copy it with a step so
			// that it has a buffer of its own.
			copyName := o.Name + ".copy"
			n := &ir.Node{Name: copyName, OpType: "Identity", Inputs: []string{o.Name}, Outputs: []string{copyName}}
			b.inf.Types[copyName] = b.inf.Types[o.Name]
			if err := b.lowerNode(n); err != nil {
				return err
			}
			idx = b.valIdx[copyName]
		}
		b.plan.Values[idx].Output = true
		v := b.plan.Values[idx]
		b.plan.Outputs = append(b.plan.Outputs, engine.Binding{Name: o.Name, Value: idx, DType: v.DType, Shape: v.Shape})
	}
	b.markShapeSteps()
	b.warnHostLayers()
	return nil
}

func (b *build) isInput(name string) bool {
	for _, in := range b.plan.Inputs {
		if in.Name == name {
			return true
		}
	}
	return false
}

// isConstNode: every output is known at build time (folded by inference).
func (b *build) isConstNode(n *ir.Node) bool {
	for _, o := range n.Outputs {
		if o != "" && b.inf.Consts[o] == nil {
			return false
		}
	}
	return true
}

func (b *build) addValue(name string, t *ir.Type, weight int) int {
	v := engine.Value{Name: name, Weight: weight}
	if t != nil {
		v.DType, v.Shape = t.DType, t.Shape
	}
	b.plan.Values = append(b.plan.Values, v)
	b.valIdx[name] = len(b.plan.Values) - 1
	return len(b.plan.Values) - 1
}

// valueFor returns the value index of a node input, creating weight values
// for constants on first use.
func (b *build) valueFor(name string) (int, error) {
	if name == "" {
		return -1, nil
	}
	if idx, ok := b.valIdx[name]; ok {
		return idx, nil
	}
	if c := b.inf.Consts[name]; c != nil {
		w := c.Clone()
		w.Name = name
		b.plan.Weights = append(b.plan.Weights, w)
		return b.addValue(name, c.Type(), len(b.plan.Weights)-1), nil
	}
	return 0, fmt.Errorf("value %q is used before it is computed", name)
}

func (b *build) lowerNode(n *ir.Node) error {
	opset := b.m.Opset(n.Domain)
	l := &engine.Layer{Node: n, Opset: opset, Precision: b.precisionOf(n)}
	for _, in := range n.Inputs {
		l.In = append(l.In, b.inf.Types[in])
		l.Const = append(l.Const, b.inf.Consts[in])
	}
	for _, o := range n.Outputs {
		l.Out = append(l.Out, b.inf.Types[o])
	}
	tac, low, err := b.chooseTactic(l)
	if err != nil {
		return err
	}
	step := engine.Step{Name: layerName(n), Kernel: low.Kernel, Tactic: tac, Precision: l.Precision.String(), Params: low.Params}
	step.Members, step.OpTypes = members(n)
	use := low.Inputs
	if use == nil {
		for i := range n.Inputs {
			use = append(use, i)
		}
	}
	for _, i := range use {
		idx, err := b.valueFor(n.Inputs[i])
		if err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
		step.Inputs = append(step.Inputs, idx)
	}
	for _, w := range low.Weights {
		b.plan.Weights = append(b.plan.Weights, w)
		step.Weights = append(step.Weights, len(b.plan.Weights)-1)
	}
	for k, o := range n.Outputs {
		if o == "" {
			o = fmt.Sprintf("%s.unused%d", layerName(n), k)
		}
		step.Outputs = append(step.Outputs, b.addValue(o, l.Out[k], -1))
	}
	b.plan.Steps = append(b.plan.Steps, step)
	rep := LayerReport{Name: step.Name, Members: step.Members, Precision: step.Precision, Kernel: step.Kernel, Tactic: step.Tactic}
	for i, in := range n.Inputs {
		if in != "" {
			rep.Inputs = append(rep.Inputs, in+" "+l.In[i].String())
		}
	}
	for k, o := range n.Outputs {
		if o != "" {
			rep.Outputs = append(rep.Outputs, o+" "+l.Out[k].String())
		}
	}
	b.rep.Layers = append(b.rep.Layers, rep)
	return nil
}

// chooseTactic asks every backend for tactics and keeps the first that
// lowers (timing comes from tactics.go when several compete).
func (b *build) chooseTactic(l *engine.Layer) (string, *engine.Lowered, error) {
	var cands []engine.Tactic
	var names []string
	for _, bk := range engine.Backends() {
		for _, t := range bk.Tactics(l) {
			cands = append(cands, t)
			names = append(names, bk.Name()+"."+t.Name())
		}
	}
	if len(cands) == 0 {
		return "", nil, fmt.Errorf("%s: no backend implements it in %s", l.Node, l.Precision)
	}
	if len(cands) > 1 && !b.cfg.Deterministic {
		if name, low, ok, err := b.timeTactics(l, cands, names); ok || err != nil {
			return name, low, err
		}
	}
	var errs []error
	for i, t := range cands {
		low, err := t.Lower(l)
		if err != nil {
			errs = append(errs, fmt.Errorf("tactic %s: %w", names[i], err))
			continue
		}
		return names[i], low, nil
	}
	return "", nil, fmt.Errorf("%s: every tactic failed: %w", l.Node, errors.Join(errs...))
}

// markShapeSteps flags steps that compute small integer tensors from
// shapes and constants only, so the runtime runs them in its shape pass.
func (b *build) markShapeSteps() {
	p := b.plan
	known := map[int]bool{}
	for i, v := range p.Values {
		if v.Weight >= 0 {
			known[i] = true
		}
	}
	for si := range p.Steps {
		s := &p.Steps[si]
		ok := true
		for _, o := range s.Outputs {
			if dt := p.Values[o].DType; !(dt.IsInteger() || dt == ir.Bool) {
				ok = false
			}
		}
		dimsOnly := len(s.OpTypes) == 1 && (s.OpTypes[0] == "Shape" || s.OpTypes[0] == "Size")
		for k, in := range s.Inputs {
			if in < 0 || known[in] || (dimsOnly && k == 0) {
				continue
			}
			ok = false
		}
		if ok {
			s.ShapeStep = true
			for _, o := range s.Outputs {
				known[o] = true
			}
		}
	}
}

// layerName is the node's name, or its first output when unnamed.
func layerName(n *ir.Node) string {
	if n.Name != "" {
		return n.Name
	}
	for _, o := range n.Outputs {
		if o != "" {
			return n.OpType + "(" + o + ")"
		}
	}
	return n.OpType
}

// members returns the original node names and op types a (possibly fused)
// node stands for; fused nodes carry them in their "kiln_members" and
// "kiln_member_ops" attributes.
func members(n *ir.Node) ([]string, []string) {
	if a := n.Attr("kiln_members"); a != nil {
		var names, opsList []string
		for _, s := range a.Strings {
			names = append(names, string(s))
		}
		if o := n.Attr("kiln_member_ops"); o != nil {
			for _, s := range o.Strings {
				opsList = append(opsList, string(s))
			}
		}
		return names, opsList
	}
	return []string{layerName(n)}, []string{n.OpType}
}

// resolveProfiles checks the configured profiles against the model's inputs
// or derives one (symbolic dims set to 1, with a warning).
func (b *build) resolveProfiles() ([]engine.Profile, error) {
	inputs := b.m.Graph.RealInputs()
	profs := b.cfg.Profiles
	if len(profs) == 0 {
		profs = []Profile{{}}
	}
	var out []engine.Profile
	for k, pr := range profs {
		ep := engine.Profile{Min: map[string][]int64{}, Opt: map[string][]int64{}, Max: map[string][]int64{}}
		for name := range pr {
			found := false
			for _, in := range inputs {
				found = found || in.Name == name
			}
			if !found {
				return nil, fmt.Errorf("profile %d names %q, which is not an input of the model", k, name)
			}
		}
		for _, in := range inputs {
			if in.Type == nil || !in.Type.HasShape {
				return nil, fmt.Errorf("input %q has no declared shape; give one with --shapes", in.Name)
			}
			decl := in.Type.Shape
			r, given := pr[in.Name]
			if !given {
				dims := make([]int64, len(decl))
				var dyn []string
				for i, d := range decl {
					if d.Known() {
						dims[i] = d.Value
					} else {
						dims[i] = 1
						dyn = append(dyn, d.String())
					}
				}
				if len(dyn) > 0 {
					b.rep.Warnings = append(b.rep.Warnings, fmt.Sprintf("input %q has dynamic dimensions %s but no shapes were given: building for %v (use --min-shapes/--opt-shapes/--max-shapes)",
						in.Name, strings.Join(dyn, ","), dims))
				}
				r = ShapeRange{dims, dims, dims}
			}
			for _, dims := range [][]int64{r.Min, r.Opt, r.Max} {
				if len(dims) != len(decl) {
					return nil, fmt.Errorf("profile %d: input %q has rank %d, shape %v given", k, in.Name, len(decl), dims)
				}
				for i, d := range decl {
					if d.Known() && dims[i] != d.Value {
						return nil, fmt.Errorf("profile %d: input %q: dimension %d is fixed at %d by the model, %v given", k, in.Name, i, d.Value, dims)
					}
				}
			}
			ep.Min[in.Name], ep.Opt[in.Name], ep.Max[in.Name] = r.Min, r.Opt, r.Max
		}
		out = append(out, ep)
	}
	return out, nil
}

func (b *build) meta(source []byte) {
	m := &b.plan.Meta
	m.Kiln = version.Version
	m.Created = time.Now().UTC().Format(time.RFC3339)
	if source != nil {
		sum := sha256.Sum256(source)
		m.SourceSHA = hex.EncodeToString(sum[:])
	}
	if b.m.Path != "" {
		m.SourceName = b.m.Path
	}
	m.Backend = "cpu"
	m.Config = map[string]string{}
	flags := []string{}
	for name, on := range map[string]bool{"fp16": b.cfg.FP16, "bf16": b.cfg.BF16, "int8": b.cfg.INT8, "fp8": b.cfg.FP8, "best": b.cfg.Best} {
		if on {
			flags = append(flags, name)
		}
	}
	sort.Strings(flags)
	m.Config["precisions"] = strings.Join(append([]string{"fp32"}, flags...), ",")
	m.Config["constraints"] = [...]string{"none", "prefer", "obey"}[b.cfg.Constraints]
	if b.rep.SmoothQuantAlpha > 0 {
		m.Config["smoothquant_alpha"] = fmt.Sprint(b.rep.SmoothQuantAlpha)
	}
	m.Notes = append(m.Notes, b.rep.Warnings...)
}

// precisionOf is the arithmetic a node of the final graph runs in.
func (b *build) precisionOf(n *ir.Node) engine.Precision {
	if n.Domain == "kiln" && n.OpType == "DynQMatMul" {
		return engine.INT8
	}
	if n.Domain == "kiln" && len(n.OpType) > 1 && n.OpType[0] == 'Q' {
		if b.isFP8(n) {
			return engine.FP8
		}
		return engine.INT8
	}
	for _, in := range n.Inputs {
		if t := b.inf.Types[in]; t != nil && t.DType == ir.Float16 {
			return engine.FP16
		} else if t != nil && t.DType == ir.BFloat16 {
			return engine.BF16
		}
	}
	return engine.FP32
}
