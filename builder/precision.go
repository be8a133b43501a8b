package builder

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
	"github.com/kilnml/kiln/quant/calib"
	"github.com/kilnml/kiln/quant/dynq"
	"github.com/kilnml/kiln/quant/qdq"
)

// Calibration tells the builder where INT8/FP8 ranges come from when the
// model has no Q/DQ nodes (TensorRT's implicit quantization).
type Calibration struct {
	Source     calib.Stream // batches for the calibrator; nil when a valid cache exists
	Algorithm  calib.Algorithm
	Params     calib.Params
	Cache      string // TensorRT-format cache to read and write ("" for none)
	Force      bool   // recalibrate even when the cache matches
	TRTVersion string // digits written in the cache header
	ModelHash  string // sha256 of the model file, recorded in the sidecar
	Collect    calib.CollectOptions
}

// quantize assigns INT8/FP8 precision: explicit Q/DQ in the model wins;
// otherwise, with --int8/--fp8, ranges from calibration (or given dynamic
// ranges) are written as Q/DQ pairs and converted the same way.
func (b *build) quantize() error {
	explicit := false
	for _, n := range b.m.Graph.Nodes {
		if n.Domain == "" && (n.OpType == "QuantizeLinear" || n.OpType == "DequantizeLinear") {
			explicit = true
			break
		}
	}
	want := b.cfg.INT8 || b.cfg.FP8 || b.cfg.Best
	for _, p := range b.cfg.LayerPrecisions {
		want = want || p == engine.INT8 || p == engine.FP8
	}
	if b.cfg.SmoothQuant {
		switch {
		case explicit:
			b.rep.Warnings = append(b.rep.Warnings, "SmoothQuant skipped: the model is already quantized (Q/DQ nodes); smooth it before quantizing (kiln quantize --smoothquant)")
		case !want && !b.cfg.DynamicINT8:
			b.rep.Warnings = append(b.rep.Warnings, "SmoothQuant applies to INT8/FP8 builds (--int8, --fp8, --best or --int8-dynamic): skipped")
		default:
			if err := b.smoothQuant(); err != nil {
				return err
			}
		}
	}
	if b.cfg.DynamicINT8 {
		skip := map[string]bool{}
		for name, p := range b.cfg.LayerPrecisions {
			if p != engine.INT8 {
				skip[name] = true
			}
		}
		names, err := dynq.Rewrite(b.m, dynq.Options{Skip: skip, Log: b.cfg.Log})
		if err != nil {
			return err
		}
		if len(names) > 0 {
			b.ensureKilnOpset()
		}
	}
	switch {
	case explicit:
		b.rep.Warnings = append(b.rep.Warnings, "the model has QuantizeLinear/DequantizeLinear nodes: explicit quantization (their scales are used; calibration is skipped)")
	case want:
		ranges, stats, err := b.ranges()
		if err != nil {
			return err
		}
		dt := ir.Int8
		if b.cfg.FP8 && !b.cfg.INT8 && !b.cfg.Best {
			dt = ir.Float8E4M3FN
		}
		skip := map[string]bool{}
		for name, p := range b.cfg.LayerPrecisions {
			if p != engine.INT8 && p != engine.FP8 {
				skip[name] = true
			}
		}
		var actTypes map[string]ir.DType
		if dt == ir.Float8E4M3FN && stats != nil {
			actTypes = b.chooseFP8Formats(stats, ranges, skip)
		}
		// Layers named by their members: a request for "conv1" covers "conv1 + relu1".
		for _, n := range b.m.Graph.Nodes {
			names, _ := members(n)
			for _, nm := range names {
				if skip[nm] {
					skip[n.Name] = true
				}
			}
		}
		m, err := qdq.Insert(b.m, qdq.Options{Flavor: qdq.TensorRT, DType: dt, ActivationDTypes: actTypes, Ranges: ranges, Skip: skip,
			QuantizedWeights: true, NoResidualAdds: true, QuantizeResiduals: !b.cfg.FloatResiduals, WeightBits: b.cfg.WeightBits, PerTensorWeights: b.cfg.PerTensorWeights})
		if err != nil {
			return err
		}
		b.m = m
	default:
		return nil
	}
	if err := convertQDQ(b.m, b.rep, b.cfg.logf, b.cfg.FloatResiduals); err != nil {
		return err
	}
	b.ensureKilnOpset()
	return b.checkConstraints()
}

// ranges returns activation ranges: explicit dynamic ranges, or calibration
// (with its statistics when it ran rather than came from a cache).
func (b *build) ranges() (map[string]qdq.Range, *calib.Stats, error) {
	out := map[string]qdq.Range{}
	if len(b.cfg.DynamicRanges) > 0 {
		for name, a := range b.cfg.DynamicRanges {
			out[name] = qdq.Range{Amax: a, Min: -a, Max: a}
		}
		return out, nil, nil
	}
	cal := b.cfg.Calibration
	if cal == nil || (cal.Source == nil && cal.Cache == "") {
		return nil, nil, errors.New("INT8/FP8 needs calibration data (--calib-data), a calibration cache (--calib-cache), dynamic ranges, or a model with Q/DQ nodes")
	}
	sess, err := ops.NewSession(b.m)
	if err != nil {
		return nil, nil, err
	}
	algo := cal.Algorithm
	if algo == "" {
		algo = DefaultCalibrator(b.m)
	}
	res, err := calib.Calibrate(calib.Request{Session: sess, ModelHash: cal.ModelHash, Source: cal.Source, Algorithm: algo,
		Params: cal.Params, CachePath: cal.Cache, Force: cal.Force, TRTVersion: cal.TRTVersion, Collect: cal.Collect})
	if err != nil {
		return nil, nil, fmt.Errorf("calibration: %w", err)
	}
	b.rep.Warnings = append(b.rep.Warnings, res.Warnings...)
	if res.FromCache {
		b.cfg.logf("Using calibration cache %s (%d tensors)", cal.Cache, len(res.Ranges))
	} else {
		b.cfg.logf("Calibrated %d tensors over %d batches with %s", len(res.Ranges), res.Stats.Batches, algo)
	}
	for _, r := range res.Ranges {
		out[r.Name] = qdq.Range{Amax: r.Amax, Min: r.Min, Max: r.Max}
	}
	return out, res.Stats, nil
}

// chooseFP8Formats decides, per activation, between E4M3, E5M2 and FP16
// from its calibration statistics (builder/fp8format.go). E5M2 tensors are
// quantized to E5M2 (the returned overrides; their layers take E5M2
// activations with E4M3 weights); the layers that read an FP16-choice
// tensor stay out of FP8. Every choice and its reason go into the report.
func (b *build) chooseFP8Formats(stats *calib.Stats, ranges map[string]qdq.Range, skip map[string]bool) map[string]ir.DType {
	amax := map[string]float64{}
	for n, r := range ranges {
		amax[n] = r.Amax
	}
	choices := ChooseFP8Formats(stats, amax, FP8FormatOptions{AllowE5M2: true})
	b.rep.FP8Formats = choices
	readers := b.m.Graph.Consumers()
	counts := map[string]int{}
	types := map[string]ir.DType{}
	for _, c := range choices {
		counts[c.Format.Name]++
		b.cfg.logf("FP8 format of %s: %s (%s)", c.Tensor, c.Format.Name, c.Reason)
		switch c.Format.DType {
		case ir.Float8E4M3FN:
			continue
		case ir.Float8E5M2:
			types[c.Tensor] = ir.Float8E5M2
			continue
		}
		for _, n := range readers[c.Tensor] {
			if isQuantizable(n) && len(n.Inputs) > 0 && n.Inputs[0] == c.Tensor {
				skip[n.Name] = true
			}
		}
		b.rep.Warnings = append(b.rep.Warnings, fmt.Sprintf("tensor %q stays out of FP8 (its readers run in float): %s", c.Tensor, c.Reason))
	}
	b.cfg.logf("FP8 formats: %v", counts)
	return types
}

func (b *build) ensureKilnOpset() {
	for _, n := range b.m.Graph.Nodes {
		if n.Domain == "kiln" {
			if b.m.Opset("kiln") == 0 {
				b.m.Opsets = append(b.m.Opsets, ir.OpsetImport{Domain: "kiln", Version: 1})
			}
			return
		}
	}
}

// checkConstraints compares requested layer precisions with the result:
// with Obey a miss fails the build, with Prefer (and none) it is reported.
func (b *build) checkConstraints() error {
	got := map[string]engine.Precision{}
	for _, n := range b.m.Graph.Nodes {
		p := engine.FP32
		if n.Domain == "kiln" && strings.HasPrefix(n.OpType, "Q") && len(n.Inputs) > 0 {
			p = engine.INT8
			if b.isFP8(n) {
				p = engine.FP8
			}
		}
		names, _ := members(n)
		for _, nm := range append(names, n.Name) {
			got[nm] = p
		}
	}
	var misses []string
	names := make([]string, 0, len(b.cfg.LayerPrecisions))
	for n := range b.cfg.LayerPrecisions {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		want := b.cfg.LayerPrecisions[name]
		have, ok := got[name]
		if !ok {
			misses = append(misses, fmt.Sprintf("layer %q does not exist", name))
			continue
		}
		if (want == engine.INT8 || want == engine.FP8) && have != want {
			misses = append(misses, fmt.Sprintf("layer %q could not run in %s (no calibrated range or unsupported pattern; it runs in %s)", name, want, have))
		}
	}
	if len(misses) == 0 {
		return nil
	}
	if b.cfg.Constraints == Obey {
		return fmt.Errorf("precision constraints (obey) not met:\n  %s", strings.Join(misses, "\n  "))
	}
	b.rep.Warnings = append(b.rep.Warnings, misses...)
	return nil
}

// isFP8 reports whether a kiln.Q* layer runs on float8 codes: its weight
// initializer is float8, or (activation×activation QMatMul) its first input
// comes from a float8 QuantizeLinear.
func (b *build) isFP8(n *ir.Node) bool {
	fp8 := func(dt ir.DType) bool { return dt == ir.Float8E4M3FN || dt == ir.Float8E5M2 }
	inits := b.m.Graph.InitializerMap()
	if len(n.Inputs) > 1 {
		if t := inits[n.Inputs[1]]; t != nil {
			return fp8(t.DType)
		}
	}
	if len(n.Inputs) > 0 {
		if q := b.m.Graph.Producers()[n.Inputs[0]]; q != nil && q.OpType == "QuantizeLinear" && len(q.Inputs) > 2 {
			if z := inits[q.Inputs[2]]; z != nil {
				return fp8(z.DType)
			}
		}
	}
	return false
}
