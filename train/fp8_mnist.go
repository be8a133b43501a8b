package train

import (
	"fmt"
	"io"
	"runtime"

	"github.com/kilnml/kiln/data/mnist"
)

// FP8Curve is one run of TrainMNISTFP8: the test accuracy after each epoch
// (and, with EvalEvery, every EvalEvery steps), FP8 or FP32.
type FP8Curve struct {
	Steps      []int
	Accuracies []float64
	Losses     []float64 // mean training loss since the previous point
}

// TrainMNISTFP8 trains SimpleCNN on MNIST as TrainMNIST does (same seed,
// data order, optimizer), with every convolution and linear layer in FP8
// (recipe r: E4M3 forward, E5M2 gradients, delayed scaling) when fp8 is
// true, and returns the model and the test-accuracy curve, evaluated every
// evalEvery steps (0: once per epoch). Checkpoint and ONNX export are the
// caller's (the FP8 layers export their float weights).
func TrainMNISTFP8(cfg MNISTConfig, fp8 bool, r FP8Recipe, evalEvery int, w io.Writer) (*Sequential, *FP8Curve, error) {
	if cfg.Epochs < 0 || cfg.BatchSize <= 0 || !(cfg.LR > 0) {
		return nil, nil, fmt.Errorf("train: need epochs ≥ 0, batch size > 0 and learning rate > 0")
	}
	trainSet, testSet, err := mnist.Load(cfg.MNISTDir)
	if err != nil {
		return nil, nil, err
	}
	if cfg.Limit > 0 {
		trainSet, testSet = head(trainSet, cfg.Limit), head(testSet, cfg.Limit)
	}
	model := NewSimpleCNN(cfg.Seed)
	if fp8 {
		PrepareFP8(model, r)
	}
	opt, err := NewOptimizer(cfg.Optimizer, model.Params(), cfg.LR)
	if err != nil {
		return nil, nil, err
	}
	workers := cfg.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	tr := NewTrainer(model, opt, cfg.BatchSize, workers, 1, 28, 28)
	batches := mnist.NewBatches(trainSet, cfg.BatchSize, true, cfg.Seed)
	curve := &FP8Curve{}
	var lossSum float64
	var lossN int
	point := func() {
		acc, _ := Evaluate(model, testSet, 1000, workers)
		curve.Steps = append(curve.Steps, tr.GlobalStep())
		curve.Accuracies = append(curve.Accuracies, acc)
		curve.Losses = append(curve.Losses, lossSum/float64(max(lossN, 1)))
		lossSum, lossN = 0, 0
		mode := "fp32"
		if fp8 {
			mode = "fp8"
		}
		fmt.Fprintf(w, "%s step %d: test accuracy %.2f%%, train loss %.4f\n", mode, tr.GlobalStep(), 100*acc, curve.Losses[len(curve.Losses)-1])
	}
	for e := 0; e < cfg.Epochs; e++ {
		_, err := tr.Epoch(e, batches, func(p Progress) {
			lossSum += p.Loss
			lossN++
			if evalEvery > 0 && tr.GlobalStep()%evalEvery == 0 {
				point()
			}
		})
		if err != nil {
			return nil, nil, err
		}
		if evalEvery == 0 || tr.GlobalStep()%evalEvery != 0 {
			point()
		}
	}
	return model, curve, nil
}
