package engine

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/kilnml/kiln/ir"
)

// addKernel computes out = in[0] + c (+ in[1] when present), float32.
type addKernel struct{ c float32 }

func (k addKernel) Shapes(in []*ir.Tensor) ([][]int64, error) { return [][]int64{in[0].Dims}, nil }
func (k addKernel) Run(_ *Exec, in, out []*ir.Tensor) error {
	o := out[0].F32()
	for i, v := range in[0].F32() {
		o[i] = v + k.c
		if len(in) > 1 && in[1] != nil {
			o[i] += in[1].F32()[i]
		}
	}
	return nil
}

func init() {
	RegisterKernel("test.add", func(p []byte, _ []*ir.Tensor) (Kernel, error) {
		var c float32
		if err := json.Unmarshal(p, &c); err != nil {
			return nil, err
		}
		return addKernel{c}, nil
	})
}

// chainPlan: x -> a=x+1 -> b=a+2 -> c=b+3 -> d=c+a (a lives long) -> output d.
func chainPlan(t testing.TB) *Plan {
	shape := ir.Shape{ir.Sym("n"), ir.D(4)}
	p := &Plan{Meta: Meta{Kiln: "test"}}
	for _, n := range []string{"x", "a", "b", "c", "d"} {
		p.Values = append(p.Values, Value{Name: n, DType: ir.Float32, Shape: shape, Weight: -1})
	}
	step := func(name string, c float32, in []int, out int) Step {
		b, _ := json.Marshal(c)
		return Step{Name: name, Kernel: "test.add", Params: b, Inputs: in, Outputs: []int{out}, Precision: "fp32"}
	}
	p.Steps = []Step{step("s1", 1, []int{0}, 1), step("s2", 2, []int{1}, 2), step("s3", 3, []int{2}, 3), step("s4", 0, []int{3, 1}, 4)}
	p.Values[4].Output = true
	p.Inputs = []Binding{{Name: "x", Value: 0, DType: ir.Float32, Shape: shape}}
	p.Outputs = []Binding{{Name: "d", Value: 4, DType: ir.Float32, Shape: shape}}
	p.Profiles = []Profile{{Min: map[string][]int64{"x": {1, 4}}, Opt: map[string][]int64{"x": {2, 4}}, Max: map[string][]int64{"x": {8, 4}}}}
	if err := PlanMemory(p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMemoryPlanReusesDeadValues(t *testing.T) {
	p := chainPlan(t)
	pr := p.Profiles[0]
	if pr.ArenaSize >= pr.NaiveSize {
		t.Errorf("arena %d not smaller than naive %d", pr.ArenaSize, pr.NaiveSize)
	}
	first, last := lifetimes(p)
	for i := 1; i < len(p.Values); i++ {
		for j := i + 1; j < len(p.Values); j++ {
			overlapLife := first[i] <= last[j] && first[j] <= last[i]
			a0, a1 := pr.Offsets[i], pr.Offsets[i]+pr.Sizes[i]
			b0, b1 := pr.Offsets[j], pr.Offsets[j]+pr.Sizes[j]
			if overlapLife && a0 < b1 && b0 < a1 {
				t.Errorf("values %s and %s are live together but share memory", p.Values[i].Name, p.Values[j].Name)
			}
		}
	}
}

func run(t testing.TB, ctx *Context, n int64, v float32) []float32 {
	x := ir.NewTensor(ir.Float32, []int64{n, 4})
	for i := range x.F32() {
		x.F32()[i] = v
	}
	out, err := ctx.Run(map[string]*ir.Tensor{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	return out["d"].F32()
}

func TestExecuteAndReshape(t *testing.T) {
	e, err := NewEngine(chainPlan(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := e.NewContext()
	for _, n := range []int64{2, 8, 1, 5} {
		got := run(t, ctx, n, 10)
		// d = (x+1+2+3) + (x+1) = 2x + 7
		if len(got) != int(n)*4 || got[0] != 27 {
			t.Fatalf("batch %d: %v", n, got)
		}
	}
	x := ir.NewTensor(ir.Float32, []int64{9, 4})
	if _, err := ctx.Run(map[string]*ir.Tensor{"x": x}); err == nil || !strings.Contains(err.Error(), "fit no optimization profile") {
		t.Errorf("batch 9: %v", err)
	}
	if _, err := ctx.Run(map[string]*ir.Tensor{"y": x}); err == nil || !strings.Contains(err.Error(), `"y" is not an input`) {
		t.Errorf("unknown input: %v", err)
	}
	if _, err := ctx.Run(map[string]*ir.Tensor{"x": ir.NewTensor(ir.Float64, []int64{2, 4})}); err == nil {
		t.Error("float64 input accepted")
	}
}

func TestContextsInParallel(t *testing.T) {
	e, err := NewEngine(chainPlan(t))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			ctx := e.NewContext()
			for i := 0; i < 50; i++ {
				got := run(t, ctx, int64(1+i%8), float32(g))
				if got[0] != 2*float32(g)+7 {
					t.Errorf("goroutine %d: %v", g, got[0])
					return
				}
			}
		}(g)
	}
	wg.Wait()
}

func TestPlanFileRoundTripAndCorruption(t *testing.T) {
	p := chainPlan(t)
	p.Weights = []*ir.Tensor{ir.FromFloat32s([]int64{3}, []float32{1, 2, 3})}
	p.Weights[0].Name = "w"
	data, err := p.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	buf := ir.AlignedBytes(int64(len(data)))
	copy(buf, data)
	q, err := DeserializePlan(buf)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(p.Steps)
	b, _ := json.Marshal(q.Steps)
	if !bytes.Equal(a, b) || len(q.Weights) != 1 || q.Weights[0].F32()[2] != 3 {
		t.Fatal("round trip changed the plan")
	}
	var fe *FormatError
	for i := 16; i < len(data); i += 97 {
		bad := append([]byte(nil), data...)
		bad[i] ^= 0x5a
		if _, err := DeserializePlan(bad); err == nil || !errors.As(err, &fe) {
			t.Fatalf("flipping byte %d: %v", i, err)
		}
	}
	for _, n := range []int{0, 10, 16, 100, len(data) / 2, len(data) - 1} {
		if _, err := DeserializePlan(data[:n]); err == nil || !errors.As(err, &fe) {
			t.Fatalf("truncated at %d: %v", n, err)
		}
	}
	newer := append([]byte(nil), data...)
	binary.LittleEndian.PutUint32(newer[8:], FormatVersion+1)
	if _, err := DeserializePlan(newer); err == nil || !strings.Contains(err.Error(), "not readable by this kiln") {
		t.Errorf("newer version: %v", err)
	}
	// Version-1 plans (before layers could carry a fused pool) still load.
	older := append([]byte(nil), data...)
	binary.LittleEndian.PutUint32(older[8:], 1)
	sum := sha256.Sum256(older[:len(older)-44])
	copy(older[len(older)-32:], sum[:])
	if _, err := DeserializePlan(older); err != nil {
		t.Errorf("version 1: %v", err)
	}
	if _, err := DeserializePlan([]byte("PK\x03\x04 this is a zip file, not a plan")); err == nil || !strings.Contains(err.Error(), "bad magic") {
		t.Errorf("foreign file: %v", err)
	}
}

func TestUnknownKernel(t *testing.T) {
	p := chainPlan(t)
	p.Steps[1].Kernel = "cpu.quantum.v9"
	if _, err := NewEngine(p); err == nil || !strings.Contains(err.Error(), `"cpu.quantum.v9" is not available`) {
		t.Errorf("got %v", err)
	}
}

func BenchmarkExecute(b *testing.B) {
	e, err := NewEngine(chainPlan(b))
	if err != nil {
		b.Fatal(err)
	}
	ctx := e.NewContext()
	x := ir.NewTensor(ir.Float32, []int64{8, 4})
	if err := ctx.SetInput("x", x); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := ctx.Execute(); err != nil {
			b.Fatal(err)
		}
	}
}
