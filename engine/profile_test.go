package engine

import (
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/kilnml/kiln/ir"
)

// addOne is a tiny kernel for the profiler test: y = x + 1 on float32.
type addOne struct{}

func (addOne) Shapes(in []*ir.Tensor) ([][]int64, error) { return [][]int64{in[0].Dims}, nil }
func (addOne) Run(_ *Exec, in, out []*ir.Tensor) error {
	// Byte-wise, because the typed views allocate and the allocation test
	// below is about Execute itself.
	x, y := in[0].Data, out[0].Data
	for i := 0; i+4 <= len(x); i += 4 {
		v := math.Float32frombits(binary.LittleEndian.Uint32(x[i:]))
		binary.LittleEndian.PutUint32(y[i:], math.Float32bits(v+1))
	}
	return nil
}

func init() {
	RegisterKernel("enginetest.profile.addone", func([]byte, []*ir.Tensor) (Kernel, error) { return addOne{}, nil })
}

// twoSteps is x -> a -> y, both steps addOne, for inputs of shape [n].
func twoSteps(t *testing.T) *Engine {
	t.Helper()
	shape := ir.Shape{ir.Sym("n")}
	p := &Plan{
		Values: []Value{
			{Name: "x", DType: ir.Float32, Shape: shape, Weight: -1},
			{Name: "a", DType: ir.Float32, Shape: shape, Weight: -1},
			{Name: "y", DType: ir.Float32, Shape: shape, Weight: -1, Output: true},
		},
		Steps: []Step{
			{Name: "first", Kernel: "enginetest.profile.addone", Inputs: []int{0}, Outputs: []int{1}},
			{Name: "second", Kernel: "enginetest.profile.addone", Inputs: []int{1}, Outputs: []int{2}},
		},
		Inputs:   []Binding{{Name: "x", Value: 0, DType: ir.Float32, Shape: shape}},
		Outputs:  []Binding{{Name: "y", Value: 2, DType: ir.Float32, Shape: shape}},
		Profiles: []Profile{{Min: map[string][]int64{"x": {1}}, Opt: map[string][]int64{"x": {4}}, Max: map[string][]int64{"x": {8}}}},
	}
	if err := PlanMemory(p); err != nil {
		t.Fatal(err)
	}
	e, err := NewEngine(p)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

type stepLog struct {
	steps []int
	total time.Duration
}

func (l *stepLog) StepDone(step int, d time.Duration) {
	l.steps = append(l.steps, step)
	if d < 0 {
		panic("negative step time")
	}
	l.total += d
}

func TestProfilerSeesEveryStep(t *testing.T) {
	c := twoSteps(t).NewContext()
	x := ir.FromFloat32s([]int64{4}, []float32{1, 2, 3, 4})
	if err := c.SetInput("x", x); err != nil {
		t.Fatal(err)
	}
	var log stepLog
	c.SetProfiler(&log)
	for range 3 {
		if err := c.Execute(); err != nil {
			t.Fatal(err)
		}
	}
	want := []int{0, 1, 0, 1, 0, 1}
	if len(log.steps) != len(want) {
		t.Fatalf("profiler saw steps %v, want %v", log.steps, want)
	}
	for i := range want {
		if log.steps[i] != want[i] {
			t.Fatalf("profiler saw steps %v, want %v", log.steps, want)
		}
	}
	y, _ := c.Output("y")
	if got := y.F32(); got[0] != 3 || got[3] != 6 {
		t.Fatalf("y = %v", got)
	}
	// Removing the profiler stops the reports.
	c.SetProfiler(nil)
	if err := c.Execute(); err != nil {
		t.Fatal(err)
	}
	if len(log.steps) != len(want) {
		t.Fatalf("a removed profiler was called: %v", log.steps)
	}
}

func TestNoProfilerNoAllocs(t *testing.T) {
	c := twoSteps(t).NewContext()
	x := ir.FromFloat32s([]int64{8}, make([]float32, 8))
	if err := c.SetInput("x", x); err != nil {
		t.Fatal(err)
	}
	if err := c.Execute(); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(20, func() { c.Execute() }); n != 0 {
		t.Fatalf("Execute allocates %v times per run without a profiler", n)
	}
}
