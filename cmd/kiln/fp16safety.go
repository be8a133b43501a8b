package main

import (
	"fmt"
	"strings"

	"github.com/kilnml/kiln/builder"
	"github.com/kilnml/kiln/datasrc"
	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ops"
	"github.com/kilnml/kiln/quant/calib"
)

// applyFP16Safety keeps layers whose tensors would overflow (or mostly
// underflow) FP16 in FP32, from statistics over the calibration data, in
// --fp16/--best builds with --calib-data and --fp16-safety (the default).
// It returns the build report lines saying what it did. Layers the user
// named in --layer-precisions keep the user's choice; in builds that also
// quantize, layers that will run in INT8/FP8 are left to the quantizer.
func (f *buildFlags) applyFP16Safety(cfg *builder.Config, src *sourceModel) ([]string, error) {
	if !f.fp16Safety || !(f.fp16 || f.best) || f.calibData == "" {
		return nil, nil
	}
	ds, err := datasrc.Open(f.calibData, src.Model.Graph.RealInputs(), datasrc.Options{
		BatchSize: f.calibBatchSize, MaxBatches: f.calibBatches, MNISTDir: f.mnistDir,
	})
	if err != nil {
		return nil, err
	}
	sess, err := ops.NewSession(src.Model)
	if err != nil {
		return nil, err
	}
	st, err := calib.Collect(sess, ds, calib.CollectOptions{MaxBatches: f.calibBatches})
	if err != nil {
		return nil, fmt.Errorf("fp16 safety: %w", err)
	}
	layers, risks := builder.FP16UnsafeLayers(src.Model, st, builder.FP16SafetyOptions{})
	if len(risks) == 0 {
		return []string{fmt.Sprintf("FP16 safety: every tensor's calibrated range fits FP16 (%d batches)", st.Batches)}, nil
	}
	if cfg.LayerPrecisions == nil {
		cfg.LayerPrecisions = map[string]engine.Precision{}
	}
	quantizes := f.int8 || f.fp8 || f.best
	var kept []string
	for _, l := range layers {
		if _, given := cfg.LayerPrecisions[l]; given {
			continue
		}
		if quantizes && isQuantizableNode(src, l) {
			continue
		}
		cfg.LayerPrecisions[l] = engine.FP32
		kept = append(kept, l)
	}
	var notes []string
	for _, r := range risks {
		notes = append(notes, "FP16 safety: "+r.String())
	}
	if len(kept) > 0 {
		notes = append(notes, fmt.Sprintf("FP16 safety: kept %d layer(s) in fp32: %s (--fp16-safety=false to disable)", len(kept), strings.Join(kept, ", ")))
	}
	return notes, nil
}

func isQuantizableNode(src *sourceModel, name string) bool {
	for _, n := range src.Model.Graph.Nodes {
		if n.Name == name {
			switch n.OpType {
			case "Conv", "Gemm", "MatMul":
				return true
			}
		}
	}
	return false
}
