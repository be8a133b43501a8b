// Package benchstat computes benchmark statistics with trtexec's
// definitions, so that kiln's numbers compare with TensorRT's:
// percentiles, median, coefficient of variation and throughput.
package benchstat

import (
	"math"
	"slices"
	"time"
)

// Percentile returns trtexec's percentile p (0..100) of samples: sort
// ascending, exclude = int((1 − p/100)·N), value = sorted[max(N−1−exclude, 0)].
// trtexec computes exclude in float32 (its percentile is a float), and so
// does kiln, so that the same samples give the same answer: p90 of 10
// samples excludes 1 (float64 arithmetic would give 0.99999… and exclude
// none), p99 of 100 samples excludes none (float32 gives 0.999999).
// samples need not be sorted; it is not modified. Zero for no samples.
func Percentile(samples []float64, p float64) float64 {
	s := sorted(samples)
	return percentileSorted(s, p)
}

func percentileSorted(s []float64, p float64) float64 {
	n := len(s)
	if n == 0 {
		return 0
	}
	// Explicit conversions round every step to float32 (and forbid fusing).
	q := float32(1 - float32(p)/100)
	exclude := int(float32(q * float32(n)))
	return s[max(n-1-exclude, 0)]
}

// Median is the middle element, or the mean of the two middle ones for an
// even count (trtexec's findMedian). Zero for no samples.
func Median(samples []float64) float64 {
	return medianSorted(sorted(samples))
}

func medianSorted(s []float64) float64 {
	n := len(s)
	switch {
	case n == 0:
		return 0
	case n%2 == 1:
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Mean is the arithmetic mean (zero for no samples).
func Mean(samples []float64) float64 {
	if len(samples) == 0 {
		return 0
	}
	sum := 0.0
	for _, x := range samples {
		sum += x
	}
	return sum / float64(len(samples))
}

// CoV is the coefficient of variation: population standard deviation over
// the mean (zero when the mean is zero or there are no samples).
func CoV(samples []float64) float64 {
	m := Mean(samples)
	if m == 0 {
		return 0
	}
	v := 0.0
	for _, x := range samples {
		v += (x - m) * (x - m)
	}
	return math.Sqrt(v/float64(len(samples))) / m
}

// Throughput is trtexec's qps: batch × runs / wall time (zero for no time).
func Throughput(batch, runs int, wall time.Duration) float64 {
	if wall <= 0 {
		return 0
	}
	return float64(batch) * float64(runs) / wall.Seconds()
}

// UnstableCoV is the CoV above which trtexec warns that the measurements
// are unstable.
const UnstableCoV = 0.025

// Summary describes a set of latency samples (in milliseconds).
type Summary struct {
	N           int               `json:"n"`
	Min         float64           `json:"min_ms"`
	Max         float64           `json:"max_ms"`
	Mean        float64           `json:"mean_ms"`
	Median      float64           `json:"median_ms"`
	Percentiles []PercentileValue `json:"percentiles"`
	CoV         float64           `json:"cov"`
	Unstable    bool              `json:"unstable"`
}

// PercentileValue is one requested percentile.
type PercentileValue struct {
	P     float64 `json:"p"`
	Value float64 `json:"value_ms"`
}

// Summarize computes a Summary of samples with the given percentiles.
func Summarize(samples []float64, percentiles []float64) Summary {
	s := sorted(samples)
	out := Summary{N: len(s), Mean: Mean(s), Median: medianSorted(s), CoV: CoV(s), Percentiles: []PercentileValue{}}
	if len(s) > 0 {
		out.Min, out.Max = s[0], s[len(s)-1]
	}
	out.Unstable = out.CoV > UnstableCoV
	for _, p := range percentiles {
		out.Percentiles = append(out.Percentiles, PercentileValue{P: p, Value: percentileSorted(s, p)})
	}
	return out
}

func sorted(samples []float64) []float64 {
	s := slices.Clone(samples)
	slices.Sort(s)
	return s
}

// Ms converts durations to milliseconds.
func Ms(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = float64(d) / float64(time.Millisecond)
	}
	return out
}
