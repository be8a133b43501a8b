// Package builder turns an ONNX model into an engine plan, in the way of
// TensorRT's IBuilder: optimize the graph, pick a precision per layer,
// lower each layer to the fastest tactic a backend offers, plan memory and
// record everything a loader needs.
package builder

import (
	"fmt"
	"sort"
	"strings"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
)

// Constraint says how layer precision requests are honoured.
type Constraint int

const (
	// ConstraintNone lets the builder choose freely (requests are hints).
	ConstraintNone Constraint = iota
	// Prefer uses the requested precision where a kernel exists and falls
	// back otherwise, saying so in the report.
	Prefer
	// Obey fails the build when a requested precision cannot be honoured.
	Obey
)

// ParseConstraint reads "none", "prefer" or "obey".
func ParseConstraint(s string) (Constraint, error) {
	switch strings.ToLower(s) {
	case "", "none":
		return ConstraintNone, nil
	case "prefer":
		return Prefer, nil
	case "obey":
		return Obey, nil
	}
	return 0, fmt.Errorf("unknown precision constraint %q (want none, prefer or obey)", s)
}

// ShapeRange is an input's min/opt/max shape in one profile.
type ShapeRange struct{ Min, Opt, Max []int64 }

// Profile maps input names to shape ranges.
type Profile map[string]ShapeRange

// Config is the builder configuration (TensorRT's IBuilderConfig).
type Config struct {
	FP16, BF16, INT8, FP8 bool
	Best                  bool // every precision allowed; fastest wins per layer

	// Per-layer precision requests by layer (node) name, and how to honour them.
	LayerPrecisions map[string]engine.Precision
	Constraints     Constraint

	// Profiles for dynamic inputs; empty: derived from the model (symbolic
	// dims become 1, with a warning, as trtexec does).
	Profiles []Profile

	// Where INT8/FP8 ranges come from (implicit quantization), unless the
	// model has Q/DQ nodes. DynamicRanges (tensor → amax) take precedence.
	Calibration   *Calibration
	DynamicRanges map[string]float64
	// Harder weight settings for experiments (kiln debug precision): fewer
	// bits than 8 (codes still stored as int8) and one scale per tensor
	// instead of one per output channel.
	WeightBits       int
	PerTensorWeights bool
	// FloatResiduals keeps the residual inputs of quantized layers in FP32.
	// By default (TensorRT's implicit INT8 does the same) a fused residual
	// whose tensor has a range is read as codes (kiln.QConv's z_scale), so
	// the block-output layer writes codes and the stream between blocks
	// stays INT8/FP8: less memory traffic, one fewer QuantizeLinear per
	// block, and the residual carries its quantization error.
	FloatResiduals bool
	// DynamicINT8 quantizes MatMuls with constant weights per token at run
	// time (kiln.DynQMatMul: no calibration; suits transformers).
	DynamicINT8 bool
	// SmoothQuant migrates activation outliers into the weights before
	// INT8/FP8 quantization (quant/smooth, builder/smoothquant.go): for every
	// MatMul/Gemm with a constant weight, s_j = max|X_j|^α / max|W_j|^(1−α)
	// per input channel from a first pass over Calibration.Source (which must
	// be a calib.Rewinder); X is divided by s (in the producing LayerNorm's
	// γ/β, or an inserted Mul) and W's rows multiplied by it, leaving the FP32
	// function unchanged. SmoothQuantAlpha is α in (0, 1]; 0 means 0.5.
	SmoothQuant      bool
	SmoothQuantAlpha float64

	// WorkspaceLimit bounds the scratch a tactic may ask for at the opt shape
	// (checked when competing tactics are timed; 0 = unlimited).
	WorkspaceLimit int64
	TimingCache    string // file to read and update; "" = none
	Deterministic  bool   // no timing: pick the first valid tactic
	Threads        int    // for timing; 0 = GOMAXPROCS

	// Log receives verbose build messages ("Fusing Conv_3 with Relu_4").
	Log func(format string, args ...any)
}

func (c *Config) logf(format string, args ...any) {
	if c.Log != nil {
		c.Log(format, args...)
	}
}

// ParseLayerPrecisions reads "name:fp16,name2:fp32" (names may contain ':';
// the precision follows the last one). "*" applies to every layer.
func ParseLayerPrecisions(s string) (map[string]engine.Precision, error) {
	out := map[string]engine.Precision{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, item := range strings.Split(s, ",") {
		k := strings.LastIndex(item, ":")
		if k <= 0 {
			return nil, fmt.Errorf("layer precision %q is not name:precision", item)
		}
		p, err := engine.ParsePrecision(strings.TrimSpace(item[k+1:]))
		if err != nil {
			return nil, fmt.Errorf("layer %q: %w", item[:k], err)
		}
		out[strings.TrimSpace(item[:k])] = p
	}
	return out, nil
}

// ParseShapes reads trtexec's "input:1x3x224x224,mask:1x128".
func ParseShapes(s string) (map[string][]int64, error) {
	out := map[string][]int64{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, item := range strings.Split(s, ",") {
		k := strings.LastIndex(item, ":")
		if k <= 0 {
			return nil, fmt.Errorf("shape %q is not name:dims (e.g. input:1x3x224x224)", item)
		}
		shp, err := ir.ParseShape(item[k+1:])
		if err != nil {
			return nil, err
		}
		dims, ok := shp.Concrete()
		if !ok {
			return nil, fmt.Errorf("shape %q: dimensions must be numbers", item)
		}
		out[strings.TrimSpace(item[:k])] = dims
	}
	return out, nil
}

// ProfileFromShapes builds one profile from --min/--opt/--max maps; an
// input named in only some of them uses the given ones for the missing.
func ProfileFromShapes(minS, optS, maxS map[string][]int64) (Profile, error) {
	names := map[string]bool{}
	for _, m := range []map[string][]int64{minS, optS, maxS} {
		for n := range m {
			names[n] = true
		}
	}
	p := Profile{}
	keys := make([]string, 0, len(names))
	for n := range names {
		keys = append(keys, n)
	}
	sort.Strings(keys)
	for _, n := range keys {
		r := ShapeRange{minS[n], optS[n], maxS[n]}
		pick := func(xs ...[]int64) []int64 {
			for _, x := range xs {
				if x != nil {
					return x
				}
			}
			return nil
		}
		r.Opt = pick(r.Opt, r.Max, r.Min)
		r.Min = pick(r.Min, r.Opt)
		r.Max = pick(r.Max, r.Opt)
		if len(r.Min) != len(r.Opt) || len(r.Max) != len(r.Opt) {
			return nil, fmt.Errorf("input %q: min/opt/max shapes have different ranks", n)
		}
		for i := range r.Opt {
			if r.Min[i] > r.Opt[i] || r.Opt[i] > r.Max[i] {
				return nil, fmt.Errorf("input %q: need min <= opt <= max, got %v / %v / %v", n, r.Min, r.Opt, r.Max)
			}
		}
		p[n] = r
	}
	return p, nil
}
