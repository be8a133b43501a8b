package main

import (
	"github.com/kilnml/kiln/internal/cli"
	"github.com/kilnml/kiln/quant/calib"
	"github.com/kilnml/kiln/quant/qdq"
	"github.com/kilnml/kiln/train"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// QAT is an option of `kiln train mnist` (--qat), added here so that
// train.go stays the FP32 trainer's: this file's init runs after train.go's
// (files initialize in name order) and wraps the mnist command.
type qatFlags struct {
	qat, ortFlavor, fp8, perTensorWeights, learnScales, quantWeights bool
	from, calibrator                                                 string
	calibBatches, weightBits                                         int
}

func init() {
	for _, c := range rootCmd.Commands() {
		if c.Name() != "train" {
			continue
		}
		for _, sub := range c.Commands() {
			if sub.Name() == "mnist" {
				addQATFlags(sub)
			}
		}
	}
}

func addQATFlags(cmd *cobra.Command) {
	var f qatFlags
	fl := cmd.Flags()
	fl.BoolVar(&f.qat, "qat", false, "quantization-aware fine-tuning of a trained model (--from): writes a Q/DQ ONNX model")
	fl.StringVar(&f.from, "from", "", "with --qat: the FP32 safetensors checkpoint to fine-tune")
	fl.IntVar(&f.calibBatches, "calib-batches", 20, "with --qat: training batches that set the initial ranges")
	fl.StringVar(&f.calibrator, "calibrator", "percentile", "with --qat: calibrator of the initial activation ranges (percentile 99.99: entropy2 clips SimpleCNN's normalized input, see BENCHMARKS.md)")
	fl.IntVar(&f.weightBits, "weight-bits", 8, "with --qat: weight code width, 2..8")
	fl.BoolVar(&f.perTensorWeights, "per-tensor-weights", false, "with --qat: one weight scale per layer instead of per output channel")
	fl.BoolVar(&f.learnScales, "learn-scales", false, "with --qat: learn the scales (LSQ) instead of freezing the calibrated ranges")
	fl.BoolVar(&f.ortFlavor, "ort-flavor", false, "with --qat: write ONNX Runtime's Q/DQ flavour (uint8 activations, int8 weights stored quantized)")
	fl.BoolVar(&f.quantWeights, "quantized-weights", false, "with --qat: store int8 weights behind DequantizeLinear")
	fl.BoolVar(&f.fp8, "fp8", false, "with --qat: export E4M3 Q/DQ from the learned ranges")
	cmd.Example += `
  kiln train mnist --qat --epochs 1 --from cnn_mnist.safetensors --lr 1e-4 --out cnn_mnist.qdq.onnx`
	fp32 := cmd.RunE
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if !f.qat {
			for _, name := range []string{"from", "calib-batches", "calibrator", "weight-bits", "per-tensor-weights", "learn-scales", "ort-flavor", "quantized-weights", "fp8"} {
				if cmd.Flags().Changed(name) {
					return cli.Usagef("--%s goes with --qat", name)
				}
			}
			return fp32(cmd, args)
		}
		return runQAT(cmd, f)
	}
}

func runQAT(cmd *cobra.Command, f qatFlags) error {
	fl := cmd.Flags()
	if f.from == "" {
		return cli.Usagef("--qat fine-tunes a trained model: give its checkpoint with --from FILE.safetensors")
	}
	if fl.Changed("resume") {
		return cli.Usagef("--qat starts from --from, not --resume")
	}
	algo, err := calib.ParseAlgorithm(f.calibrator)
	if err != nil {
		return cli.Usagef("--calibrator: %v", err)
	}
	if f.weightBits < 2 || f.weightBits > 8 {
		return cli.Usagef("--weight-bits must be in 2..8")
	}
	if f.calibBatches < 1 {
		return cli.Usagef("--calib-batches must be positive")
	}
	if f.fp8 && f.ortFlavor {
		return cli.Usagef("--fp8 and --ort-flavor do not go together")
	}
	cfg := train.QATConfig{From: f.from, CalibBatches: f.calibBatches,
		Quant:   train.QConfig{WeightBits: f.weightBits, PerTensorWeights: f.perTensorWeights, Calibrator: algo, LearnScales: f.learnScales},
		Convert: train.ConvertOptions{FP8: f.fp8, QuantizedWeights: f.quantWeights}}
	if f.ortFlavor {
		cfg.Convert.Flavor = qdq.ORT
	}
	var seed int64
	get := func(err error) {
		if err != nil && fl != nil {
			panic(err) // flags of this very command: cannot be missing
		}
	}
	cfg.Epochs, err = fl.GetInt("epochs")
	get(err)
	cfg.BatchSize, err = fl.GetInt("batch-size")
	get(err)
	cfg.LR, err = fl.GetFloat64("lr")
	get(err)
	if !fl.Changed("lr") {
		cfg.LR = 1e-4 // fine-tuning: a tenth of the training default
	}
	seed, err = fl.GetInt64("seed")
	get(err)
	cfg.Optimizer, err = fl.GetString("optimizer")
	get(err)
	cfg.Out = stringFlag(fl, "out", "cnn_mnist.qdq.onnx")
	cfg.Checkpoint = stringFlag(fl, "checkpoint", "")
	cfg.MNISTDir, err = fl.GetString("mnist-dir")
	get(err)
	cfg.Workers, err = fl.GetInt("threads")
	get(err)
	cfg.Limit, err = fl.GetInt("limit")
	get(err)
	switch {
	case cfg.Epochs < 0:
		return cli.Usagef("--epochs must not be negative")
	case cfg.BatchSize <= 0:
		return cli.Usagef("--batch-size must be positive")
	case !(cfg.LR > 0):
		return cli.Usagef("--lr must be positive")
	case cfg.Optimizer != "adam" && cfg.Optimizer != "sgd":
		return cli.Usagef("--optimizer must be adam or sgd, not %q", cfg.Optimizer)
	case seed < 0:
		return cli.Usagef("--seed must not be negative")
	}
	cfg.Seed = uint64(seed)
	_, err = train.TrainMNISTQAT(cfg, cmd.OutOrStdout())
	return err
}

// stringFlag is the flag's value when given, else the QAT default (the FP32
// trainer's defaults would overwrite its own files).
func stringFlag(fl *pflag.FlagSet, name, def string) string {
	if !fl.Changed(name) {
		return def
	}
	v, _ := fl.GetString(name)
	return v
}
