package builder

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/kilnml/kiln/backend/cpu"
	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
)

// devtestBackend stands for a GPU backend: it offers one slow tactic for
// the layers named devtest_*, and says it is exclusive while exclusive is
// set (the test runs both ways, so that it can fail).
type devtestBackend struct{ exclusive *atomic.Bool }

func (devtestBackend) Name() string      { return "devtest" }
func (devtestBackend) Priority() int     { return 40 }
func (b devtestBackend) Exclusive() bool { return b.exclusive.Load() }

func (devtestBackend) Tactics(l *engine.Layer) []engine.Tactic {
	if !strings.HasPrefix(l.Node.Name, "devtest_") {
		return nil
	}
	return []engine.Tactic{devtestTactic{}}
}

type devtestTactic struct{}

func (devtestTactic) Name() string { return "slowrelu" }
func (devtestTactic) Lower(*engine.Layer) (*engine.Lowered, error) {
	return &engine.Lowered{Kernel: "builder.test.slowrelu"}, nil
}

// slowRelu is Relu that takes 2 ms more than any CPU tactic for a tiny
// tensor: timing alone would never pick it.
type slowRelu struct{}

func (slowRelu) Shapes(in []*ir.Tensor) ([][]int64, error) { return [][]int64{in[0].Dims}, nil }
func (slowRelu) Run(_ *engine.Exec, in, out []*ir.Tensor) error {
	time.Sleep(2 * time.Millisecond)
	o := out[0].F32()
	for i, v := range in[0].F32() {
		o[i] = max(v, 0)
	}
	return nil
}

var devtestExclusive atomic.Bool

func init() {
	engine.RegisterKernel("builder.test.slowrelu", func([]byte, []*ir.Tensor) (engine.Kernel, error) { return slowRelu{}, nil })
	engine.RegisterBackend(devtestBackend{&devtestExclusive})
}

// A layer an exclusive (device) backend offers tactics for stays with it,
// however its timing compares with the CPU's; a non-exclusive backend's
// slower tactic loses the timing.
func TestExclusiveBackendKeepsItsLayers(t *testing.T) {
	m := &ir.Model{IRVersion: 8, Opsets: []ir.OpsetImport{{Version: 13}}, Graph: &ir.Graph{
		Name:   "net",
		Inputs: []*ir.ValueInfo{{Name: "x", Type: ir.TensorType(ir.Float32, ir.Shape{ir.D(2), ir.D(8)})}},
		Nodes: []*ir.Node{
			{Name: "devtest_relu", OpType: "Relu", Inputs: []string{"x"}, Outputs: []string{"y"}},
		},
		Outputs: []*ir.ValueInfo{{Name: "y"}},
	}}
	defer devtestExclusive.Store(false)
	for _, exclusive := range []bool{false, true} {
		devtestExclusive.Store(exclusive)
		plan, _, err := Build(m, nil, Config{})
		if err != nil {
			t.Fatal(err)
		}
		var kernel string
		for _, s := range plan.Steps {
			if s.Name == "devtest_relu" {
				kernel = s.Kernel
			}
		}
		if onDev := kernel == "builder.test.slowrelu"; onDev != exclusive {
			t.Errorf("exclusive=%v: devtest_relu runs %q", exclusive, kernel)
		}
		x := randomInput(ir.Float32, []int64{2, 8}, 1)
		y := runPlan(t, plan, map[string]*ir.Tensor{"x": x})
		for i, v := range x.F32() {
			if y.F32()[i] != max(v, 0) {
				t.Fatalf("exclusive=%v: y[%d] = %v, want relu(%v)", exclusive, i, y.F32()[i], v)
			}
		}
	}
}

// A plan with device layers warns about every layer left on the host
// (each costs a copy each way) and only then.
func TestHostLayersBetweenDeviceLayersWarned(t *testing.T) {
	relu := func(name, in, out string) *ir.Node {
		return &ir.Node{Name: name, OpType: "Relu", Inputs: []string{in}, Outputs: []string{out}}
	}
	model := func(nodes ...*ir.Node) *ir.Model {
		return &ir.Model{IRVersion: 8, Opsets: []ir.OpsetImport{{Version: 13}}, Graph: &ir.Graph{
			Name:    "net",
			Inputs:  []*ir.ValueInfo{{Name: "x", Type: ir.TensorType(ir.Float32, ir.Shape{ir.D(2), ir.D(8)})}},
			Nodes:   nodes,
			Outputs: []*ir.ValueInfo{{Name: "y"}},
		}}
	}
	mixed := model(relu("devtest_a", "x", "a"), &ir.Node{Name: "host_sigmoid", OpType: "Sigmoid", Inputs: []string{"a"}, Outputs: []string{"b"}},
		relu("devtest_c", "b", "y"))
	allDevice := model(relu("devtest_a", "x", "y"))
	defer devtestExclusive.Store(false)
	for _, c := range []struct {
		name      string
		m         *ir.Model
		exclusive bool
		warn      bool
	}{{"mixed, device", mixed, true, true}, {"mixed, no device", mixed, false, false}, {"all on the device", allDevice, true, false}} {
		devtestExclusive.Store(c.exclusive)
		_, rep, err := Build(c.m, nil, Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %q", c.name, rep.Warnings)
		var got string
		for _, w := range rep.Warnings {
			if strings.Contains(w, "run on the CPU") {
				got = w
			}
		}
		if (got != "") != c.warn || (c.warn && !strings.Contains(got, "1 of 3 layers") || c.warn && !strings.Contains(got, "host_sigmoid (Sigmoid")) {
			t.Errorf("%s: placement warning %q (want one: %v)", c.name, got, c.warn)
		}
	}
}
