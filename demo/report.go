package demo

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// WriteText prints the lesson's final table, one per batch size, with
// footnotes, then the calibration table (several counts) and the stages.
func WriteText(w io.Writer, res *Result) error {
	ew := &errWriter{w: w}
	p := ew.printf
	p("\n--- results: %d test images, %d threads, %s ---\n", res.TestImages, res.Threads, res.Machine.CPU)
	p("model: SimpleCNN trained %d epochs on %d images (the trainer's test accuracy %.2f%%); INT8 calibrated with %s on %d batches of %d training images\n",
		res.Epochs, res.TrainImages, res.TrainAccuracy, res.Calibrator, res.CalibBatches, res.CalibBatchSz)
	for _, t := range res.Tables {
		p("\nbatch size %d:\n\n", t.BatchSize)
		p("| mode | accuracy (%%) | avg time / batch (ms) | speedup vs baseline |\n")
		p("|---|---|---|---|\n")
		var notes []string
		for _, row := range t.Rows {
			mark := ""
			if row.Note != "" {
				notes = append(notes, row.Note)
				mark = strings.Repeat("*", len(notes))
			}
			p("| %s%s | %.2f | %s | %.2fx |\n", row.Mode, mark, row.Accuracy, msText(row.AvgMs), row.Speedup)
		}
		p("\n")
		for i, n := range notes {
			p("%s %s\n", strings.Repeat("*", i+1), n)
		}
		if len(t.Rows) > 1 {
			p("kiln's times: mean of SetInput+Execute over the %d full batches of %d, after one untimed warm-up batch (medians in --json)\n",
				t.Rows[1].TimedBatches, t.BatchSize)
		}
	}
	if len(res.Calibrations) > 1 {
		p("\nINT8 calibration (%s, batches of %d training images in order; accuracy at batch 256 on all test images):\n\n", res.Calibrator, res.CalibBatchSz)
		p("| calibration batches | images | calibration + INT8 build (s) | INT8 accuracy (%%) |\n")
		p("|---|---|---|---|\n")
		for _, c := range res.Calibrations {
			p("| %d | %d | %.1f | %.2f |\n", c.Batches, c.Images, c.Seconds, c.Accuracy)
		}
	}
	for _, n := range res.Notes {
		p("note: %s\n", n)
	}
	p("\nstages:")
	for i, s := range res.Stages {
		sep := ","
		if i == 0 {
			sep = ""
		}
		p("%s %s %.1f s", sep, s.Name, s.Seconds)
	}
	p("; total %.1f s\n", res.Seconds)
	if res.Artifacts.Kept {
		p("artifacts kept in %s: %s\n", res.Artifacts.Dir, strings.Join(res.Artifacts.Files, ", "))
	}
	return ew.err
}

// WriteJSON prints the result as one indented JSON object.
func WriteJSON(w io.Writer, res *Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

func msText(ms float64) string {
	switch {
	case ms >= 100:
		return fmt.Sprintf("%.1f", ms)
	case ms >= 1:
		return fmt.Sprintf("%.2f", ms)
	}
	return fmt.Sprintf("%.4f", ms)
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}

// cpuModel is /proc/cpuinfo's model name (what lscpu prints), or "unknown CPU".
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
