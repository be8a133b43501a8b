package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/kilnml/kiln/engine"
)

// Each layer's row has the median and the fastest of its runs; the table's
// total line sums both columns, and shape steps (no runs) have no row.
func TestSummarizeStepsMinimum(t *testing.T) {
	p := &engine.Plan{Steps: []engine.Step{
		{Name: "conv", Precision: "int8"},
		{Name: "shape", ShapeStep: true},
		{Name: "pool", Precision: "fp32"},
	}}
	ms := func(v ...float64) []time.Duration {
		var d []time.Duration
		for _, x := range v {
			d = append(d, time.Duration(x*float64(time.Millisecond)))
		}
		return d
	}
	// A loaded machine: one slow run each, the fastest not first.
	prof := summarizeSteps(p, [][]time.Duration{ms(2, 9, 1, 3), nil, ms(0.5, 0.25, 4, 0.75)}, 4)
	if len(prof) != 2 || prof[0].Name != "conv" || prof[1].Name != "pool" {
		t.Fatalf("rows %+v", prof)
	}
	for _, c := range []struct {
		l           layerTime
		median, low float64
	}{{prof[0], 2.5, 1}, {prof[1], 0.625, 0.25}} {
		if c.l.MedianMs != c.median || c.l.MinMs != c.low {
			t.Errorf("%s: median %g min %g, want %g and %g", c.l.Name, c.l.MedianMs, c.l.MinMs, c.median, c.low)
		}
	}
	var b bytes.Buffer
	writeProfile(&b, prof, 4)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 4 || !strings.Contains(lines[0], "Min (ms)") {
		t.Fatalf("table:\n%s", b.String())
	}
	// Columns: time, average, median, min, ...
	for i, want := range [][]string{{"2.50000", "1.00000"}, {"0.62500", "0.25000"}, {"3.12500", "1.25000"}} {
		f := strings.Fields(lines[i+1])
		if f[2] != want[0] || f[3] != want[1] {
			t.Errorf("line %q: median/min columns %v, want %v", lines[i+1], f[2:4], want)
		}
	}
}
