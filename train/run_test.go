package train

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/kilnml/kiln/data/mnist"
)

// TestLongRun is a measurement driver, not a unit test: with
// KILN_TRAIN_EPOCHS=N it trains SimpleCNN on all of MNIST for N epochs at the
// defaults (Adam 1e-3, batch 256, seed 1), logging per-epoch wall time,
// images/s and test accuracy, and saving a checkpoint after each epoch under
// KILN_TRAIN_OUT (default a temp dir).
func TestLongRun(t *testing.T) {
	epochs, _ := strconv.Atoi(os.Getenv("KILN_TRAIN_EPOCHS"))
	if epochs <= 0 {
		t.Skip("set KILN_TRAIN_EPOCHS to train on the full data set")
	}
	out := os.Getenv("KILN_TRAIN_OUT")
	if out == "" {
		out = t.TempDir()
	}
	trainSet, testSet, err := mnist.Load(os.Getenv("KILN_MNIST_DIR"))
	if err != nil {
		t.Fatal(err)
	}
	m := NewSimpleCNN(1)
	tr := NewTrainer(m, NewAdam(m.Params(), 1e-3), 256, 0, 1, 28, 28)
	b := mnist.NewBatches(trainSet, 256, true, 1)
	for e := 0; e < epochs; e++ {
		start := time.Now()
		p, err := tr.Epoch(e, b, func(p Progress) {
			if p.Step%50 == 0 {
				t.Logf("epoch %d step %d/%d loss %.4f acc %.4f %.0f img/s", e+1, p.Step, p.Steps, p.MeanLoss, p.Accuracy(), p.ImagesPerSecond())
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		wall := time.Since(start)
		acc, loss := Evaluate(m, testSet, 1000, 0)
		t.Logf("EPOCH %d: %.1f s, %.0f images/s, train loss %.4f acc %.4f, test loss %.4f acc %.4f",
			e+1, wall.Seconds(), p.ImagesPerSecond(), p.MeanLoss, p.Accuracy(), loss, acc)
		if err := SaveCheckpoint(filepath.Join(out, fmt.Sprintf("epoch%d.safetensors", e+1)), m, nil); err != nil {
			t.Fatal(err)
		}
	}
}
