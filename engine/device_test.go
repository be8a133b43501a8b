package engine

import (
	"slices"
	"testing"

	"github.com/kilnml/kiln/ir"
)

type fakeKernel struct{}

func (fakeKernel) Shapes(in []*ir.Tensor) ([][]int64, error)   { return nil, nil }
func (fakeKernel) Run(*Exec, []*ir.Tensor, []*ir.Tensor) error { return nil }

type fakeDevKernel struct {
	fakeKernel
	dev     string
	in, out []bool
}

func (k *fakeDevKernel) Device() string      { return k.dev }
func (k *fakeDevKernel) Link(in, out []bool) { k.in, k.out = in, out }

func TestLinkDevices(t *testing.T) {
	// v0 (input) → s0 (gpu) → v1 → s1 (gpu) → v2 → s2 (host) → v3
	//                          v1 → s3 (gpu) → v4 (engine output)
	//                          v1 → s4 (other device) → v5
	p := &Plan{Values: make([]Value, 6)}
	p.Values[4].Output = true
	p.Steps = []Step{
		{Inputs: []int{0}, Outputs: []int{1}},
		{Inputs: []int{1, -1}, Outputs: []int{2}},
		{Inputs: []int{2}, Outputs: []int{3}},
		{Inputs: []int{1}, Outputs: []int{4}},
		{Inputs: []int{1}, Outputs: []int{5}},
	}
	k := []*fakeDevKernel{{dev: "gpu"}, {dev: "gpu"}, nil, {dev: "gpu"}, {dev: "npu"}}
	kernels := []Kernel{k[0], k[1], fakeKernel{}, k[3], k[4]}
	linkDevices(p, kernels)
	check := func(i int, in, out []bool) {
		t.Helper()
		if !slices.Equal(k[i].in, in) || !slices.Equal(k[i].out, out) {
			t.Errorf("step %d: in %v out %v, want %v %v", i, k[i].in, k[i].out, in, out)
		}
	}
	check(0, []bool{false}, []bool{true}) // v1 is read by another device, through the host
	check(1, []bool{true, false}, []bool{true})
	check(3, []bool{true}, []bool{true})
	check(4, []bool{false}, []bool{false})
	// without the other device, v1 stays on the GPU
	p.Steps = p.Steps[:4]
	linkDevices(p, kernels[:4])
	check(0, []bool{false}, []bool{false})
}
