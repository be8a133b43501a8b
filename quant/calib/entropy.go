package calib

import "math"

// quantLevels is the number of positive levels of symmetric int8.
const quantLevels = 128

// entropyAmax implements TensorRT's EntropyCalibrator2 search on a histogram
// of |x|. For every candidate i from 128 bins to the last bin:
//
//   - the reference distribution P is bins[0:i] with the mass of all bins
//     beyond i added to bin i-1 (clipping moves the outliers to the edge);
//   - the candidate Q quantizes bins[0:i] into 128 levels (bin j goes to
//     level floor(j·128/i), so levels cover i/128 bins each, unevenly when
//     128 does not divide i) and spreads each level's mass evenly over the
//     non-empty bins of that level; empty bins of P stay empty in Q;
//   - both are normalized and KL(P‖Q) = Σ p·ln(p/q) over p > 0; a bin where
//     p > 0 and q = 0 (the tail landed in an empty last bin) makes the
//     divergence infinite, so that candidate never wins.
//
// The threshold is the right edge of the best candidate's last bin, i·width.
// Ties go to the larger candidate (the last minimum), as NVIDIA's
// pytorch-quantization does. When zeroBin is set, bin 0 is replaced by bin
// 1's count first (also pytorch-quantization's choice) so that the spike of
// exact zeros after a ReLU does not dominate. Candidates that would clip
// more than maxClip of all values are skipped (maxClip < 0: none are; see
// Params.EntropyMaxClip for why).
func entropyAmax(h *Histogram, zeroBin bool, maxClip float64) float64 {
	h = capped(h)
	bins := append([]float64(nil), h.Counts...)
	bins[0] += h.Zeros
	n := len(bins)
	if zeroBin && n > 1 {
		bins[0] = bins[1]
	}
	if n <= quantLevels {
		return h.Edge(n)
	}
	// suffix[i] = Σ bins[i:]
	suffix := make([]float64, n+1)
	for i := n - 1; i >= 0; i-- {
		suffix[i] = suffix[i+1] + bins[i]
	}
	levelMass := make([]float64, quantLevels)
	levelNonEmpty := make([]int, quantLevels)
	bestI, bestKL := n, math.Inf(1)
	for i := quantLevels; i <= n; i++ {
		for k := range levelMass {
			levelMass[k], levelNonEmpty[k] = 0, 0
		}
		for j := 0; j < i; j++ {
			k := j * quantLevels / i
			levelMass[k] += bins[j]
			if bins[j] != 0 {
				levelNonEmpty[k]++
			}
		}
		pTotal := suffix[0] // Σ P = Σ bins
		qTotal := suffix[0] - suffix[i]
		if pTotal == 0 || qTotal == 0 {
			continue
		}
		if maxClip >= 0 && suffix[i] > maxClip*pTotal {
			continue
		}
		kl := 0.0
		for j := 0; j < i; j++ {
			p := bins[j]
			if j == i-1 {
				p += suffix[i]
			}
			if p == 0 {
				continue
			}
			k := j * quantLevels / i
			q := 0.0
			if bins[j] != 0 {
				q = levelMass[k] / float64(levelNonEmpty[k])
			}
			if q == 0 {
				kl = math.Inf(1)
				break
			}
			pn, qn := p/pTotal, q/qTotal
			kl += pn * math.Log(pn/qn)
		}
		if kl <= bestKL {
			bestI, bestKL = i, kl
		}
	}
	return h.Edge(bestI)
}
