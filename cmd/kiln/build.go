package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/kilnml/kiln/builder"
	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/internal/cli"
	"github.com/spf13/cobra"
)

type buildCmdFlags struct {
	buildFlags
	saveEngine string
	threads    int
}

func init() {
	var f buildCmdFlags
	cmd := &cobra.Command{
		Use:   "build MODEL.onnx [--fp16] [--int8] [--fp8] [--best] [--save-engine m.plan]",
		Short: "Build an optimized engine (a plan file) from an ONNX model",
		Long: `Build an engine from an ONNX model, as TensorRT's builder does: optimize the
graph (constant folding, fusions), choose a precision and a kernel (tactic)
for every layer, plan activation memory, and write the result as a plan file
that kiln run, kiln inspect and kiln bench load without the ONNX model.

Precisions: FP32 always; --fp16, --bf16, --int8, --fp8 allow more; --best
allows all. INT8 ranges come from a TensorRT calibration cache
(--calib-cache), from calibrating first (--calib-data SRC --calib-cache F,
as kiln calibrate does), or from the model's own Q/DQ nodes. The calibrator
defaults to minmax for transformers (TensorRT's advice for NLP), entropy2
otherwise. For transformers: --int8-dynamic quantizes MatMuls per token at
run time (no calibration); --smoothquant[=α] (with --calib-data) moves
activation outliers into the weights before INT8/FP8 calibration. --fp8
picks E4M3, E5M2 or FP16 per tensor from calibration and prints why.

Dynamic inputs get an optimization profile from --min-shapes, --opt-shapes
and --max-shapes (or --shapes for all three); without them, symbolic
dimensions become 1, with a warning.

The report lists every layer with its fused members, precision, kernel and
tactic, then the activation memory (arena after reuse vs the naive sum).`,
		Example: `  kiln build ../shared/models/bench/simplecnn.fp32.onnx --save-engine cnn.plan \
      --min-shapes input:1x1x28x28 --opt-shapes input:64x1x28x28 --max-shapes input:256x1x28x28
  kiln build simplecnn.onnx --int8 --calib-data mnist --calib-cache cnn.cache --save-engine cnn.int8.plan`,
		Args: cli.ExactArgs(1, "one model file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return buildModel(cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0], f)
		},
	}
	f.register(cmd.Flags())
	cmd.Flags().StringVar(&f.saveEngine, "save-engine", "", "write the plan to this file")
	cmd.Flags().IntVar(&f.threads, "threads", 0, "threads for tactic timing (0: all cores)")
	rootCmd.AddCommand(cmd)
}

// built is an engine plan with what the builder said about it.
type built struct {
	Plan    *engine.Plan
	Report  *builder.Report
	Notes   []string // notes of the command line
	Elapsed time.Duration
}

// buildEngine builds src with the flags: calibrates first when asked, logs
// to logw with --verbose, shows calibration progress on progressOut.
func buildEngine(src *sourceModel, f *buildFlags, threads int, logw, progressOut io.Writer) (*built, error) {
	if threads < 0 {
		return nil, cli.Usagef("--threads must not be negative")
	}
	cfg, err := f.config(logw, threads)
	if err != nil {
		return nil, err
	}
	done, err := f.calibrationConfig(&cfg, src, progressOut)
	if err != nil {
		return nil, err
	}
	notes, err := f.applyFP16Safety(&cfg, src)
	if err != nil {
		return nil, err
	}
	if (cfg.Calibration != nil || cfg.DynamicRanges != nil) && !f.quantized() && !anyQuantizedLayer(cfg) && !(cfg.SmoothQuant && cfg.DynamicINT8) {
		notes = append(notes, "calibration ranges are only used with --int8, --fp8 or --best (or int8/fp8 --layer-precisions)")
	}
	start := time.Now()
	plan, rep, err := builder.Build(src.Model, src.Bytes, cfg)
	if err != nil {
		return nil, err
	}
	done()
	plan.Meta.SourceName = src.Path
	return &built{Plan: plan, Report: rep, Notes: notes, Elapsed: time.Since(start)}, nil
}

func buildModel(w, errw io.Writer, path string, f buildCmdFlags) error {
	src, err := loadSource(path)
	if err != nil {
		return err
	}
	b, err := buildEngine(src, &f.buildFlags, f.threads, w, errw)
	if err != nil {
		return err
	}
	if err := writeBuildReport(w, src, b); err != nil {
		return err
	}
	if f.saveEngine == "" {
		fmt.Fprintf(w, "Engine not saved (give --save-engine FILE to keep it)\n")
		return nil
	}
	if err := b.Plan.SaveFile(f.saveEngine); err != nil {
		return fmt.Errorf("saving the engine: %w", err)
	}
	size := int64(0)
	if st, err := os.Stat(f.saveEngine); err == nil {
		size = st.Size()
	}
	fmt.Fprintf(w, "Saved engine: %s (%s)\n", f.saveEngine, cli.HumanBytes(size))
	return nil
}

func writeBuildReport(w io.Writer, src *sourceModel, b *built) error {
	ew := &errWriter{w: w}
	p := ew.printf
	meta := b.Plan.Meta
	p("Model:       %s (sha256 %.12s…)\n", src.Path, src.SHA)
	p("Precisions:  %s; constraints %s\n", meta.Config["precisions"], meta.Config["constraints"])
	for k, pr := range b.Plan.Profiles {
		p("Profile %d:   %s\n", k, profileText(pr))
	}
	layers := b.Report.Layers
	p("\nLayers (%d):\n", len(layers))
	rows := [][]string{{"#", "layer", "fused", "precision", "kernel", "tactic", "outputs"}}
	for i, l := range layers {
		// Fused layers are named after their members; their op types say more.
		members := "-"
		if len(l.Members) > 1 {
			members = strings.Join(l.Members, " + ")
			if len(b.Plan.Steps) == len(layers) && len(b.Plan.Steps[i].OpTypes) == len(l.Members) {
				members = strings.Join(b.Plan.Steps[i].OpTypes, "+")
			}
		}
		prec := l.Precision
		if l.ShapeStep || (len(b.Plan.Steps) == len(layers) && b.Plan.Steps[i].ShapeStep) {
			prec += " (shape)"
		}
		rows = append(rows, []string{fmt.Sprint(i), l.Name, members, prec, l.Kernel, l.Tactic, strings.Join(l.Outputs, ", ")})
	}
	writeTable(ew, "  ", rows)
	if len(b.Report.Fusions) > 0 {
		p("\nFusions (%d):\n", len(b.Report.Fusions))
		for _, s := range b.Report.Fusions {
			p("  %s\n", s)
		}
	}
	if sq := b.Report.SmoothQuantSummary(); sq != "" {
		p("\n%s\n", sq)
	}
	writeFP8Formats(ew, b.Report.FP8Formats)
	warnings := append(append([]string{}, b.Report.Warnings...), b.Notes...)
	if len(warnings) > 0 {
		p("\nWarnings:\n")
		for _, s := range warnings {
			p("  %s\n", s)
		}
	}
	p("\nActivation memory: %s\n", memoryText(b.Report.ArenaBytes, b.Report.NaiveBytes))
	p("Build time:  %v\n", round(b.Elapsed))
	return ew.err
}

// memoryText: "1.2 MiB arena (naive sum 3.4 MiB, 65% saved by reuse)".
func memoryText(arena, naive int64) string {
	s := fmt.Sprintf("%s arena at the maximum shapes (naive sum %s", cli.HumanBytes(arena), cli.HumanBytes(naive))
	if naive > 0 {
		s += fmt.Sprintf(", %.0f%% saved by reuse", 100*float64(naive-arena)/float64(naive))
	}
	return s + ")"
}

// profileText: "input min 1x1x28x28, opt 8x1x28x28, max 64x1x28x28".
func profileText(pr engine.Profile) string {
	var names []string
	for n := range pr.Opt {
		names = append(names, n)
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s min %s, opt %s, max %s", n, dimsText(pr.Min[n]), dimsText(pr.Opt[n]), dimsText(pr.Max[n])))
	}
	if len(parts) == 0 {
		return "(static shapes)"
	}
	return strings.Join(parts, "; ")
}

func dimsText(d []int64) string {
	if len(d) == 0 {
		return "scalar"
	}
	s := make([]string, len(d))
	for i, x := range d {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, "x")
}

func anyQuantizedLayer(cfg builder.Config) bool {
	for _, p := range cfg.LayerPrecisions {
		if p == engine.INT8 || p == engine.FP8 {
			return true
		}
	}
	return false
}
