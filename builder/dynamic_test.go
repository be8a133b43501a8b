package builder

import (
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/kilnml/kiln/conformance"
	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
	"github.com/kilnml/kiln/ops"
)

// randomWeights returns a named float32 initializer of N(0, std²) values
// drawn from r.
func randomWeights(r *rand.Rand, std float64, name string, dims ...int64) *ir.Tensor {
	w := ir.NewTensor(ir.Float32, dims)
	for i := range w.F32() {
		w.F32()[i] = float32(std * r.NormFloat64())
	}
	w.Name = name
	return w
}

func randomInput(dt ir.DType, dims []int64, seed uint64) *ir.Tensor {
	r := rand.New(rand.NewPCG(seed, 3))
	t := ir.NewTensor(dt, dims)
	for i := int64(0); i < t.Len(); i++ {
		t.SetFloat64At(i, r.NormFloat64())
	}
	return t
}

// PyTorch exports with a dynamic batch (Shape→Gather→Concat→Reshape chains)
// build once and run at several batch sizes inside the profile.
func TestDynamicBatch(t *testing.T) {
	shared := sharedDir(t)
	cases := []struct {
		file  string
		shape []int64 // with batch first
	}{
		{"simplecnn.fp32.onnx", []int64{0, 1, 28, 28}},
		{"bert4.fp32.onnx", []int64{0, 128, 256}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			m, err := onnx.Load(filepath.Join(shared, "models", "bench", c.file))
			if err != nil {
				t.Fatal(err)
			}
			in := m.Graph.RealInputs()[0]
			at := func(n int64) []int64 { d := append([]int64{}, c.shape...); d[0] = n; return d }
			prof := Profile{in.Name: {Min: at(1), Opt: at(2), Max: at(4)}}
			plan, _, err := Build(m, nil, Config{Profiles: []Profile{prof}})
			if err != nil {
				t.Fatal(err)
			}
			e, err := engine.NewEngine(plan)
			if err != nil {
				t.Fatal(err)
			}
			ctx := e.NewContext()
			for _, n := range []int64{1, 3, 4, 2} {
				x := randomInput(in.Type.DType, at(n), uint64(n))
				want, err := ops.Run(m, map[string]*ir.Tensor{in.Name: x})
				if err != nil {
					t.Fatal(err)
				}
				got, err := ctx.Run(map[string]*ir.Tensor{in.Name: x})
				if err != nil {
					t.Fatalf("batch %d: %v", n, err)
				}
				for name, w := range want {
					if err := conformance.Compare(got[name], w, 1e-5, 1e-6); err != nil {
						t.Errorf("batch %d, %s: %v", n, name, err)
					}
				}
			}
			if _, err := ctx.Run(map[string]*ir.Tensor{in.Name: randomInput(in.Type.DType, at(5), 5)}); err == nil {
				t.Error("batch 5 outside the profile ran")
			}
		})
	}
}
