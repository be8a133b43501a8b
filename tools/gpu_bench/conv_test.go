package main

import (
	"strings"
	"testing"

	cudabackend "github.com/kilnml/kiln/backend/cuda"
	"github.com/kilnml/kiln/builder"
	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/quant/calib"
)

func TestParseConvSpec(t *testing.T) {
	sp, err := parseConvSpec("c=64, n=256,h=56,w=56,k=3,s=2,resid=1,act=none")
	if err != nil || sp != (convSpec{C: 64, N: 256, H: 56, W: 56, K: 3, S: 2, Resid: true}) {
		t.Fatalf("parsed %+v, %v", sp, err)
	}
	if sp, err := parseConvSpec("c=8,n=16,h=7,w=9"); err != nil || sp.K != 1 || sp.S != 1 || sp.Resid || sp.Act != "relu" {
		t.Fatalf("defaults: %+v, %v", sp, err)
	}
	for _, bad := range []string{"", "c=8", "c=8,n=16,h=7,w=9,q=1", "c=8,n=16,h=7,w=x", "c=8,n=16,h=2,w=9,k=3", "c=8,n=16,h=7,w=9,act=gelu", "c=-1,n=16,h=7,w=9"} {
		if _, err := parseConvSpec(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// The one-layer model builds and runs on the CPU engine in FP32 and INT8,
// with its batch dynamic, and the INT8 build quantizes the layer's output
// (the next conv reads codes, as in a CNN).
func TestConvModelBuilds(t *testing.T) {
	for _, sp := range []convSpec{{C: 16, N: 32, H: 9, W: 10, K: 3, S: 2, Resid: true, Act: "relu"}, {C: 8, N: 24, H: 6, W: 6, K: 1, S: 1}} {
		m := convModel(sp, 3)
		if err := m.Verify(); err != nil {
			t.Fatal(err)
		}
		convs := 0
		for _, n := range m.Graph.Nodes {
			if n.OpType == "Conv" {
				convs++
			}
		}
		if want := 2 + map[bool]int{true: 1}[sp.Resid]; convs != want {
			t.Fatalf("%+v: %d convs, want %d", sp, convs, want)
		}
		for _, int8 := range []bool{false, true} {
			cfg := builder.Config{INT8: int8, Deterministic: true}
			if int8 {
				cfg.Calibration = &builder.Calibration{Source: &cudabackend.RandomStream{Input: "x", Shape: []int64{2, int64(sp.C), int64(sp.H), int64(sp.W)}, Batches: 1}, Algorithm: calib.MinMax}
			}
			shape := []int64{3, int64(sp.C), int64(sp.H), int64(sp.W)}
			cfg.Profiles = []builder.Profile{{"x": {Min: []int64{1, shape[1], shape[2], shape[3]}, Opt: shape, Max: shape}}}
			p, _, err := builder.Build(m, nil, cfg)
			if err != nil {
				t.Fatalf("%+v int8=%v: %v", sp, int8, err)
			}
			if int8 {
				q := 0
				for _, s := range p.Steps {
					if strings.Contains(strings.ToLower(s.Kernel), "i8") || strings.Contains(string(s.Params), "y_scale") {
						q++
					}
				}
				t.Logf("%+v: %d of %d steps quantized", sp, q, len(p.Steps))
				if q == 0 {
					t.Errorf("%+v: the INT8 plan has no quantized step", sp)
				}
			}
			e, err := engine.NewEngine(p)
			if err != nil {
				t.Fatal(err)
			}
			ctx := e.NewContext()
			if err := ctx.SetInput("x", ir.NewTensor(ir.Float32, shape)); err != nil {
				t.Fatal(err)
			}
			if err := ctx.Execute(); err != nil {
				t.Fatalf("%+v int8=%v: %v", sp, int8, err)
			}
			y, err := ctx.Output("y")
			if err != nil || len(y.Dims) != 4 || y.Dims[0] != 3 || y.Dims[1] != 16 {
				t.Fatalf("%+v int8=%v: output %v, %v", sp, int8, y, err)
			}
		}
	}
}
