package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	cudabackend "github.com/kilnml/kiln/backend/cuda"
	"github.com/kilnml/kiln/builder"
	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
)

// gpuProfiler records each step's GPU compute time: with
// cudabackend.SetStepSync every eager step waits for the GPU and accounts
// its events, so the growth of ReadTiming().Compute between two StepDone
// calls is that step's GPU time.
type gpuProfiler struct {
	last time.Duration
	gpu  [][]float64 // per step, ms
	host [][]float64
}

func (p *gpuProfiler) StepDone(si int, d time.Duration) {
	c := cudabackend.ReadTiming().Compute
	p.gpu[si] = append(p.gpu[si], float64(c-p.last)/1e6)
	p.host[si] = append(p.host[si], float64(d)/1e6)
	p.last = c
}

// stepDesc summarizes a step's geometry from its params (GEMM/conv: kernel
// size, stride, groups, N, K, residual; ops: their kind).
func stepDesc(s engine.Step) (desc, class string) {
	var m map[string]any
	_ = json.Unmarshal(s.Params, &m)
	num := func(k string) int { v, _ := m[k].(float64); return int(v) }
	switch s.Kernel {
	case cudabackend.KernelGemm:
		if c, _ := m["conv"].(bool); !c {
			return fmt.Sprintf("gemm N=%d K=%d", num("N"), num("K")), "gemm"
		}
		g := max(num("Groups"), 1)
		z := ""
		if h, _ := m["HasZ"].(bool); h {
			z = " +resid"
		}
		desc = fmt.Sprintf("conv %dx%d/s%d g%d N=%d K=%d%s", num("KH"), num("KW"), num("SH"), g, num("N"), num("K"), z)
		class = fmt.Sprintf("conv %dx%d", num("KH"), num("KW"))
		if g > 1 {
			class += " grouped"
		}
		return desc, class
	case cudabackend.KernelOp:
		k, _ := m["kind"].(string)
		return k, "op " + k
	}
	return s.Kernel, "host " + s.Kernel
}

// profileCNNs builds ResNet-50 light and mobilenetv2 in the precisions
// given, with the channels-last tactics off and/or on (nhwc), and prints
// every step's median GPU time at batch (graphs off, each step
// synchronized), then a summary by class. Lines go to w.
func profileCNNs(w io.Writer, models string, batch, iters int, precs []string, nhwc []bool) {
	graphs, was := cudabackend.Graphs(), cudabackend.NHWC()
	cudabackend.SetGraphs(false)
	defer func() { cudabackend.SetGraphs(graphs); cudabackend.SetNHWC(was) }()
	for _, c := range []struct{ bench, file string }{
		{"resnet50", "onnx-light-cnns/resnet50/model.onnx"},
		{"mobilenetv2", "bench/mobilenetv2.fp32.onnx"},
	} {
		for _, prec := range precs {
			for _, on := range nhwc {
				cudabackend.SetNHWC(on)
				if err := profileOne(w, filepath.Join(models, c.file), c.bench, prec, batch, iters); err != nil {
					fmt.Fprintf(w, "%s %s nhwc=%v: %v\n", c.bench, prec, on, err)
				}
			}
		}
	}
}

func profileOne(w io.Writer, path, bench, prec string, batch, iters int) error {
	m, input, shape, cfg, err := cnnSetup(path, bench, prec, batch)
	if err != nil {
		return err
	}
	return profileModel(w, m, input, shape, cfg, fmt.Sprintf("%s %s nhwc=%v", bench, prec, cudabackend.NHWC()), iters)
}

// profileModel builds m with cfg and prints every step's median GPU time
// over iters runs at shape (graphs off, each step synchronized), then a
// summary by class, under label.
func profileModel(w io.Writer, m *ir.Model, input string, shape []int64, cfg builder.Config, label string, iters int) error {
	batch := shape[0]
	if tacticLog != nil {
		cfg.Log = func(format string, args ...any) {
			if line := fmt.Sprintf(format, args...); strings.Contains(line, "tactic") {
				fmt.Fprintf(tacticLog, "%s: %s\n", label, line)
			}
		}
	}
	p, _, err := builder.Build(m, nil, cfg)
	if err != nil {
		return err
	}
	e, err := engine.NewEngine(p)
	if err != nil {
		return err
	}
	// per-step waits only now: the build's tactic timer reads the
	// pending steps' events itself
	cudabackend.SetStepSync(true)
	defer cudabackend.SetStepSync(false)
	ctx := e.NewContext()
	x := ir.NewTensor(ir.Float32, shape)
	rng := rand.New(rand.NewPCG(1, 1))
	for i := range x.F32() {
		x.F32()[i] = rng.Float32()
	}
	if err := ctx.SetInput(input, x); err != nil {
		return err
	}
	for range 2 {
		if err := ctx.Execute(); err != nil {
			return err
		}
	}
	pr := &gpuProfiler{gpu: make([][]float64, len(p.Steps)), host: make([][]float64, len(p.Steps))}
	ctx.SetProfiler(pr)
	for range iters {
		pr.last = cudabackend.ReadTiming().Compute
		if err := ctx.Execute(); err != nil {
			return err
		}
	}
	ctx.SetProfiler(nil)
	type agg struct {
		ms float64
		n  int
	}
	classes := map[string]*agg{}
	var total float64
	fmt.Fprintf(w, "\n=== profile %s batch %d (median GPU ms per step over %d runs; host ms in brackets)\n", label, batch, iters)
	for si, s := range p.Steps {
		if len(pr.gpu[si]) == 0 {
			continue
		}
		g, h := median(pr.gpu[si]), median(pr.host[si])
		desc, class := stepDesc(s)
		class += " [" + s.Tactic + "]"
		if classes[class] == nil {
			classes[class] = &agg{}
		}
		classes[class].ms += g
		classes[class].n++
		total += g
		fmt.Fprintf(w, "%8.3f (%7.3f) %-14s %-40s %s\n", g, h, s.Tactic, desc, trunc(s.Name, 60))
	}
	var names []string
	for k := range classes {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return classes[names[i]].ms > classes[names[j]].ms })
	fmt.Fprintf(w, "--- %s by class (total %.2f ms GPU)\n", label, total)
	for _, k := range names {
		fmt.Fprintf(w, "%8.3f ms %5.1f%% %3d× %s\n", classes[k].ms, 100*classes[k].ms/total, classes[k].n, k)
	}
	return nil
}

func trunc(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// profileMain is gpu_bench -profile: the per-step tables go to stdout and,
// when out is set, to that file too.
func profileMain(models, out string, batch, iters int, precs string, nhwc []bool) {
	var w io.Writer = os.Stdout
	if out != "" {
		if f, err := os.Create(out); err == nil {
			defer f.Close()
			w = io.MultiWriter(os.Stdout, f)
		}
	}
	profileCNNs(w, models, batch, iters, strings.Split(precs, ","), nhwc)
}

// nhwcSettings parses -nhwc: on, off or both (off first).
func nhwcSettings(v string) []bool {
	switch v {
	case "off":
		return []bool{false}
	case "both":
		return []bool{false, true}
	}
	return []bool{true}
}
