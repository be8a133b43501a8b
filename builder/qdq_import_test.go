package builder

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/internal/ortrun"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
)

func cosine(a, b *ir.Tensor) float64 {
	var ab, aa, bb float64
	for i := int64(0); i < a.Len(); i++ {
		x, y := a.Float64At(i), b.Float64At(i)
		ab += x * y
		aa += x * x
		bb += y * y
	}
	return ab / math.Sqrt(aa*bb)
}

func countPrecision(p *engine.Plan, prec string) int {
	n := 0
	for _, s := range p.Steps {
		if s.Precision == prec {
			n++
		}
	}
	return n
}

// Polygraphy's Q/DQ conv: explicit quantization gives an int8 layer whose
// output matches ONNX Runtime's (stored reference).
func TestExplicitQDQConv(t *testing.T) {
	shared := sharedDir(t)
	dir := filepath.Join(shared, "models", "polygraphy")
	m, err := onnx.Load(filepath.Join(dir, "qdq_conv.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	plan, rep, err := Build(m, nil, Config{})
	if err != nil {
		t.Fatal(err)
	}
	// Its activation is quantized per channel around a float-weight Conv, on
	// a constant input: the whole Q/DQ is folded at build time.
	t.Logf("int8 layers: %d; %v", countPrecision(plan, "int8"), rep.Warnings)
	want, err := onnx.ReadTensorFile(filepath.Join(dir, "ortref", "qdq_conv", "ortref_data_set_0", "output_0.pb"))
	if err != nil {
		t.Skip(err)
	}
	// The model has no inputs: its data are initializers.
	e, _ := engine.NewEngine(plan)
	out, err := e.NewContext().Run(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range out {
		if c := cosine(o, want); c < 0.9999 {
			t.Errorf("cosine vs ONNX Runtime %.6f", c)
		}
	}
}

// ONNX Runtime's own QDQ models (uint8 asymmetric activations, per-channel
// int8 weights) import as int8 engines whose outputs match ORT's.
func TestORTQDQModels(t *testing.T) {
	shared := sharedDir(t)
	if d, why := ortrun.Dir(); d == "" {
		t.Skip(why)
	}
	for _, c := range []struct {
		file  string
		shape []int64
		// float: for a Q/DQ transformer, whose FP32 layers kiln runs without
		// ONNX Runtime's fake quantization (passes.FloatTransformerQDQ), the
		// oracle is ONNX Runtime on the float model, at the INT8
		// bound (ONNX Runtime's own INT8 bert4 is at cosine 0.86 of it here).
		float string
	}{
		{"simplecnn.int8.qdq.onnx", []int64{4, 1, 28, 28}, ""},
		{"mobilenetv2.int8.qdq.onnx", []int64{1, 3, 224, 224}, ""},
		{"bert4.int8.qdq.onnx", []int64{1, 128, 256}, "bert4.fp32.onnx"},
	} {
		t.Run(c.file, func(t *testing.T) {
			path := filepath.Join(shared, "models", "bench", c.file)
			m, err := onnx.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			in := m.Graph.RealInputs()[0]
			plan, rep, err := Build(m, nil, Config{Profiles: []Profile{{in.Name: {c.shape, c.shape, c.shape}}}})
			if err != nil {
				t.Fatal(err)
			}
			if countPrecision(plan, "int8") == 0 {
				t.Fatalf("no int8 layer: %v", rep.Warnings)
			}
			t.Logf("%d int8 steps of %d; warnings: %q", countPrecision(plan, "int8"), len(plan.Steps), rep.Warnings)
			x := randomInput(ir.Float32, c.shape, 7)
			oracle, bound := path, 0.999
			if c.float != "" {
				oracle, bound = filepath.Join(shared, "models", "bench", c.float), 0.99
			}
			ort, _, err := ortrun.Run(oracle, []*ir.Tensor{x}, 1, 0)
			if err != nil {
				t.Fatal(err)
			}
			e, _ := engine.NewEngine(plan)
			got, err := e.NewContext().Run(map[string]*ir.Tensor{in.Name: x})
			if err != nil {
				t.Fatal(err)
			}
			for i, o := range m.Graph.Outputs {
				if cs := cosine(got[o.Name], ort[i]); cs < bound {
					t.Errorf("%s: cosine vs ONNX Runtime (%s) %.6f < %g", o.Name, filepath.Base(oracle), cs, bound)
				} else {
					t.Logf("%s: cosine vs ONNX Runtime (%s) %.6f", o.Name, filepath.Base(oracle), cs)
				}
			}
		})
	}
}
