package builder

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/kilnml/kiln/conformance"
	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
	"github.com/kilnml/kiln/ops"
)

func sharedDir(t testing.TB) string {
	if d := os.Getenv("KILN_SHARED"); d != "" {
		return d
	}
	d, _ := filepath.Abs(filepath.Join("..", "..", "shared"))
	if _, err := os.Stat(filepath.Join(d, "models")); err != nil {
		t.Skipf("shared data not found at %s (set KILN_SHARED)", d)
	}
	return d
}

func loadInputs(t testing.TB, m *ir.Model, set string) map[string]*ir.Tensor {
	in := map[string]*ir.Tensor{}
	for i, v := range m.Graph.RealInputs() {
		tt, err := onnx.ReadTensorFile(filepath.Join(set, fmt.Sprintf("input_%d.pb", i)))
		if err != nil {
			t.Fatal(err)
		}
		in[v.Name] = tt
	}
	return in
}

// The FP32 engine of every shared model reproduces the reference executor
// within relative 1e-5 (fusions and fast kernels change the rounding order),
// also after a trip through the plan file format.
func TestFP32EngineMatchesReference(t *testing.T) {
	shared := sharedDir(t)
	for _, rel := range []string{"mnist-8-zoo", "onnx-light-cnns/squeezenet", "onnx-light-cnns/shufflenet"} {
		t.Run(rel, func(t *testing.T) {
			dir := filepath.Join(shared, "models", rel)
			m, err := onnx.Load(filepath.Join(dir, "model.onnx"))
			if err != nil {
				t.Fatal(err)
			}
			plan, rep, err := Build(m, nil, Config{})
			if err != nil {
				t.Fatal(err)
			}
			if rep.ArenaBytes > rep.NaiveBytes {
				t.Errorf("arena %d > naive %d", rep.ArenaBytes, rep.NaiveBytes)
			}
			data, err := plan.Serialize()
			if err != nil {
				t.Fatal(err)
			}
			buf := ir.AlignedBytes(int64(len(data)))
			copy(buf, data)
			p2, err := engine.DeserializePlan(buf)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range []*engine.Plan{plan, p2} {
				e, err := engine.NewEngine(p)
				if err != nil {
					t.Fatal(err)
				}
				ctx := e.NewContext()
				sets, _ := filepath.Glob(filepath.Join(dir, "test_data_set_*"))
				for _, set := range sets {
					in := loadInputs(t, m, set)
					want, err := ops.Run(m, in)
					if err != nil {
						t.Fatal(err)
					}
					got, err := ctx.Run(in)
					if err != nil {
						t.Fatal(err)
					}
					for name, w := range want {
						if err := conformance.Compare(got[name], w, 1e-5, 1e-6); err != nil {
							t.Errorf("%s %s: %v", filepath.Base(set), name, err)
						}
						exp, err := onnx.ReadTensorFile(filepath.Join(set, "output_0.pb"))
						if err == nil && len(want) == 1 {
							if err := conformance.Compare(got[name], exp, conformance.RTol, conformance.ATol); err != nil {
								t.Errorf("%s vs expected: %v", filepath.Base(set), err)
							}
						}
					}
				}
			}
		})
	}
}
