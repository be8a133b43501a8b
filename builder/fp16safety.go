package builder

import (
	"fmt"
	"sort"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/quant/calib"
)

// FP16 limits.
const (
	FP16Max       = 65504.0
	FP16MinNormal = 6.103515625e-05 // 2^-14: below it FP16 values are subnormal (fewer bits)
)

// FP16SafetyOptions tunes FP16UnsafeLayers.
type FP16SafetyOptions struct {
	// Margin: a tensor overflows when max|x|·Margin > 65504. Calibration
	// data rarely holds the largest input a deployment sees; the default 2
	// leaves one binade of headroom.
	Margin float64
	// UnderflowShare: a tensor underflows when more than this share of its
	// non-zero values (from the calibration histogram, where it resolves
	// them) lies below FP16's smallest normal number; default 0.5.
	UnderflowShare float64
}

// FP16Risk is a tensor whose calibrated range does not fit FP16.
type FP16Risk struct {
	Tensor   string
	Layers   []string // its producer and the layers reading it
	AbsMax   float64
	Overflow bool
	Share    float64 // underflow: share of non-zero values below FP16MinNormal
}

func (r FP16Risk) String() string {
	if r.Overflow {
		return fmt.Sprintf("%s: max |x| %.4g would overflow FP16 (max %g)", r.Tensor, r.AbsMax, FP16Max)
	}
	return fmt.Sprintf("%s: %.0f%% of its non-zero values (max |x| %.3g) would be FP16 subnormals or zero", r.Tensor, 100*r.Share, r.AbsMax)
}

// FP16UnsafeLayers reads calibration statistics of m's tensors and returns
// the layers (node names) to keep in FP32 in an --fp16 build: every producer
// and consumer of a tensor whose range overflows FP16 (with the margin) or
// mostly underflows it, with the risks found, sorted by tensor name.
func FP16UnsafeLayers(m *ir.Model, st *calib.Stats, opt FP16SafetyOptions) ([]string, []FP16Risk) {
	if opt.Margin <= 0 {
		opt.Margin = 2
	}
	if opt.UnderflowShare <= 0 {
		opt.UnderflowShare = 0.5
	}
	users := map[string][]string{}
	for _, n := range m.Graph.Nodes {
		for _, o := range n.Outputs {
			if o != "" {
				users[o] = append(users[o], n.Name)
			}
		}
	}
	for _, n := range m.Graph.Nodes {
		for _, in := range n.Inputs {
			if in != "" {
				users[in] = append(users[in], n.Name)
			}
		}
	}
	var risks []FP16Risk
	names := make([]string, 0, len(st.Tensors))
	for name := range st.Tensors {
		names = append(names, name)
	}
	sort.Strings(names)
	keep := map[string]bool{}
	for _, name := range names {
		ts := st.Tensors[name]
		if ts == nil || ts.Count == 0 {
			continue
		}
		r := FP16Risk{Tensor: name, AbsMax: ts.AbsMax()}
		switch {
		case r.AbsMax*opt.Margin > FP16Max || ts.NonFinite > 0 && r.AbsMax > FP16Max/opt.Margin:
			r.Overflow = true
		default:
			if r.AbsMax == 0 {
				continue // all zeros: exact in FP16
			}
			r.Share = underflowShare(ts.Hist, r.AbsMax)
			if r.Share <= opt.UnderflowShare {
				continue
			}
		}
		r.Layers = users[name]
		for _, l := range r.Layers {
			keep[l] = true
		}
		risks = append(risks, r)
	}
	out := make([]string, 0, len(keep))
	for l := range keep {
		out = append(out, l)
	}
	sort.Strings(out)
	return out, risks
}

// underflowShare estimates the share of non-zero values below FP16's
// smallest normal. Bin 0 also holds exact zeros (frequent after ReLU), so
// it counts only when the whole tensor lies below the limit; otherwise
// values are counted from bins that lie entirely below it.
func underflowShare(h *calib.Histogram, absMax float64) float64 {
	if absMax < FP16MinNormal {
		return 1
	}
	if h == nil || h.Width <= 0 || len(h.Counts) == 0 {
		return 0
	}
	var below, nonzero float64
	for i := 1; i < len(h.Counts); i++ {
		nonzero += h.Counts[i]
		if h.Edge(i+1) <= FP16MinNormal {
			below += h.Counts[i]
		}
	}
	if nonzero == 0 {
		return 0
	}
	return below / nonzero
}
