package main

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

	cudabackend "github.com/kilnml/kiln/backend/cuda"
	"github.com/kilnml/kiln/builder"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/quant/calib"
)

// convSpec is one convolution layer to benchmark alone (gpu_bench -conv):
// C → N channels over H×W, a K×K kernel with stride S and padding K/2, an
// optional residual and activation, as a ResNet layer has them.
type convSpec struct {
	C, N, H, W, K, S int
	Resid            bool
	Act              string // "relu" or "" (none)
}

// parseConvSpec reads "c=64,n=256,h=56,w=56,k=1,s=1,resid=1,act=relu";
// k and s default to 1, act to relu, resid to 0.
func parseConvSpec(s string) (convSpec, error) {
	sp := convSpec{K: 1, S: 1, Act: "relu"}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return sp, fmt.Errorf("conv spec %q: %q is not key=value", s, kv)
		}
		if k == "act" {
			if v != "relu" && v != "none" {
				return sp, fmt.Errorf("conv spec %q: act is relu or none, not %q", s, v)
			}
			sp.Act = map[string]string{"relu": "relu", "none": ""}[v]
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return sp, fmt.Errorf("conv spec %q: %s=%q is not a count", s, k, v)
		}
		switch k {
		case "c":
			sp.C = n
		case "n":
			sp.N = n
		case "h":
			sp.H = n
		case "w":
			sp.W = n
		case "k":
			sp.K = n
		case "s":
			sp.S = n
		case "resid":
			sp.Resid = n != 0
		default:
			return sp, fmt.Errorf("conv spec %q: unknown key %q (c, n, h, w, k, s, resid, act)", s, k)
		}
	}
	if sp.C < 1 || sp.N < 1 || sp.H < 1 || sp.W < 1 || sp.K < 1 || sp.S < 1 || sp.K > sp.H || sp.K > sp.W {
		return sp, fmt.Errorf("conv spec %q: c, n, h, w, k and s must be positive and k at most h and w", s)
	}
	return sp, nil
}

// convModel is the layer in a graph that gives it the neighbours it has in
// a CNN, so that a quantized build reads and writes codes as there:
// x → conv (K×K/S) [+ residual from a 1×1/S conv of x] [→ ReLU] → a 1×1
// conv to 16 channels → y. The batch is symbolic ("N").
func convModel(sp convSpec, seed uint64) *ir.Model {
	r := rand.New(rand.NewPCG(seed, 5))
	g := &ir.Graph{Name: fmt.Sprintf("conv%dx%d_s%d_c%d_n%d_%dx%d", sp.K, sp.K, sp.S, sp.C, sp.N, sp.H, sp.W)}
	init := func(name string, fanIn int, dims ...int64) string {
		t := ir.NewTensor(ir.Float32, dims)
		a := float32(math.Sqrt(3 / float64(fanIn))) // unit-variance outputs for unit-variance inputs
		for i := range t.F32() {
			t.F32()[i] = (2*r.Float32() - 1) * a
		}
		t.Name = name
		g.Initializers = append(g.Initializers, t)
		return name
	}
	node := func(op string, in []string, out string, attrs ...*ir.Attribute) {
		g.Nodes = append(g.Nodes, &ir.Node{Name: out, OpType: op, Inputs: in, Outputs: []string{out}, Attrs: attrs})
	}
	ints := func(name string, v ...int64) *ir.Attribute {
		return &ir.Attribute{Name: name, Type: ir.AttrInts, Ints: v}
	}
	c, n, k, s, p := int64(sp.C), int64(sp.N), int64(sp.K), int64(sp.S), int64(sp.K/2)
	x := ir.NewTensor(ir.Float32, []int64{1, c, int64(sp.H), int64(sp.W)})
	g.Inputs = []*ir.ValueInfo{{Name: "x", Type: x.Type()}}
	node("Conv", []string{"x", init("w", sp.C*sp.K*sp.K, n, c, k, k), init("b", 1, n)}, "conv",
		ints("kernel_shape", k, k), ints("strides", s, s), ints("pads", p, p, p, p))
	last := "conv"
	if sp.Resid {
		node("Conv", []string{"x", init("wr", sp.C, n, c, 1, 1)}, "resid", ints("kernel_shape", 1, 1), ints("strides", s, s))
		node("Add", []string{"conv", "resid"}, "sum")
		last = "sum"
	}
	if sp.Act == "relu" {
		node("Relu", []string{last}, "act")
		last = "act"
	}
	node("Conv", []string{last, init("wy", sp.N, 16, n, 1, 1)}, "y", ints("kernel_shape", 1, 1))
	g.Outputs = []*ir.ValueInfo{{Name: "y"}}
	m := &ir.Model{IRVersion: 8, Opsets: []ir.OpsetImport{{Domain: "", Version: 13}}, Graph: g}
	_ = cudabackend.BatchDynamic(m)
	return m
}

// convMain is gpu_bench -conv: the layer of spec built in prec (fp16,
// int8, fp8; calibrated MinMax on 4 random images), its tactics timed at
// batch, tactic (if set) the only channels-last tactic offered where it
// lowers, and every step's GPU time printed as -profile does. Under ncu
// the build launches few kernels, so one launch is quick to find.
func convMain(w io.Writer, spec, prec, tactic string, batch, iters int) error {
	sp, err := parseConvSpec(spec)
	if err != nil {
		return err
	}
	m := convModel(sp, 1)
	cfg := builder.Config{FP16: prec == "fp16", INT8: prec == "int8", FP8: prec == "fp8"}
	if cfg.INT8 || cfg.FP8 {
		cfg.Calibration = &builder.Calibration{Source: &cudabackend.RandomStream{Input: "x", Shape: []int64{4, int64(sp.C), int64(sp.H), int64(sp.W)}, Batches: 1}, Algorithm: calib.MinMax}
	}
	shape := []int64{int64(batch), int64(sp.C), int64(sp.H), int64(sp.W)}
	cfg.Profiles = []builder.Profile{{"x": {Min: []int64{1, shape[1], shape[2], shape[3]}, Opt: shape, Max: shape}}}
	cudabackend.OfferOnly(tactic)
	graphs := cudabackend.Graphs()
	cudabackend.SetGraphs(false)
	defer func() { cudabackend.OfferOnly(""); cudabackend.SetGraphs(graphs) }()
	return profileModel(w, m, "x", shape, cfg, fmt.Sprintf("%s %s tactic=%q", m.Graph.Name, prec, tactic), iters)
}
