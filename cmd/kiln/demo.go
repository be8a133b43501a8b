package main

import (
	"io"

	"github.com/kilnml/kiln/demo"
	"github.com/kilnml/kiln/internal/cli"
	"github.com/spf13/cobra"
)

func init() {
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the lesson's hands-on end to end",
	}
	cmd.AddCommand(newDemoMNISTCmd())
	rootCmd.AddCommand(cmd)
}

func newDemoMNISTCmd() *cobra.Command {
	var (
		cfg    demo.MNISTConfig
		seed   int64
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "mnist",
		Short: "Train, export, calibrate, build and compare FP32/FP16/INT8/FP8 engines on MNIST",
		Long: `The TensorRT INT8 hands-on of ../shared/LESSON.txt, in Go, in one command:

  1. train the SimpleCNN in FP32 (--epochs, 5 by default) and save the checkpoint;
  2. export ONNX with a dynamic batch axis;
  3. build an FP32 engine;
  4. remove any old calibration cache, calibrate INT8 (--calibrator, entropy2 as
     TensorRT's IInt8EntropyCalibrator2) on 100 batches of 64 training images in
     order, write the cache and build the INT8 engine; build FP16 and FP8 engines
     (FP8 reuses the calibrated ranges);
  5. evaluate on the 10,000 test images at batch 256: accuracy and average time per
     batch of the unoptimized reference executor (the baseline, as PyTorch FP32 is
     in the lesson), the FP32, FP16, INT8 and FP8 engines, and ONNX Runtime FP32 on
     the same ONNX file when KILN_ORT_DIR has it (see ../shared/tools/ort);
  6. print | mode | accuracy (%) | avg time / batch (ms) | speedup vs baseline |.

The reference executor is slow: it runs on the first --baseline-images test
images only (whole batches; the table says so), the engines on all of them.
Engines run on --threads threads (default: all cores), and so do the reference
executor's kernels and ONNX Runtime.

The artifacts (checkpoint, ONNX, plans, cache) go to a temporary folder removed
at the end, as in the lesson, or stay in --keep DIR. With --json the narration
and progress go to stderr and the result to stdout as JSON.

Further exercises: --batch-sizes 1,64,256,1024 (a table per batch size) and
--calib-batches 1,10,100 (INT8 accuracy and calibration time per count; the
tables use the last count).`,
		Example: `  kiln demo mnist
  kiln demo mnist --epochs 1 --keep demo-out
  kiln demo mnist --batch-sizes 1,64,256,1024 --calib-batches 1,10,100 --json > demo.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cfg.Epochs < 0 {
				return cli.Usagef("--epochs must not be negative")
			}
			if seed < 1 {
				return cli.Usagef("--seed must be positive")
			}
			for _, b := range cfg.BatchSizes {
				if b < 1 {
					return cli.Usagef("--batch-sizes must be positive, got %d", b)
				}
			}
			for _, b := range cfg.CalibBatches {
				if b < 1 {
					return cli.Usagef("--calib-batches must be positive, got %d", b)
				}
			}
			if cfg.Threads < 0 || cfg.TrainLimit < 0 || cfg.TestLimit < 0 || cfg.CalibBatchSize < 1 || cfg.TrainBatch < 1 {
				return cli.Usagef("--threads, --train-limit and --test-limit must not be negative, --calib-batch-size and --train-batch-size must be positive")
			}
			if cfg.ORT != "auto" && cfg.ORT != "off" {
				return cli.Usagef("--ort must be auto or off, not %q", cfg.ORT)
			}
			cfg.Seed = uint64(seed)
			return runDemoMNIST(cmd.OutOrStdout(), cmd.ErrOrStderr(), cfg, asJSON)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&cfg.Epochs, "epochs", 5, "training epochs over the 60,000 images")
	fl.IntVar(&cfg.TrainBatch, "train-batch-size", 256, "images per training step")
	fl.Int64Var(&seed, "seed", 1, "training seed (initialization and shuffling)")
	fl.IntSliceVar(&cfg.BatchSizes, "batch-sizes", []int{256}, "inference batch sizes, one table each")
	fl.IntSliceVar(&cfg.CalibBatches, "calib-batches", []int{100}, "calibration batch counts (several: one calibration and INT8 accuracy each)")
	fl.IntVar(&cfg.CalibBatchSize, "calib-batch-size", 64, "training images per calibration batch")
	fl.StringVar(&cfg.Calibrator, "calibrator", "entropy2", "entropy2, minmax, percentile, mse or legacy")
	fl.IntVar(&cfg.Threads, "threads", 0, "threads for training, the engines, the reference executor and ONNX Runtime (0: all cores)")
	fl.StringVar(&cfg.MNISTDir, "mnist-dir", "", "folder with the four MNIST idx files (default: the GoMNIST module's data/)")
	fl.StringVar(&cfg.Keep, "keep", "", "keep the artifacts (checkpoint, ONNX, plans, calibration cache) in this folder")
	fl.BoolVar(&asJSON, "json", false, "print the result as JSON on stdout (narration and progress on stderr)")
	fl.StringVar(&cfg.Resume, "resume", "", "start from this safetensors checkpoint (with --epochs 0: no training)")
	fl.IntVar(&cfg.TrainLimit, "train-limit", 0, "train on the first N training images only (quick runs)")
	fl.IntVar(&cfg.TestLimit, "test-limit", 0, "evaluate on the first N test images only (quick runs)")
	fl.IntVar(&cfg.BaselineImages, "baseline-images", 2560, "test images for the slow reference executor (whole batches; -1: all)")
	fl.StringVar(&cfg.ORT, "ort", "auto", "ONNX Runtime row: auto (when KILN_ORT_DIR has it) or off")
	return cmd
}

func runDemoMNIST(stdout, stderr io.Writer, cfg demo.MNISTConfig, asJSON bool) error {
	cfg.Log = stdout
	if asJSON {
		cfg.Log = stderr
	}
	res, err := demo.RunMNIST(cfg)
	if err != nil {
		return err
	}
	if asJSON {
		return demo.WriteJSON(stdout, res)
	}
	return demo.WriteText(stdout, res)
}
