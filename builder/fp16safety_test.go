package builder

import (
	"strings"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
	"github.com/kilnml/kiln/quant/calib"
)

// x -> Mul(big) -> y -> Relu -> z -> Mul(tiny) -> w -> Identity -> out
func fp16RiskModel() *ir.Model {
	big := ir.FromFloat32s(nil, []float32{5000})
	big.Name = "big"
	tiny := ir.FromFloat32s(nil, []float32{1e-9})
	tiny.Name = "tiny"
	g := &ir.Graph{
		Inputs:       []*ir.ValueInfo{{Name: "x", Type: ir.TensorType(ir.Float32, ir.Shape{ir.Dim{Value: 4}})}},
		Outputs:      []*ir.ValueInfo{{Name: "out"}},
		Initializers: []*ir.Tensor{big, tiny},
		Nodes: []*ir.Node{
			{Name: "scale_up", OpType: "Mul", Inputs: []string{"x", "big"}, Outputs: []string{"y"}},
			{Name: "relu", OpType: "Relu", Inputs: []string{"y"}, Outputs: []string{"z"}},
			{Name: "scale_down", OpType: "Mul", Inputs: []string{"x", "tiny"}, Outputs: []string{"w"}},
			{Name: "copy", OpType: "Identity", Inputs: []string{"w"}, Outputs: []string{"out"}},
		},
	}
	return &ir.Model{IRVersion: 8, Opsets: []ir.OpsetImport{{Domain: "", Version: 13}}, Graph: g}
}

func TestFP16UnsafeLayers(t *testing.T) {
	m := fp16RiskModel()
	sess, err := ops.NewSession(m)
	if err != nil {
		t.Fatal(err)
	}
	x := ir.FromFloat32s([]int64{4}, []float32{1, -2, 3, 0.5})
	st, err := calib.Collect(sess, &calib.SliceStream{Batches: []map[string]*ir.Tensor{{"x": x}}}, calib.CollectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// y = 5000·x reaches 15000: fits FP16 but not with margin 8.
	layers, risks := FP16UnsafeLayers(m, st, FP16SafetyOptions{})
	if got := strings.Join(layers, ","); got != "copy,scale_down" {
		t.Fatalf("default margin: layers %s, risks %v", got, risks)
	}
	if len(risks) != 2 || risks[0].Tensor != "out" && risks[0].Tensor != "w" || risks[0].Overflow {
		t.Fatalf("risks %+v", risks)
	}
	layers, risks = FP16UnsafeLayers(m, st, FP16SafetyOptions{Margin: 8})
	if got := strings.Join(layers, ","); got != "copy,relu,scale_down,scale_up" {
		t.Fatalf("margin 8: layers %s", got)
	}
	over := 0
	for _, r := range risks {
		if r.Overflow {
			over++
			if !strings.Contains(r.String(), "overflow") || r.AbsMax != 15000 {
				t.Errorf("%s", r)
			}
		}
	}
	if over != 2 { // y and z
		t.Fatalf("risks %v", risks)
	}
}
