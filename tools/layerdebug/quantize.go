package layerdebug

import (
	"fmt"
	"sort"

	"github.com/kilnml/kiln/builder"
	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
	"github.com/kilnml/kiln/quant/calib"
	"github.com/kilnml/kiln/quant/qdq"
)

// Setting says how the quantized layers are quantized.
type Setting struct {
	DType ir.DType // ir.Int8 (default) or ir.Float8E4M3FN
	// Harder settings, for experiments and for models that need them
	// studied: one weight scale per tensor, fewer weight bits (int4 range
	// in int8 storage).
	PerTensorWeights bool
	WeightBits       int
	// Amax per activation tensor (from Calibrate).
	Ranges map[string]float64
}

// explicit reports whether the setting needs Q/DQ written before the build
// (the builder's implicit quantization is per-channel with full-width
// weights).
func (s Setting) explicit() bool {
	return s.PerTensorWeights || (s.WeightBits != 0 && s.WeightBits != 8)
}

// Precision is the engine precision of quantized layers.
func (s Setting) Precision() engine.Precision {
	if s.DType == ir.Float8E4M3FN {
		return engine.FP8
	}
	return engine.INT8
}

// Calibrate collects activation statistics of m over data and computes
// each tensor's amax with algo.
func Calibrate(m *ir.Model, data calib.Stream, algo calib.Algorithm, maxBatches int) (*calib.Stats, map[string]float64, error) {
	sess, err := ops.NewSession(m)
	if err != nil {
		return nil, nil, err
	}
	st, err := calib.Collect(sess, data, calib.CollectOptions{MaxBatches: maxBatches})
	if err != nil {
		return nil, nil, err
	}
	rs, err := calib.ComputeRanges(st, algo, calib.Params{})
	if err != nil {
		return nil, nil, err
	}
	out := map[string]float64{}
	for _, r := range rs {
		out[r.Name] = r.Amax
	}
	return st, out, nil
}

// QuantizableLayers lists the nodes of m the builder can quantize (Conv,
// Gemm, MatMul with a constant weight) whose activation input has a range,
// in graph order.
func QuantizableLayers(m *ir.Model, ranges map[string]float64) []string {
	konst := constantTensors(m.Graph)
	var out []string
	for _, n := range m.Graph.Nodes {
		switch n.OpType {
		case "Conv", "Gemm", "MatMul":
		default:
			continue
		}
		if n.Domain != "" || len(n.Inputs) < 2 || !konst[n.Inputs[1]] {
			continue
		}
		if _, ok := ranges[n.Inputs[0]]; ok {
			out = append(out, n.Name)
		}
	}
	return out
}

// Build builds m with every quantizable layer quantized except those in
// keep (which stay FP32, with Obey constraints so the build fails rather
// than silently changing them). base supplies the rest of the configuration
// (profiles, threads, timing). Default settings use the builder's implicit
// quantization (exactly what `kiln build --int8 --layer-precisions` does);
// harder ones write Q/DQ first with quant/qdq and build the explicit model.
func Build(m *ir.Model, s Setting, keep map[string]bool, base builder.Config) (*engine.Plan, *builder.Report, error) {
	cfg := base
	cfg.LayerPrecisions = map[string]engine.Precision{}
	for k, v := range base.LayerPrecisions {
		cfg.LayerPrecisions[k] = v
	}
	src := m
	if s.explicit() {
		rng := map[string]qdq.Range{}
		for k, a := range s.Ranges {
			rng[k] = qdq.Range{Amax: a, Min: -a, Max: a}
		}
		dt := s.DType
		if dt == ir.Undefined {
			dt = ir.Int8
		}
		folded, err := foldWeights(m)
		if err != nil {
			return nil, nil, err
		}
		q, err := qdq.Insert(folded, qdq.Options{Flavor: qdq.TensorRT, DType: dt, Ranges: rng, Skip: keep,
			PerTensorWeights: s.PerTensorWeights, WeightBits: s.WeightBits, QuantizedWeights: true, NoResidualAdds: true})
		if err != nil {
			return nil, nil, err
		}
		src = q
		cfg.INT8, cfg.FP8 = false, false
	} else {
		cfg.DynamicRanges = s.Ranges
		cfg.INT8 = s.Precision() == engine.INT8
		cfg.FP8 = s.Precision() == engine.FP8
		for name := range keep {
			cfg.LayerPrecisions[name] = engine.FP32
		}
		if len(keep) > 0 {
			cfg.Constraints = builder.Obey
		}
	}
	p, rep, err := builder.Build(src, nil, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("building with %s kept in fp32: %w", keepString(keep), err)
	}
	return p, rep, nil
}

// LayerPrecisionsFlag is the --layer-precisions value keeping these layers
// in FP32 (layers in graph order for a stable string).
func LayerPrecisionsFlag(keep []string) string {
	s := ""
	for i, k := range keep {
		if i > 0 {
			s += ","
		}
		s += k + ":fp32"
	}
	return s
}

func keepString(keep map[string]bool) string {
	if len(keep) == 0 {
		return "no layer"
	}
	var k []string
	for n := range keep {
		k = append(k, n)
	}
	sort.Strings(k)
	return fmt.Sprint(k)
}

// constantTensors are initializers and outputs of nodes that read only
// constants (a Reshape of a weight folds into a weight in the builder).
func constantTensors(g *ir.Graph) map[string]bool {
	k := map[string]bool{}
	for _, t := range g.Initializers {
		k[t.Name] = true
	}
	for _, n := range g.Nodes {
		all := n.OpType != "RandomNormal" && n.OpType != "RandomUniform"
		for _, in := range n.Inputs {
			if in != "" && !k[in] {
				all = false
			}
		}
		if all {
			for _, o := range n.Outputs {
				k[o] = true
			}
		}
	}
	return k
}

// foldWeights returns m with the weight input of every Conv/Gemm/MatMul
// that is computed from constants only (a Reshape of an initializer, as in
// the zoo's MNIST CNN) replaced by an initializer holding its value, so
// that quant/qdq sees a weight to quantize, as the builder's implicit path
// does after its folding pass.
func foldWeights(m *ir.Model) (*ir.Model, error) {
	inits := m.Graph.InitializerMap()
	konst := constantTensors(m.Graph)
	need := false
	for _, n := range m.Graph.Nodes {
		if isWeightLayer(n) && len(n.Inputs) > 1 && konst[n.Inputs[1]] && inits[n.Inputs[1]] == nil {
			need = true
		}
	}
	if !need {
		return m, nil
	}
	inf, err := ops.Infer(m, ops.InferOptions{FoldLimit: 1 << 24})
	if err != nil {
		return nil, err
	}
	out := m.Clone()
	used := map[string]bool{}
	for _, t := range out.Graph.Initializers {
		used[t.Name] = true
	}
	for _, n := range out.Graph.Nodes {
		for _, o := range n.Outputs {
			used[o] = true
		}
		if !isWeightLayer(n) || len(n.Inputs) < 2 || inits[n.Inputs[1]] != nil {
			continue
		}
		c := inf.Consts[n.Inputs[1]]
		if c == nil {
			continue
		}
		name := n.Inputs[1] + "_folded"
		for i := 1; used[name]; i++ {
			name = fmt.Sprintf("%s_folded%d", n.Inputs[1], i)
		}
		used[name] = true
		w := c.Clone()
		w.Name = name
		out.Graph.Initializers = append(out.Graph.Initializers, w)
		n.Inputs[1] = name
	}
	return out, nil
}

func isWeightLayer(n *ir.Node) bool {
	return n.Domain == "" && (n.OpType == "Conv" || n.OpType == "Gemm" || n.OpType == "MatMul")
}
