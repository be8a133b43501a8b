package train

import (
	"fmt"
	"math"
	"time"

	"github.com/kilnml/kiln/data/mnist"
)

// BatchSource yields training batches: Next fills x and labels with up to
// its batch size of examples and returns how many (0 at the end of an
// epoch); Reset starts an epoch.
type BatchSource interface {
	Next(x []float32, labels []int) int
	Reset(epoch int)
	NumBatches() int
}

// Trainer runs training steps of a model with an optimizer.
type Trainer struct {
	Model     *Sequential
	Opt       Optimizer
	Ctx       *Ctx
	BatchSize int
	// InputShape is the shape of one example ([1,28,28] for MNIST).
	InputShape []int
	step       int
	x          []float32
	labels     []int
}

// Progress is reported after every step of an epoch.
type Progress struct {
	Epoch, Step, Steps int
	Loss               float64 // this step's mean loss
	MeanLoss           float64 // mean over the epoch so far
	Correct, Seen      int     // running accuracy over the epoch so far
	Elapsed            time.Duration
}

// ImagesPerSecond is the epoch's throughput so far.
func (p Progress) ImagesPerSecond() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Seen) / p.Elapsed.Seconds()
}

// Accuracy is the running training accuracy.
func (p Progress) Accuracy() float64 {
	if p.Seen == 0 {
		return 0
	}
	return float64(p.Correct) / float64(p.Seen)
}

// NewTrainer prepares training of model on examples of inputShape.
func NewTrainer(model *Sequential, opt Optimizer, batchSize, workers int, inputShape ...int) *Trainer {
	return &Trainer{Model: model, Opt: opt, Ctx: NewCtx(workers), BatchSize: batchSize, InputShape: inputShape}
}

// Step runs forward, backward and one optimizer update on n examples in x
// and returns the mean loss and the number classified correctly. A NaN or
// infinite loss stops before the update with an error naming the step.
func (t *Trainer) Step(x []float32, labels []int) (loss float64, correct int, err error) {
	n := len(labels)
	c := t.Ctx
	c.Reset()
	c.Grad = true
	t.step++
	in := FromData(x[:n*numel(t.InputShape)], append([]int{n}, t.InputShape...)...)
	logits := t.Model.Forward(c, in)
	l := c.CrossEntropy(logits, labels)
	loss = float64(l.Data[0])
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return loss, 0, fmt.Errorf("train: loss is %v at step %d; stopping (try a smaller learning rate)", loss, t.step)
	}
	correct = countCorrect(logits, labels)
	t.Opt.ZeroGrad()
	if err := c.Backward(l); err != nil {
		return loss, correct, err
	}
	t.Opt.Step()
	return loss, correct, nil
}

// GlobalStep is the number of steps run so far.
func (t *Trainer) GlobalStep() int { return t.step }

// Epoch trains one pass over src, calling progress (if not nil) after each step.
func (t *Trainer) Epoch(epoch int, src BatchSource, progress func(Progress)) (Progress, error) {
	per := numel(t.InputShape)
	if len(t.x) < t.BatchSize*per {
		t.x, t.labels = make([]float32, t.BatchSize*per), make([]int, t.BatchSize)
	}
	src.Reset(epoch)
	p := Progress{Epoch: epoch, Steps: src.NumBatches()}
	start := time.Now()
	sum := 0.0
	for {
		n := src.Next(t.x, t.labels)
		if n == 0 {
			break
		}
		loss, correct, err := t.Step(t.x[:n*per], t.labels[:n])
		if err != nil {
			return p, fmt.Errorf("epoch %d, batch %d of %d: %w", epoch+1, p.Step+1, p.Steps, err)
		}
		p.Step++
		p.Loss = loss
		sum += loss * float64(n)
		p.Correct += correct
		p.Seen += n
		p.MeanLoss = sum / float64(p.Seen)
		p.Elapsed = time.Since(start)
		if progress != nil {
			progress(p)
		}
	}
	return p, nil
}

func countCorrect(logits *Tensor, labels []int) int {
	cl := logits.Shape[1]
	ok := 0
	for i, l := range labels {
		if argmax(logits.Data[i*cl:(i+1)*cl]) == l {
			ok++
		}
	}
	return ok
}

func argmax(v []float32) int {
	bi := 0
	for i, x := range v {
		if x > v[bi] {
			bi = i
		}
	}
	return bi
}

// Logits runs the model without recording gradients on x [n, inputShape...].
func Logits(c *Ctx, model *Sequential, x []float32, n int, inputShape ...int) []float32 {
	c.Reset()
	grad := c.Grad
	c.Grad = false
	defer func() { c.Grad = grad }()
	out := model.Forward(c, FromData(x[:n*numel(inputShape)], append([]int{n}, inputShape...)...))
	return append([]float32(nil), out.Data...)
}

// Evaluate returns the accuracy and mean loss of model on an MNIST split.
func Evaluate(model *Sequential, set *mnist.Set, batchSize, workers int) (accuracy, loss float64) {
	c := NewCtx(workers)
	c.Grad = false
	b := mnist.NewBatches(set, batchSize, false, 0)
	sz := set.Images.Rows * set.Images.Cols
	x, labels := make([]float32, batchSize*sz), make([]int, batchSize)
	correct, total, sum := 0, 0, 0.0
	for n := b.Next(x, labels); n > 0; n = b.Next(x, labels) {
		c.Reset()
		logits := model.Forward(c, FromData(x[:n*sz], n, 1, set.Images.Rows, set.Images.Cols))
		l := c.CrossEntropy(logits, labels[:n])
		sum += float64(l.Data[0]) * float64(n)
		correct += countCorrect(logits, labels[:n])
		total += n
	}
	if total == 0 {
		return 0, 0
	}
	return float64(correct) / float64(total), sum / float64(total)
}
