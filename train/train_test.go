package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/data/mnist"
)

// tinyCNN has every layer type of SimpleCNN at a size the race detector
// can afford: input [N,1,12,12].
func tinyCNN(seed uint64) *Sequential {
	r := rand.New(rand.NewPCG(seed, 1))
	return &Sequential{Layers: []Layer{
		NewConv2d("conv1", 1, 4, 3, r), &ReLULayer{"relu1"}, &MaxPool2dLayer{"pool1", 2, 2},
		NewConv2d("conv2", 4, 6, 3, r), &ReLULayer{"relu2"}, &FlattenLayer{"flatten"},
		NewLinear("fc1", 6*3*3, 10, r),
	}}
}

// Training is bitwise deterministic for a seed, whatever the worker count:
// work is split so that no two workers add into the same value.
func TestDeterministicAcrossWorkerCounts(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	type setup struct {
		name  string
		model func() *Sequential
		side  int
	}
	setups := []setup{{"tiny", func() *Sequential { return tinyCNN(3) }, 12}}
	if !raceEnabled {
		setups = append(setups, setup{"SimpleCNN", func() *Sequential { return NewSimpleCNN(3) }, 28})
	}
	for _, su := range setups {
		const n = 24
		x := make([]float32, n*su.side*su.side)
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		labels := make([]int, n)
		for i := range labels {
			labels[i] = r.IntN(10)
		}
		run := func(workers int, opt string) []NamedParam {
			m := su.model()
			o, err := NewOptimizer(opt, m.Params(), 1e-3)
			if err != nil {
				t.Fatal(err)
			}
			tr := NewTrainer(m, o, n, workers, 1, su.side, su.side)
			for s := 0; s < 2; s++ {
				if _, _, err := tr.Step(x, labels); err != nil {
					t.Fatal(err)
				}
			}
			return m.Params()
		}
		for _, opt := range []string{"adam", "sgd"} {
			a, b, c := run(1, opt), run(2, opt), run(5, opt)
			for i := range a {
				for j := range a[i].T.Data {
					if a[i].T.Data[j] != b[i].T.Data[j] || a[i].T.Data[j] != c[i].T.Data[j] {
						t.Fatalf("%s %s: %s[%d] differs between worker counts: %v %v %v", su.name, opt, a[i].Name, j, a[i].T.Data[j], b[i].T.Data[j], c[i].T.Data[j])
					}
				}
			}
		}
	}
	// A different seed gives different weights.
	if NewSimpleCNN(3).Params()[0].T.Data[0] == NewSimpleCNN(4).Params()[0].T.Data[0] {
		t.Fatal("seed does not change the initialization")
	}
}

// PyTorch's default initialization: U(−1/√fan_in, 1/√fan_in) for weights and biases.
func TestInitBounds(t *testing.T) {
	m := NewSimpleCNN(1)
	fanIn := map[string]int{"conv1": 9, "conv2": 288, "fc1": 1600, "fc2": 128}
	for _, p := range m.Params() {
		layer := p.Name[:len(p.Name)-len(".weight")]
		if p.Name[len(p.Name)-5:] == ".bias" {
			layer = p.Name[:len(p.Name)-5]
		}
		bound := 1 / math.Sqrt(float64(fanIn[layer]))
		mx := 0.0
		for _, v := range p.T.Data {
			mx = max(mx, math.Abs(float64(v)))
		}
		if mx > bound || (len(p.T.Data) > 100 && mx < 0.9*bound) {
			t.Errorf("%s: max |w| %v, bound %v", p.Name, mx, bound)
		}
	}
}

// One epoch on a 2,048-image subset learns: a smoke test of the whole loop
// on real data (the full-data numbers are measured, not tested).
func TestTrainSubsetLearns(t *testing.T) {
	if raceEnabled {
		t.Skip("trains on real data: too slow under the race detector")
	}
	dir, err := mnist.DefaultDir()
	if err != nil {
		t.Skipf("MNIST not available: %v", err)
	}
	trainSet, testSet, err := mnist.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	trainSet, testSet = head(trainSet, 2048), head(testSet, 1000)
	m := NewSimpleCNN(1)
	tr := NewTrainer(m, NewAdam(m.Params(), 1e-3), 32, 0, 1, 28, 28)
	p, err := tr.Epoch(0, mnist.NewBatches(trainSet, 32, true, 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	acc, loss := Evaluate(m, testSet, 500, 0)
	t.Logf("train loss %.3f acc %.3f; test loss %.3f acc %.3f", p.MeanLoss, p.Accuracy(), loss, acc)
	if acc < 0.8 {
		t.Fatalf("test accuracy %.3f after one epoch on 2,048 images, want ≥ 0.8", acc)
	}
}

func TestCheckpointRoundTripAndMismatch(t *testing.T) {
	dir := t.TempDir()
	a, b := NewSimpleCNN(1), NewSimpleCNN(2)
	path := dir + "/a.safetensors"
	if err := SaveCheckpoint(path, a, map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	meta, err := LoadCheckpoint(path, b)
	if err != nil || meta["k"] != "v" {
		t.Fatalf("%v %v", meta, err)
	}
	for i, p := range a.Params() {
		for j, v := range p.T.Data {
			if b.Params()[i].T.Data[j] != v {
				t.Fatalf("%s differs after loading", p.Name)
			}
		}
	}
	// A model with other shapes reports every problem and stays unchanged.
	small := &Sequential{Layers: []Layer{NewConv2d("conv1", 1, 8, 3, rand.New(rand.NewPCG(1, 1)))}}
	before := small.Params()[0].T.Data[0]
	_, err = LoadCheckpoint(path, small)
	if err == nil || small.Params()[0].T.Data[0] != before {
		t.Fatalf("no error or model changed: %v", err)
	}
	for _, want := range []string{path, `tensor "conv1.weight" is F32[32 1 3 3], want F32[8 1 3 3]`, `unexpected tensor "fc2.bias"`} {
		if !contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
