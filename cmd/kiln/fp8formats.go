package main

import (
	"fmt"

	"github.com/kilnml/kiln/builder"
)

// writeFP8Formats prints the per-tensor format choice of an FP8 build: for
// every calibrated activation, the format it got (E4M3, E5M2, or FP16 when
// its readers stay out of FP8), the amax its scale comes from, and why.
func writeFP8Formats(ew *errWriter, choices []builder.FP8Choice) {
	if len(choices) == 0 {
		return
	}
	counts := map[string]int{}
	for _, c := range choices {
		counts[c.Format.Name]++
	}
	ew.printf("\nFP8 formats (per tensor, from calibration): %d E4M3, %d E5M2, %d FP16\n", counts["E4M3"], counts["E5M2"], counts["FP16"])
	rows := [][]string{{"tensor", "format", "amax", "why"}}
	for _, c := range choices {
		rows = append(rows, []string{c.Tensor, c.Format.Name, fmt.Sprintf("%.4g", c.Amax), c.Reason})
	}
	writeTable(ew, "  ", rows)
}
