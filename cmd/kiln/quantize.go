package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/kilnml/kiln/builder"
	"github.com/kilnml/kiln/datasrc"
	"github.com/kilnml/kiln/internal/cli"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
	"github.com/kilnml/kiln/quant/dynamic"
	"github.com/kilnml/kiln/quant/qdq"
	"github.com/kilnml/kiln/quant/smooth"
	"github.com/spf13/cobra"
)

type quantizeFlags struct {
	calibOptions
	out, flavor, ortActivations         string
	fp8, perTensorWeights, quantWeights bool
	dynamic                             bool
	weightBits                          int
	smoothQuant                         float64 // α; 0: off
}

func init() {
	var f quantizeFlags
	cmd := &cobra.Command{
		Use:   "quantize MODEL.onnx --calib-data SRC [--calibrator NAME] [--flavor tensorrt|ort] [--fp8] -o OUT.onnx",
		Short: "Write a Q/DQ (explicitly quantized) ONNX model from calibration, or a dynamically quantized one",
		Long: `Post-training quantization to an ONNX file that TensorRT, ONNX Runtime and
kiln build take as is (explicit quantization):

calibrate the model on SRC with a calibrator (as kiln calibrate does), then
insert QuantizeLinear/DequantizeLinear pairs:
  --flavor tensorrt (default): TensorRT's placement: the inputs of every
      Conv/ConvTranspose/Gemm/MatMul and both inputs of residual Adds are
      quantized, symmetric int8 activations (zero point 0, scale amax/127),
      weights per output channel (axis 0), float weights behind Q→DQ;
  --flavor ort: ONNX Runtime's quantize_static (QDQ format, default
      options) placement: asymmetric uint8 activations from the observed
      min/max (whatever --calibrator says: ORT's MinMax), int8 symmetric
      per-channel weights and int32 biases stored quantized; inputs and
      outputs of Conv/Gemm/MatMul/Add/Mul/pools/Softmax quantized, a
      Relu/Clip after a single-reader output removed (the Q before it takes
      its range), Reshape/MaxPool/... sharing their input's Q parameters,
      ops outside ORT's list (Sum, Flatten, ...) left in float.
  --fp8: float8 E4M3 Q/DQ (scale amax/448) instead of int8 (tensorrt flavour).
  --per-tensor-weights, --weight-bits 4: harder settings, for experiments
      (4-bit codes are stored in int8).
  --smoothquant[=α]: SmoothQuant first: per input channel j of every
      MatMul/Gemm with a constant weight, s_j = max|X_j|^α / max|W_j|^(1−α)
      from the data; X is divided by s (in the producing LayerNorm's γ/β, or
      an inserted Mul) and W's rows multiplied by s. The float function is
      unchanged; activation outliers move into the per-channel weights.
      --smoothquant alone is α 0.5.

The calibrator defaults to minmax for transformers (TensorRT's advice for
NLP) and entropy2 otherwise.

--dynamic needs no data: dynamic-range quantization (ONNX Runtime's
quantize_dynamic): MatMul/Gemm weights become int8 and their inputs are
quantized at run time, per batch (DynamicQuantizeLinear + MatMulInteger).

SRC is as for kiln calibrate: mnist, mnist-raw, mnist:test, a folder of
.npy/.npz/.pb files, or a raw file with --shape.`,
		Example: `  kiln quantize cnn_mnist.onnx --calib-data mnist -o cnn_mnist.qdq.onnx
  kiln quantize cnn_mnist.onnx --calib-data mnist --flavor ort -o cnn_mnist.ort.qdq.onnx
  kiln quantize cnn_mnist.onnx --calib-data mnist --fp8 -o cnn_mnist.fp8.qdq.onnx
  kiln quantize bert.onnx --calib-data tokens/ --smoothquant -o bert.sq.qdq.onnx
  kiln quantize bert.onnx --dynamic -o bert.dynamic.onnx`,
		Args: cli.ExactArgs(1, "one model file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return quantizeModel(cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0], f)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.out, "output", "o", "", "Q/DQ ONNX file to write (required)")
	fl.StringVar(&f.data, "calib-data", "", "calibration data: mnist, mnist-raw, a folder of .npy/.npz/.pb files, or a raw file (with --shape)")
	fl.StringVar(&f.calibrator, "calibrator", "", "calibrator: entropy2, minmax, percentile, mse or legacy (default: minmax for transformers, as TensorRT advises for NLP, else entropy2)")
	fl.IntVar(&f.batches, "calib-batches", 100, "batches to calibrate on (0: all the data)")
	fl.IntVar(&f.batchSize, "calib-batch-size", 64, "samples per calibration batch")
	fl.Float64Var(&f.percentile, "percentile", 99.99, "percentile of |x| for --calibrator percentile")
	fl.StringVar(&f.mnistDir, "mnist-dir", "", "folder of the MNIST idx files (default: the GoMNIST module)")
	fl.StringVar(&f.shape, "shape", "", "raw data: dims of one sample, e.g. 1x28x28")
	fl.StringVar(&f.dtype, "dtype", "", "raw data: element type (default float32)")
	fl.StringVar(&f.flavor, "flavor", "tensorrt", "Q/DQ convention: tensorrt or ort")
	fl.StringVar(&f.ortActivations, "ort-activations", "uint8", "--flavor ort: activation type, uint8 (QuantType.QUInt8) or int8 (QInt8, quantize_static's own default)")
	fl.BoolVar(&f.fp8, "fp8", false, "float8 E4M3 Q/DQ instead of int8")
	fl.BoolVar(&f.perTensorWeights, "per-tensor-weights", false, "one scale per weight tensor instead of one per output channel")
	fl.IntVar(&f.weightBits, "weight-bits", 8, "weight code width, 2..8 (stored in int8)")
	fl.BoolVar(&f.quantWeights, "quantized-weights", false, "store int8 weights behind DequantizeLinear (implied by --flavor ort)")
	fl.BoolVar(&f.dynamic, "dynamic", false, "dynamic-range quantization of MatMul/Gemm (no calibration data)")
	registerSmoothQuant(fl, &f.smoothQuant)
	rootCmd.AddCommand(cmd)
}

func quantizeModel(w, errw io.Writer, path string, f quantizeFlags) error {
	if f.out == "" {
		return cli.Usagef("give the output file with -o OUT.onnx")
	}
	var flavor qdq.Flavor
	switch f.flavor {
	case "tensorrt", "trt":
		flavor = qdq.TensorRT
	case "ort", "onnxruntime":
		flavor = qdq.ORTStatic
	default:
		return cli.Usagef("--flavor must be tensorrt or ort, not %q", f.flavor)
	}
	var ortActs ir.DType
	switch f.ortActivations {
	case "uint8":
		ortActs = ir.Uint8
	case "int8":
		ortActs = ir.Int8
	default:
		return cli.Usagef("--ort-activations must be uint8 or int8, not %q", f.ortActivations)
	}
	if f.ortActivations != "uint8" && flavor != qdq.ORTStatic {
		return cli.Usagef("--ort-activations goes with --flavor ort")
	}
	if f.fp8 && flavor == qdq.ORTStatic {
		return cli.Usagef("--fp8 goes with --flavor tensorrt (ONNX Runtime's CPU flavour is uint8/int8)")
	}
	if f.weightBits < 2 || f.weightBits > 8 {
		return cli.Usagef("--weight-bits must be in 2..8")
	}
	if f.fp8 && (f.weightBits != 8 || f.perTensorWeights) {
		return cli.Usagef("--weight-bits and --per-tensor-weights apply to int8, not --fp8")
	}
	if err := checkSmoothQuant(f.smoothQuant); err != nil {
		return err
	}
	if f.smoothQuant > 0 && f.dynamic {
		return cli.Usagef("--smoothquant needs calibration data: it goes with --calib-data, not --dynamic")
	}
	src, err := loadSource(path)
	if err != nil {
		return err
	}
	if f.dynamic {
		if f.data != "" || f.fp8 || f.weightBits != 8 {
			return cli.Usagef("--dynamic needs no --calib-data and takes no --fp8 or --weight-bits")
		}
		m, rep, err := dynamic.Quantize(src.Model, dynamic.Options{PerTensorWeights: f.perTensorWeights})
		if err != nil {
			return err
		}
		if len(rep.Quantized) == 0 {
			return fmt.Errorf("%s: no MatMul or Gemm with a constant weight to quantize dynamically%s", path, skippedText(rep.Skipped))
		}
		if err := onnx.Save(f.out, m); err != nil {
			return err
		}
		fmt.Fprintf(w, "Dynamic-range quantization: %d layers (%s) → DynamicQuantizeLinear + MatMulInteger, int8 %s weights%s\n",
			len(rep.Quantized), strings.Join(rep.Quantized, ", "), granularity(f.perTensorWeights), skippedText(rep.Skipped))
		fmt.Fprintf(w, "Wrote %s\n", f.out)
		return nil
	}
	if f.data == "" {
		return cli.Usagef("give the calibration data with --calib-data SRC (or --dynamic)")
	}
	f.cache, f.trtVersion = "", "10.9.0" // calibrate afresh; kiln calibrate keeps caches
	var smoothed *builder.Report
	if f.smoothQuant > 0 {
		if src, smoothed, err = smoothSource(src, f); err != nil {
			return err
		}
	}
	c, err := runCalibration(src, f.calibOptions, errw)
	if err != nil {
		return err
	}
	for _, warn := range c.Warnings {
		fmt.Fprintf(errw, "warning: %s\n", warn)
	}
	ranges := map[string]qdq.Range{}
	for _, r := range c.Ranges {
		ranges[r.Name] = qdq.Range{Amax: r.Amax, Min: r.Min, Max: r.Max}
	}
	opt := qdq.Options{Flavor: flavor, Ranges: ranges, PerTensorWeights: f.perTensorWeights, WeightBits: f.weightBits,
		QuantizedWeights: f.quantWeights, ORTActivations: ortActs}
	if f.fp8 {
		opt.DType = ir.Float8E4M3FN
	}
	m, err := qdq.Insert(src.Model, opt)
	if err != nil {
		return err
	}
	m.Doc = strings.TrimSpace(m.Doc + "\nquantized by kiln quantize (" + string(c.Algorithm) + ")")
	if err := onnx.Save(f.out, m); err != nil {
		return err
	}
	if smoothed != nil {
		if s := smoothed.SmoothQuantSummary(); s != "" {
			fmt.Fprintln(w, s)
		} else {
			fmt.Fprintln(w, "SmoothQuant: no MatMul or Gemm with a constant 2-D weight to smooth")
		}
	}
	writeQuantizeSummary(w, src.Model, m, f, c)
	return nil
}

// smoothSource applies SmoothQuant to a copy of src's model with
// per-channel maxima over the calibration data (read once here; the
// calibration that follows reads it again, on the smoothed model).
func smoothSource(src *sourceModel, f quantizeFlags) (*sourceModel, *builder.Report, error) {
	ds, err := datasrc.Open(f.data, src.Model.Graph.RealInputs(), datasrc.Options{
		BatchSize: f.batchSize, MaxBatches: f.batches, Shape: f.shape, DType: f.dtype, MNISTDir: f.mnistDir,
	})
	if err != nil {
		return nil, nil, err
	}
	out := *src
	out.Model = src.Model.Clone()
	sites, err := smooth.Smooth(out.Model, ds, smooth.Options{Alpha: f.smoothQuant, MaxBatches: f.batches})
	if err != nil {
		return nil, nil, err
	}
	out.Model.Doc = strings.TrimSpace(out.Model.Doc + fmt.Sprintf("\nSmoothQuant α %g (kiln quantize)", f.smoothQuant))
	return &out, &builder.Report{Smoothed: sites, SmoothQuantAlpha: f.smoothQuant}, nil
}

func granularity(perTensor bool) string {
	if perTensor {
		return "per-tensor"
	}
	return "per-channel"
}

func skippedText(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return "; left in float: " + strings.Join(s, "; ")
}

// writeQuantizeSummary says which layers got Q/DQ and with what.
func writeQuantizeSummary(w io.Writer, before, after *ir.Model, f quantizeFlags, c *calibration) {
	had := map[string]bool{}
	for _, n := range before.Graph.Nodes {
		had[n.Name] = true
	}
	var layers []string
	pairs := 0
	consts := after.Graph.InitializerMap()
	actDQ := map[string]bool{} // outputs of new DequantizeLinear nodes of activations (not of stored weights or biases)
	for _, n := range after.Graph.Nodes {
		if n.OpType == "DequantizeLinear" && !had[n.Name] {
			pairs++
			if consts[n.Inputs[0]] == nil {
				actDQ[n.Outputs[0]] = true
			}
		}
	}
	for _, n := range after.Graph.Nodes {
		if !had[n.Name] {
			continue
		}
		for _, in := range n.Inputs {
			if actDQ[in] {
				layers = append(layers, n.Name)
				break
			}
		}
	}
	sort.Strings(layers)
	dt, act := "int8", "symmetric int8 activations"
	if f.fp8 {
		dt, act = "float8e4m3fn", "E4M3 activations (scale amax/448)"
	} else if f.flavor == "ort" || f.flavor == "onnxruntime" {
		act = "asymmetric " + f.ortActivations + " activations, int32 biases"
	}
	wb := ""
	if f.weightBits != 8 {
		wb = fmt.Sprintf(", %d-bit codes", f.weightBits)
	}
	fmt.Fprintf(w, "Calibrated %d tensors with %s over %d batches (%s)\n", len(c.Ranges), c.Algorithm, c.Stats.Batches, c.Source)
	fmt.Fprintf(w, "Inserted %d DequantizeLinear nodes (%s, %s weights%s, %s): %d layers quantized: %s\n",
		pairs, act, granularity(f.perTensorWeights), wb, dt, len(layers), strings.Join(layers, ", "))
	fmt.Fprintf(w, "Wrote %s (opset %d)\n", f.out, after.Opset(""))
}
