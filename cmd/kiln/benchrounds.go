package main

import (
	"math"
	"time"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/tools/benchstat"
)

// measureRounds is --compare-ort --rounds N: kiln's timed runs and ONNX
// Runtime's (ort) alternate N times, each kiln round getting 1/N of
// --duration and of --iterations. On a shared machine a burst of other
// load lands on one side of a single kiln-then-ORT comparison and flips
// its ratio; alternating puts both runtimes in the same minutes, and the
// reported ratio is the median of the rounds' ratios. Each kiln round
// warms up again (--warmup): ONNX Runtime's run in between evicts kiln's
// weights and activations from the caches.
func (r *benchResult) measureRounds(ctx *engine.Context, f *benchFlags, ort func() (*ortResult, error)) error {
	round := *f
	round.duration = f.duration / float64(f.rounds)
	round.iterations = max(1, (f.iterations+f.rounds-1)/f.rounds)
	r.origin = time.Now()
	var times, starts []time.Duration
	var wall float64
	var ortMedians, p90s, ratios []float64
	agg := &ortResult{MinMs: math.Inf(1)}
	ortOK := true
	for range f.rounds {
		if err := r.measure(ctx, &round); err != nil {
			return err
		}
		times, starts = append(times, r.times...), append(starts, r.starts...)
		wall += r.WallSeconds
		if !ortOK {
			continue
		}
		o, err := ort()
		if err != nil {
			return err
		}
		if o == nil { // skipped, with a warning: time kiln alone
			ortOK = false
			continue
		}
		kiln := benchstat.Median(benchstat.Ms(r.times))
		rd := ortRound{KilnMedianMs: kiln, ORTMedianMs: o.MedianMs, Ratio: kiln / o.MedianMs}
		agg.Rounds = append(agg.Rounds, rd)
		agg.Version, agg.Threads = o.Version, o.Threads
		agg.Iterations += o.Iterations
		agg.MinMs = min(agg.MinMs, o.MinMs)
		ortMedians, p90s, ratios = append(ortMedians, o.MedianMs), append(p90s, o.P90Ms), append(ratios, rd.Ratio)
	}
	r.times, r.starts = times, starts
	r.Runs, r.WallSeconds = len(times), wall
	r.ThroughputQPS = benchstat.Throughput(r.Batch, r.Runs, time.Duration(wall*float64(time.Second)))
	if len(ratios) > 0 {
		agg.MedianMs, agg.P90Ms, agg.Ratio = benchstat.Median(ortMedians), benchstat.Median(p90s), benchstat.Median(ratios)
		r.ORT = agg
	}
	return nil
}
