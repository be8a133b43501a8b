package builder

import (
	"errors"
	"io"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnml/kiln/datasrc"
	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
	"github.com/kilnml/kiln/quant/calib"
)

// top1 returns the index of the largest logit of row i.
func top1(t *ir.Tensor, i int) int {
	n := int(t.Dims[len(t.Dims)-1])
	row := t.F32()[i*n : (i+1)*n]
	best := 0
	for k, v := range row {
		if v > row[best] {
			best = k
		}
	}
	return best
}

// The zoo's trained MNIST CNN keeps its accuracy in INT8 (entropy
// calibration on training images) and FP8.
func TestINT8AndFP8MNISTZoo(t *testing.T) {
	shared := sharedDir(t)
	m, err := onnx.Load(filepath.Join(shared, "models", "mnist-8-zoo", "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := datasrc.Open("mnist-raw:train", m.Graph.RealInputs(), datasrc.Options{MaxBatches: 64})
	if err != nil {
		t.Skipf("MNIST not available: %v", err)
	}
	var logs []string
	cfg := Config{INT8: true, Calibration: &Calibration{Source: src, Algorithm: calib.Entropy2},
		Log: func(f string, a ...any) { logs = append(logs, f) }}
	plan, rep, err := Build(m, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	nq := 0
	for _, s := range plan.Steps {
		if s.Precision == "int8" {
			nq++
		}
	}
	if nq < 3 {
		t.Fatalf("only %d int8 layers; report: %+v", nq, rep.Warnings)
	}
	fp32, _, err := Build(m, nil, Config{})
	if err != nil {
		t.Fatal(err)
	}
	src8, _ := datasrc.Open("mnist-raw:train", m.Graph.RealInputs(), datasrc.Options{MaxBatches: 64})
	fp8, _, err := Build(m, nil, Config{FP8: true, Calibration: &Calibration{Source: src8, Algorithm: calib.MinMax}})
	if err != nil {
		t.Fatal(err)
	}
	acc := func(p *engine.Plan) float64 {
		e, err := engine.NewEngine(p)
		if err != nil {
			t.Fatal(err)
		}
		ctx := e.NewContext()
		test, _ := datasrc.Open("mnist-raw:test", m.Graph.RealInputs(), datasrc.Options{MaxBatches: 300})
		right, n := 0, 0
		for {
			b, err := test.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			out, err := ctx.Run(b)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range out {
				if top1(o, 0) == test.Labels()[0] {
					right++
				}
			}
			n++
		}
		return 100 * float64(right) / float64(n)
	}
	fp16, _, err := Build(m, nil, Config{FP16: true})
	if err != nil {
		t.Fatal(err)
	}
	if countPrecision(fp16, "fp16") < 3 {
		t.Errorf("fp16 engine has %d fp16 layers", countPrecision(fp16, "fp16"))
	}
	a32, a8, af8, a16 := acc(fp32), acc(plan), acc(fp8), acc(fp16)
	t.Logf("accuracy on 300 test images: fp32 %.2f%%, int8 %.2f%%, fp8 %.2f%%, fp16 %.2f%%", a32, a8, af8, a16)
	if math.Abs(a32-a8) > 1.5 || math.Abs(a32-af8) > 1.5 || math.Abs(a32-a16) > 0.34 {
		t.Errorf("fp32 %.2f%%, int8 %.2f%%, fp8 %.2f%%, fp16 %.2f%%", a32, a8, af8, a16)
	}
	if !strings.Contains(strings.Join(logs, "\n"), "Quantizing") {
		t.Errorf("no quantization logged: %v", logs)
	}
}
