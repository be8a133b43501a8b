package train

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"runtime"
	"strconv"

	"github.com/kilnml/kiln/data/mnist"
	"github.com/kilnml/kiln/internal/progress"
	"github.com/kilnml/kiln/onnx"
	"github.com/kilnml/kiln/quant/qdq"
)

// QATConfig is what `kiln train mnist --qat` asks for.
type QATConfig struct {
	MNISTConfig
	// From is the FP32 checkpoint to fine-tune (required).
	From string
	// CalibBatches of BatchSize training images set the initial ranges.
	CalibBatches int
	Quant        QConfig
	Convert      ConvertOptions
}

// QATResult holds the accuracies along the way (test set, fake-quantized
// in the trainer) and the exported model's path.
type QATResult struct {
	FP32Accuracy, PTQAccuracy, QATAccuracy float64
	Epochs                                 []EpochResult
	Model                                  *Sequential
}

// SimpleCNNFusions are SimpleCNN's conv+relu and linear+relu groups.
var SimpleCNNFusions = [][]string{{"conv1", "relu1"}, {"conv2", "relu2"}, {"fc1", "relu3"}}

// TrainMNISTQAT fine-tunes a trained SimpleCNN with quantization-aware
// training: fuse, prepare, calibrate on CalibBatches training batches
// (reporting the PTQ accuracy), prepare for QAT, train Epochs epochs, and
// export the model with its learned scales as Q/DQ ONNX (cfg.Out).
func TrainMNISTQAT(cfg QATConfig, w io.Writer) (*QATResult, error) {
	if cfg.From == "" {
		return nil, fmt.Errorf("train: QAT starts from a trained FP32 checkpoint (--from)")
	}
	if cfg.Epochs < 0 || cfg.BatchSize <= 0 || !(cfg.LR > 0) {
		return nil, fmt.Errorf("train: need epochs ≥ 0, batch size > 0 and learning rate > 0 (got %d, %d, %g)", cfg.Epochs, cfg.BatchSize, cfg.LR)
	}
	if cfg.CalibBatches <= 0 {
		cfg.CalibBatches = 20
	}
	trainSet, testSet, err := mnist.Load(cfg.MNISTDir)
	if err != nil {
		return nil, err
	}
	if cfg.Limit > 0 {
		trainSet, testSet = head(trainSet, cfg.Limit), head(testSet, cfg.Limit)
	}
	workers := cfg.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	base := NewSimpleCNN(cfg.Seed)
	if _, err := LoadCheckpoint(cfg.From, base); err != nil {
		return nil, err
	}
	res := &QATResult{}
	res.FP32Accuracy, _ = Evaluate(base, testSet, 1000, workers)
	fmt.Fprintf(w, "FP32 %s: test accuracy %.2f%%\n", cfg.From, 100*res.FP32Accuracy)

	fused, err := Fuse(base, SimpleCNNFusions)
	if err != nil {
		return nil, err
	}
	model, err := Prepare(fused, cfg.Quant)
	if err != nil {
		return nil, err
	}
	q := cfg.Quant.withDefaults()
	calibSrc := mnist.NewBatches(trainSet, cfg.BatchSize, false, 0)
	if err := Calibrate(model, calibSrc, cfg.CalibBatches, cfg.BatchSize, workers, 1, 28, 28); err != nil {
		return nil, err
	}
	res.PTQAccuracy, _ = Evaluate(model, testSet, 1000, workers)
	fmt.Fprintf(w, "PTQ (%s, %d×%d images, weights %d-bit %s): test accuracy %.2f%%\n", q.Calibrator, cfg.CalibBatches, cfg.BatchSize,
		q.WeightBits, weightGranularity(q.PerTensorWeights), 100*res.PTQAccuracy)

	if err := PrepareQAT(model); err != nil {
		return nil, err
	}
	opt, err := NewOptimizer(cfg.Optimizer, model.Params(), cfg.LR)
	if err != nil {
		return nil, err
	}
	scales := "frozen ranges"
	if q.LearnScales {
		scales = "learned step sizes (LSQ)"
	}
	fmt.Fprintf(w, "QAT: %d epochs, batch %d, %s lr %g, %s, %d threads\n", cfg.Epochs, cfg.BatchSize, optName(cfg.Optimizer), cfg.LR, scales, workers)
	tr := NewTrainer(model, opt, cfg.BatchSize, workers, 1, 28, 28)
	batches := mnist.NewBatches(trainSet, cfg.BatchSize, true, cfg.Seed)
	res.QATAccuracy = res.PTQAccuracy
	for e := 0; e < cfg.Epochs; e++ {
		bar := progress.New(int64(batches.NumBatches()), fmt.Sprintf("QAT epoch %d/%d", e+1, cfg.Epochs),
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
			return nil, fmt.Errorf("train: the test loss is NaN after QAT epoch %d: try a smaller learning rate", e+1)
		}
		res.QATAccuracy = acc
		res.Epochs = append(res.Epochs, EpochResult{Epoch: e + 1, Loss: p.MeanLoss, Accuracy: p.Accuracy(), TestLoss: loss, TestAccuracy: acc,
			Seconds: p.Elapsed.Seconds(), ImagesPerSecond: p.ImagesPerSecond()})
		fmt.Fprintf(w, "QAT epoch %d/%d: train loss %.4f, train accuracy %.2f%%, %.1f s; test loss %.4f, test accuracy %.2f%%\n",
			e+1, cfg.Epochs, p.MeanLoss, 100*p.Accuracy(), p.Elapsed.Seconds(), loss, 100*acc)
	}
	fmt.Fprintf(w, "INT8 test accuracy (fake-quantized in the trainer): FP32 %.2f%%, PTQ %.2f%%, QAT %.2f%%\n",
		100*res.FP32Accuracy, 100*res.PTQAccuracy, 100*res.QATAccuracy)
	res.Model = model
	if cfg.Checkpoint != "" {
		if err := SaveCheckpoint(cfg.Checkpoint, model, qatMetadata(cfg, model, res)); err != nil {
			return nil, err
		}
		fmt.Fprintf(w, "wrote %s\n", cfg.Checkpoint)
	}
	if cfg.Out != "" {
		co := cfg.Convert
		co.InputShape, co.Classes = []int{1, 28, 28}, 10
		m, err := Convert(model, co)
		if err != nil {
			return nil, err
		}
		if err := onnx.Save(cfg.Out, m); err != nil {
			return nil, err
		}
		flavor := "TensorRT (symmetric int8)"
		switch {
		case co.FP8:
			flavor = "FP8 E4M3"
		case co.Flavor == qdq.ORT:
			flavor = "ONNX Runtime (uint8 activations)"
		}
		fmt.Fprintf(w, "wrote %s (Q/DQ, %s, opset %d)\n", cfg.Out, flavor, m.Opset(""))
	}
	return res, nil
}

func weightGranularity(perTensor bool) string {
	if perTensor {
		return "per-tensor"
	}
	return "per-channel"
}

// qatMetadata records the ranges next to the weights (safetensors
// metadata is strings): activation amax and weight scales as JSON.
func qatMetadata(cfg QATConfig, model *Sequential, res *QATResult) map[string]string {
	act := map[string]float64{}
	wsc := map[string][]float32{}
	for _, q := range QuantLayers(model) {
		act[q.InputName] = q.ActAmax()
		wsc[q.Name()+".weight"] = q.WeightScale.Data
	}
	a, _ := json.Marshal(act)
	s, _ := json.Marshal(wsc)
	q := cfg.Quant.withDefaults()
	return map[string]string{
		"format": "pt", "model": "SimpleCNN", "producer": "kiln train mnist --qat", "from": cfg.From,
		"epochs": strconv.Itoa(cfg.Epochs), "lr": strconv.FormatFloat(cfg.LR, 'g', -1, 64),
		"weight_bits": strconv.Itoa(q.WeightBits), "per_tensor_weights": strconv.FormatBool(q.PerTensorWeights),
		"calibrator": string(q.Calibrator), "learn_scales": strconv.FormatBool(q.LearnScales),
		"activation_amax": string(a), "weight_scales": string(s),
		"test_accuracy": strconv.FormatFloat(res.QATAccuracy, 'f', 4, 64),
	}
}
