package train

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"strconv"

	"github.com/kilnml/kiln/data/mnist"
	"github.com/kilnml/kiln/internal/progress"
	"github.com/kilnml/kiln/onnx"
)

// MNISTConfig is what `kiln train mnist` (and the demo) asks for.
type MNISTConfig struct {
	Epochs    int
	BatchSize int
	LR        float64
	Seed      uint64
	Optimizer string // "adam" or "sgd"
	// Out and Checkpoint are the ONNX and safetensors files to write ("" skips).
	Out, Checkpoint string
	// MNISTDir holds the four idx files; "" finds the GoMNIST module.
	MNISTDir string
	// Resume loads initial weights from a safetensors checkpoint.
	Resume string
	// Workers is the number of goroutines (0: GOMAXPROCS).
	Workers int
	// Limit uses only the first Limit training and test examples (0: all).
	Limit int
	// Terminal forces the progress style (nil: detect from the writer).
	Terminal *bool
	// FP8, when set, trains every conv/linear layer in FP8 with delayed
	// scaling (fp8.go: E4M3 forward, E5M2 gradients).
	FP8 *FP8Recipe
}

// EpochResult summarizes one epoch.
type EpochResult struct {
	Epoch                    int
	Loss, Accuracy           float64 // training, over the epoch
	TestLoss, TestAccuracy   float64
	Seconds, ImagesPerSecond float64 // training only, not the evaluation
}

// MNISTResult is the trained model and its numbers.
type MNISTResult struct {
	Model                  *Sequential
	Epochs                 []EpochResult
	TestLoss, TestAccuracy float64
}

// TrainMNIST trains SimpleCNN on MNIST, reporting progress to w, evaluates
// it on the test set, and writes the checkpoint and the ONNX model (each
// through a temporary file and a rename, only after training succeeded).
func TrainMNIST(cfg MNISTConfig, w io.Writer) (*MNISTResult, error) {
	if cfg.Epochs < 0 || cfg.BatchSize <= 0 || !(cfg.LR > 0) {
		return nil, fmt.Errorf("train: need epochs ≥ 0, batch size > 0 and learning rate > 0 (got %d, %d, %g)", cfg.Epochs, cfg.BatchSize, cfg.LR)
	}
	trainSet, testSet, err := mnist.Load(cfg.MNISTDir)
	if err != nil {
		return nil, err
	}
	if cfg.Limit > 0 {
		trainSet, testSet = head(trainSet, cfg.Limit), head(testSet, cfg.Limit)
	}
	if trainSet.Images.Rows != 28 || trainSet.Images.Cols != 28 || testSet.Images.Rows != 28 || testSet.Images.Cols != 28 {
		return nil, fmt.Errorf("train: SimpleCNN needs 28x28 images, the data has %dx%d", trainSet.Images.Rows, trainSet.Images.Cols)
	}
	model := NewSimpleCNN(cfg.Seed)
	if cfg.Resume != "" {
		if _, err := LoadCheckpoint(cfg.Resume, model); err != nil {
			return nil, err
		}
	}
	if cfg.FP8 != nil {
		PrepareFP8(model, *cfg.FP8)
	}
	opt, err := NewOptimizer(cfg.Optimizer, model.Params(), cfg.LR)
	if err != nil {
		return nil, err
	}
	workers := cfg.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	fmt.Fprintf(w, "training SimpleCNN on %d MNIST images (%d test), %d epochs, batch %d, %s lr %g, seed %d, %d threads\n",
		trainSet.Len(), testSet.Len(), cfg.Epochs, cfg.BatchSize, optName(cfg.Optimizer), cfg.LR, cfg.Seed, workers)
	tr := NewTrainer(model, opt, cfg.BatchSize, workers, 1, 28, 28)
	batches := mnist.NewBatches(trainSet, cfg.BatchSize, true, cfg.Seed)
	res := &MNISTResult{Model: model}
	for e := 0; e < cfg.Epochs; e++ {
		bar := progress.New(int64(batches.NumBatches()), fmt.Sprintf("epoch %d/%d", e+1, cfg.Epochs),
			progress.Options{Out: w, Terminal: cfg.Terminal, Unit: "batches"})
		p, err := tr.Epoch(e, batches, func(p Progress) {
			bar.Detail(fmt.Sprintf("loss %.4f, acc %.2f%%, %.0f img/s", p.MeanLoss, 100*p.Accuracy(), p.ImagesPerSecond()))
			bar.Set(int64(p.Step))
		})
		bar.Finish()
		if err != nil {
			return nil, err
		}
		acc, loss := Evaluate(model, testSet, 1000, workers)
		if math.IsNaN(loss) {
			return nil, fmt.Errorf("train: the test loss is NaN after epoch %d (step %d): training diverged; try a smaller learning rate", e+1, tr.GlobalStep())
		}
		er := EpochResult{Epoch: e + 1, Loss: p.MeanLoss, Accuracy: p.Accuracy(), TestLoss: loss, TestAccuracy: acc,
			Seconds: p.Elapsed.Seconds(), ImagesPerSecond: p.ImagesPerSecond()}
		res.Epochs = append(res.Epochs, er)
		fmt.Fprintf(w, "epoch %d/%d: train loss %.4f, train accuracy %.2f%%, %.1f s, %.0f images/s; test loss %.4f, test accuracy %.2f%%\n",
			e+1, cfg.Epochs, er.Loss, 100*er.Accuracy, er.Seconds, er.ImagesPerSecond, er.TestLoss, 100*er.TestAccuracy)
	}
	if len(res.Epochs) > 0 {
		last := res.Epochs[len(res.Epochs)-1]
		res.TestAccuracy, res.TestLoss = last.TestAccuracy, last.TestLoss
	} else {
		res.TestAccuracy, res.TestLoss = Evaluate(model, testSet, 1000, workers)
	}
	fmt.Fprintf(w, "test accuracy: %.2f%% (%d images)\n", 100*res.TestAccuracy, testSet.Len())
	if cfg.Checkpoint != "" {
		meta := map[string]string{
			"format": "pt", "model": "SimpleCNN", "producer": "kiln train mnist",
			"epochs": strconv.Itoa(cfg.Epochs), "seed": strconv.FormatUint(cfg.Seed, 10),
			"optimizer": optName(cfg.Optimizer), "lr": strconv.FormatFloat(cfg.LR, 'g', -1, 64),
			"batch_size": strconv.Itoa(cfg.BatchSize), "test_accuracy": strconv.FormatFloat(res.TestAccuracy, 'f', 4, 64),
		}
		if err := SaveCheckpoint(cfg.Checkpoint, model, meta); err != nil {
			return nil, err
		}
		fmt.Fprintf(w, "wrote %s\n", cfg.Checkpoint)
	}
	if cfg.Out != "" {
		m, err := ExportONNX(model, []int{1, 28, 28}, 10)
		if err != nil {
			return nil, err
		}
		if err := onnx.Save(cfg.Out, m); err != nil {
			return nil, err
		}
		fmt.Fprintf(w, "wrote %s (ONNX opset 13, input \"input\" [batch,1,28,28], output \"output\" [batch,10])\n", cfg.Out)
	}
	return res, nil
}

func optName(s string) string {
	if s == "" {
		return "adam"
	}
	return s
}

// head returns the first n examples of a split.
func head(s *mnist.Set, n int) *mnist.Set {
	if n >= s.Len() {
		return s
	}
	im := *s.Images
	im.N = n
	im.Pixels = im.Pixels[:n*im.Rows*im.Cols]
	return &mnist.Set{Images: &im, Labels: s.Labels[:n]}
}
