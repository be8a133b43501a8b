package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/quant/calib"
	"github.com/kilnml/kiln/tools/benchstat"
)

// layerTime is one row of the per-layer profile.
type layerTime struct {
	Name      string   `json:"name"`
	Members   []string `json:"members"`
	Ops       []string `json:"ops"`
	Precision string   `json:"precision"`
	Kernel    string   `json:"kernel"`
	TotalMs   float64  `json:"time_ms"`
	AverageMs float64  `json:"average_ms"`
	MedianMs  float64  `json:"median_ms"`
	MinMs     float64  `json:"min_ms"` // the fastest run: on a loaded machine less delayed by other processes than the median
	Percent   float64  `json:"percent"`
}

// stepTimes collects every step's time in every run (engine.Profiler).
type stepTimes struct {
	times [][]time.Duration // per step
}

func (s *stepTimes) StepDone(step int, d time.Duration) {
	s.times[step] = append(s.times[step], d)
}

// profileLayers runs the context runs more times with a profiler and
// summarizes each executed step, in plan order.
func profileLayers(ctx *engine.Context, p *engine.Plan, runs int) ([]layerTime, error) {
	st := &stepTimes{times: make([][]time.Duration, len(p.Steps))}
	for i := range st.times {
		st.times[i] = make([]time.Duration, 0, runs)
	}
	ctx.SetProfiler(st)
	defer ctx.SetProfiler(nil)
	for range runs {
		if err := ctx.Execute(); err != nil {
			return nil, err
		}
	}
	return summarizeSteps(p, st.times, runs), nil
}

// summarizeSteps turns each step's run times into its profile row.
func summarizeSteps(p *engine.Plan, times [][]time.Duration, runs int) []layerTime {
	var out []layerTime
	total := 0.0
	for i, s := range p.Steps {
		if len(times[i]) == 0 {
			continue // shape steps run in the shape pass
		}
		samples := benchstat.Ms(times[i])
		sum := 0.0
		for _, x := range samples {
			sum += x
		}
		total += sum
		out = append(out, layerTime{Name: s.Name, Members: nonNilStrings(s.Members), Ops: nonNilStrings(s.OpTypes), Precision: s.Precision, Kernel: s.Kernel,
			TotalMs: sum, AverageMs: sum / float64(runs), MedianMs: benchstat.Median(samples), MinMs: slices.Min(samples)})
	}
	for i := range out {
		if total > 0 {
			out[i].Percent = 100 * out[i].TotalMs / total
		}
	}
	return out
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// layerLabel is the layer name with its fused members: their op types
// when the name already lists them ("a + b [Conv+Relu]"), else the members.
func layerLabel(l layerTime) string {
	if len(l.Members) > 1 && strings.Join(l.Members, " + ") == l.Name && len(l.Ops) == len(l.Members) {
		return fmt.Sprintf("%s [%s]", l.Name, strings.Join(l.Ops, "+"))
	}
	if len(l.Members) > 1 || (len(l.Members) == 1 && l.Members[0] != l.Name) {
		return fmt.Sprintf("%s [%s]", l.Name, strings.Join(l.Members, " + "))
	}
	return l.Name
}

// writeProfile prints trtexec's --dumpProfile table, with each layer's
// fastest run added, plus a total line (the medians' and minima's column
// sums are layer sums, not the median or fastest end-to-end run).
func writeProfile(w io.Writer, prof []layerTime, runs int) {
	rows := [][]string{{"Time (ms)", "Avg. (ms)", "Median (ms)", "Min (ms)", "Time (%)", "Precision", "Layer"}}
	var total, avg, med, low float64
	for _, l := range prof {
		total += l.TotalMs
		avg += l.AverageMs
		med += l.MedianMs
		low += l.MinMs
		rows = append(rows, []string{ms(l.TotalMs), ms(l.AverageMs), ms(l.MedianMs), ms(l.MinMs), fmt.Sprintf("%.1f", l.Percent), l.Precision, layerLabel(l)})
	}
	rows = append(rows, []string{ms(total), ms(avg), ms(med), ms(low), "100.0", "", fmt.Sprintf("Total (%d layers, %d runs)", len(prof), runs)})
	writeTable(w, "", rows)
}

// exportProfile is trtexec's --exportProfile layout: a count record, then
// one record per layer.
func exportProfile(prof []layerTime, runs int) []any {
	out := []any{map[string]int{"count": runs}}
	for _, l := range prof {
		out = append(out, l)
	}
	return out
}

// runTime is one timed run for --export-times (milliseconds from the start
// of the timed phase).
type runTime struct {
	StartMs   float64 `json:"start_ms"`
	EndMs     float64 `json:"end_ms"`
	LatencyMs float64 `json:"latency_ms"`
}

func exportTimes(r *benchResult) []runTime {
	out := make([]runTime, len(r.times))
	for i, d := range r.times {
		s := float64(r.starts[i]) / float64(time.Millisecond)
		l := float64(d) / float64(time.Millisecond)
		out[i] = runTime{StartMs: s, EndMs: s + l, LatencyMs: l}
	}
	return out
}

func writeJSONFile(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return calib.WriteFileAtomic(path, append(data, '\n'))
}
