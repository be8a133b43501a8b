package builder

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/quant/calib"
	"github.com/kilnml/kiln/quant/smooth"
)

// smoothQuant applies SmoothQuant (quant/smooth) to the optimized graph,
// before calibration and Q/DQ insertion: per input channel j of every
// MatMul/Gemm with a constant weight, s_j = max|X_j|^α / max|W_j|^(1−α),
// with max|X_j| from a first pass over the calibration data. X is divided
// by s (folded into a LayerNorm's γ/β when the MatMuls are its only
// readers, else an inserted Mul) and W's rows are multiplied by s, so the
// FP32 function is unchanged while the per-tensor activation range that
// INT8/FP8 must cover shrinks. It runs on the fused graph, so it sees the
// kiln.LayerNorm and kiln.MatMul layers that are actually quantized.
//
// The data is then rewound for calibration, which measures the smoothed
// tensors. A calibration cache written by a smoothed build records a hash
// of the model and the smoothing factors, so a cache of the unsmoothed
// model (or of other data or α) reads as stale instead of being misused.
func (b *build) smoothQuant() error {
	alpha := b.cfg.SmoothQuantAlpha
	if alpha == 0 {
		alpha = 0.5
	}
	if !(alpha > 0 && alpha <= 1) {
		return fmt.Errorf("SmoothQuant: alpha %g is not in (0, 1]", alpha)
	}
	if len(b.cfg.DynamicRanges) > 0 {
		return errors.New("SmoothQuant cannot use given dynamic ranges: they describe the unsmoothed tensors (calibrate with --calib-data instead)")
	}
	cal := b.cfg.Calibration
	if cal == nil || cal.Source == nil {
		return errors.New("SmoothQuant needs calibration data (--calib-data): its per-channel statistics come from the data, which a calibration cache does not hold")
	}
	rw, ok := cal.Source.(calib.Rewinder)
	if !ok {
		return fmt.Errorf("SmoothQuant reads the calibration data twice (per-channel statistics, then calibration): the source %T must implement calib.Rewinder", cal.Source)
	}
	// Layers the user keeps in float are left alone (smoothing them would be
	// exact but cost a Mul for nothing).
	skip := map[string]bool{}
	for _, n := range b.m.Graph.Nodes {
		names, _ := members(n)
		for _, nm := range append(names, n.Name) {
			if p, ok := b.cfg.LayerPrecisions[nm]; ok && p != engine.INT8 && p != engine.FP8 {
				skip[n.Name] = true
			}
		}
	}
	sites, err := smooth.Smooth(b.m, rw, smooth.Options{Alpha: alpha, MaxBatches: cal.Collect.MaxBatches, Log: b.cfg.Log, Skip: skip})
	if err != nil {
		return err
	}
	if err := rw.Rewind(); err != nil {
		return fmt.Errorf("SmoothQuant: rewinding the calibration data: %w", err)
	}
	b.rep.SmoothQuantAlpha, b.rep.Smoothed = alpha, sites
	if len(sites) == 0 {
		b.rep.Warnings = append(b.rep.Warnings, "SmoothQuant: no MatMul or Gemm with a constant 2-D weight and a calibrated input to smooth")
	}
	c := *cal
	c.ModelHash = smoothedHash(cal.ModelHash, alpha, sites)
	b.cfg.Calibration = &c
	return nil
}

// smoothedHash identifies the smoothed model for the calibration cache's
// sidecar: sha256 over the source model's hash, α and every factor.
func smoothedHash(model string, alpha float64, sites []smooth.Site) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\nsmoothquant alpha=%v\n", model, alpha)
	var buf [8]byte
	for _, s := range sites {
		fmt.Fprintf(h, "%s %d\n", s.Activation, len(s.Scales))
		for _, v := range s.Scales {
			binary.LittleEndian.PutUint64(buf[:], math.Float64bits(v))
			h.Write(buf[:])
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// SmoothQuantSummary is one line for build reports: how many activations
// were smoothed and how much their per-tensor range shrank.
func (r *Report) SmoothQuantSummary() string {
	if len(r.Smoothed) == 0 {
		return ""
	}
	folded, layers := 0, 0
	shrink := math.Inf(1)
	for _, s := range r.Smoothed {
		if s.Folded != "" {
			folded++
		}
		layers += len(s.Layers)
		if s.MaxBefore > 0 && s.MaxAfter > 0 {
			shrink = math.Min(shrink, s.MaxBefore/s.MaxAfter)
		}
	}
	worst := r.Smoothed[0]
	for _, s := range r.Smoothed {
		if s.MaxBefore > worst.MaxBefore {
			worst = s
		}
	}
	return fmt.Sprintf("SmoothQuant (α %.2f): %d activations smoothed for %d layers (%d folded into LayerNorm γ/β, %d through an inserted Mul); largest: %s max|x| %.4g -> %.4g",
		r.SmoothQuantAlpha, len(r.Smoothed), layers, folded, len(r.Smoothed)-folded, worst.Activation, worst.MaxBefore, worst.MaxAfter)
}
