package cudabackend

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/kilnml/kiln/builder"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/quant/calib"
)

// chainModel is a small CNN whose layers keep activations channels-last
// on the GPU: 1×1 conv + ReLU, depthwise 3×3 + ReLU, 3×3/2 max pool, 3×3
// conv + residual + ReLU (read by the host and by the next conv), 1×1
// conv 32 → 24, 3×3 conv 24 → 16 (int8: 24 channels padded to 32 or
// expanded along the kernel width), global average pool.
func chainModel(r *rand.Rand) *ir.Model {
	g := &ir.Graph{Name: "nhwc_chain"}
	init := func(name string, dims ...int64) string {
		t := ir.NewTensor(ir.Float32, dims)
		for i := range t.F32() {
			t.F32()[i] = r.Float32() - 0.5
		}
		t.Name = name
		g.Initializers = append(g.Initializers, t)
		return name
	}
	node := func(op string, in []string, out string, attrs ...*ir.Attribute) {
		g.Nodes = append(g.Nodes, &ir.Node{Name: out, OpType: op, Inputs: in, Outputs: []string{out}, Attrs: attrs})
	}
	x := ir.NewTensor(ir.Float32, []int64{2, 16, 12, 12})
	g.Inputs = []*ir.ValueInfo{{Name: "x", Type: x.Type()}}
	node("Conv", []string{"x", init("w1", 32, 16, 1, 1), init("b1", 32)}, "c1")
	node("Relu", []string{"c1"}, "r1")
	node("Conv", []string{"r1", init("w2", 32, 1, 3, 3), init("b2", 32)}, "c2", intA("group", 32), ints("pads", 1, 1, 1, 1))
	node("Relu", []string{"c2"}, "r2")
	node("MaxPool", []string{"r2"}, "p", ints("kernel_shape", 3, 3), ints("strides", 2, 2), ints("pads", 1, 1, 1, 1))
	node("Conv", []string{"p", init("w3", 32, 32, 3, 3), init("b3", 32)}, "c3", ints("pads", 1, 1, 1, 1))
	node("Add", []string{"c3", "p"}, "a")
	node("Relu", []string{"a"}, "r3")
	node("Conv", []string{"r3", init("w4", 24, 32, 1, 1)}, "c4")
	// int8: 24 channels padded to 32, or expanded along the kernel width (72 → 80), from NHWC
	node("Conv", []string{"c4", init("w5", 16, 24, 3, 3)}, "c5", ints("pads", 1, 1, 1, 1))
	node("GlobalAveragePool", []string{"c5"}, "y")
	g.Outputs = []*ir.ValueInfo{{Name: "y"}, {Name: "r3"}}
	return &ir.Model{IRVersion: 8, Opsets: []ir.OpsetImport{{Domain: "", Version: 13}}, Graph: g}
}

// The chain on the GPU (channels-last between the CUDA steps, NCHW for the
// host-read r3) agrees with the CPU engine in FP16 and INT8, with the NHWC
// tactics on and off.
func TestNHWCChainOnGPU(t *testing.T) {
	needGPU(t)
	shape := []int64{2, 16, 12, 12}
	was := NHWC()
	defer SetNHWC(was)
	for _, on := range []bool{true, false} {
		for _, c := range []struct {
			prec  string
			cfg   builder.Config
			bound float64
		}{{"fp16", builder.Config{FP16: true}, 1e-4}, {"int8", builder.Config{INT8: true}, 1e-2}} {
			SetNHWC(on)
			m := chainModel(rand.New(rand.NewPCG(3, 4)))
			cfg := c.cfg
			cfg.Profiles = []builder.Profile{{"x": {Min: shape, Opt: shape, Max: shape}}}
			calibrate := func() {
				if cfg.INT8 {
					cfg.Calibration = &builder.Calibration{Source: &RandomStream{Input: "x", Shape: shape, Batches: 1}, Algorithm: calib.MinMax}
				}
			}
			calibrate()
			gpu := buildOn(t, true, m, cfg)
			calibrate()
			cpu := buildOn(t, false, m, cfg)
			x := randTensor(rand.New(rand.NewPCG(5, 6)), ir.Float32, shape)
			for i, v := range x.F32() {
				x.F32()[i] = (v + 2) / 4
			}
			gctx := gpu.NewContext()
			var worst float64
			for run := 0; run < 3; run++ { // eager, capture, replay
				gout, err := gctx.Run(map[string]*ir.Tensor{"x": x})
				if err != nil {
					t.Fatal(err)
				}
				cout, err := cpu.NewContext().Run(map[string]*ir.Tensor{"x": x})
				if err != nil {
					t.Fatal(err)
				}
				for k, v := range gout {
					e := nmse(v, cout[k])
					if math.IsNaN(e) || e > c.bound {
						t.Errorf("nhwc=%v %s run %d: output %s NMSE %.3g > %g", on, c.prec, run, k, e, c.bound)
					}
					worst = max(worst, e)
				}
			}
			var tacs []string
			for _, s := range gpu.Plan().Steps {
				if strings.HasPrefix(s.Kernel, "cuda.") {
					tacs = append(tacs, s.Tactic)
				}
			}
			n, total := cudaSteps(gpu)
			t.Logf("nhwc=%v %s: %d/%d steps on the GPU, worst NMSE %.3g; tactics %s", on, c.prec, n, total, worst, tacticCounts(tacs))
			if n != total {
				t.Errorf("nhwc=%v %s: %d of %d steps are not on the GPU", on, c.prec, total-n, total)
			}
		}
	}
}

// The chain model builds and runs on the CPU (no GPU needed): the test
// above depends on it.
func TestChainModelOnCPU(t *testing.T) {
	m := chainModel(rand.New(rand.NewPCG(3, 4)))
	shape := []int64{2, 16, 12, 12}
	e := buildOn(t, false, m, builder.Config{FP16: true, Profiles: []builder.Profile{{"x": {Min: shape, Opt: shape, Max: shape}}}})
	out, err := e.NewContext().Run(map[string]*ir.Tensor{"x": ir.NewTensor(ir.Float32, shape)})
	if err != nil {
		t.Fatal(err)
	}
	if y := out["y"]; y == nil || y.Len() != 2*16 {
		t.Fatalf("outputs %v", out)
	}
}
