// Package accuracy measures how far one model's outputs are from another's:
// Polygraphy's comparison statistics and checks (elementwise, mean, median,
// max, quantile against atol/rtol), cosine similarity, SQNR, classifier
// agreement, and the smallest tolerance that would have passed. kiln compare
// and kiln debug precision print its results.
package accuracy

import (
	"fmt"
	"math"
	"sort"
)

// Summary describes a set of values.
type Summary struct {
	N              int
	Mean, Std      float64
	Min, Max       float64
	ArgMin, ArgMax int // index of the first minimum / maximum
	Median         float64
	Quantiles      []Quantile // at DefaultQuantiles
	NonFinite      int        // NaN/Inf values (left out of the numbers above)
}

// Quantile is the q-quantile (0..1) of a set of values.
type Quantile struct {
	Q, V float64
}

// DefaultQuantiles are the quantiles every Summary reports.
var DefaultQuantiles = []float64{0.5, 0.9, 0.99, 0.999}

// Summarize returns the statistics of x (finite values only).
func Summarize(x []float64) Summary {
	s := Summary{ArgMin: -1, ArgMax: -1, Min: math.NaN(), Max: math.NaN(), Mean: math.NaN(), Median: math.NaN()}
	fin := make([]float64, 0, len(x))
	sum := 0.0
	for i, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			s.NonFinite++
			continue
		}
		if s.ArgMin < 0 || v < s.Min {
			s.Min, s.ArgMin = v, i
		}
		if s.ArgMax < 0 || v > s.Max {
			s.Max, s.ArgMax = v, i
		}
		fin = append(fin, v)
		sum += v
	}
	s.N = len(fin)
	if s.N == 0 {
		return s
	}
	s.Mean = sum / float64(s.N)
	ss := 0.0
	for _, v := range fin {
		ss += (v - s.Mean) * (v - s.Mean)
	}
	s.Std = math.Sqrt(ss / float64(s.N))
	sort.Float64s(fin)
	s.Median = quantileSorted(fin, 0.5)
	for _, q := range DefaultQuantiles {
		s.Quantiles = append(s.Quantiles, Quantile{q, quantileSorted(fin, q)})
	}
	return s
}

// quantileSorted interpolates linearly between order statistics (numpy's
// default "linear" method).
func quantileSorted(s []float64, q float64) float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	pos := q * float64(len(s)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(s)-1)
	f := pos - float64(lo)
	return s[lo]*(1-f) + s[hi]*f
}

// QuantileOf returns the q-quantile of x's finite values.
func QuantileOf(x []float64, q float64) float64 {
	fin := make([]float64, 0, len(x))
	for _, v := range x {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			fin = append(fin, v)
		}
	}
	sort.Float64s(fin)
	return quantileSorted(fin, q)
}

// Check names Polygraphy's --check-error-stat.
type Check string

const (
	Elemwise      Check = "elemwise" // every element: abs ≤ atol or rel ≤ rtol
	Mean          Check = "mean"     // mean(abs) ≤ atol or mean(rel) ≤ rtol
	Median        Check = "median"
	Max           Check = "max"
	QuantileCheck Check = "quantile" // the Tolerance.Quantile of abs / rel
)

// ParseCheck reads a check name.
func ParseCheck(s string) (Check, error) {
	switch c := Check(s); c {
	case Elemwise, Mean, Median, Max, QuantileCheck:
		return c, nil
	}
	return "", fmt.Errorf("unknown check %q (want elemwise, mean, median, max or quantile)", s)
}

// Tolerance is what a comparison must meet.
type Tolerance struct {
	ATol, RTol float64
	Check      Check   // default Elemwise
	Quantile   float64 // for QuantileCheck (default 0.99)
}

// DefaultTolerance is Polygraphy's default (atol = rtol = 1e-5, elementwise).
var DefaultTolerance = Tolerance{ATol: 1e-5, RTol: 1e-5, Check: Elemwise}

func (t Tolerance) withDefaults() Tolerance {
	if t.Check == "" {
		t.Check = Elemwise
	}
	if t.Quantile == 0 {
		t.Quantile = 0.99
	}
	return t
}
