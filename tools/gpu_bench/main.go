// Command gpu_bench measures kiln's CUDA backend on the machine's GPU:
// cuBLASLt GEMMs at 8192³ (bf16, int8 IMMA, fp8 E4M3) and SimpleCNN
// engines (FP32, FP16, INT8) at batch 256 and 4096, with trtexec's split of
// H2D, GPU compute and D2H time. It prints one JSON object per line for
// tools/gpu_bench.py, which runs PyTorch in the same call and prints the
// table.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	// the CPU backends build what the GPU does not implement, as in the
	// kiln command (before session 11 this tool linked none, so its plans
	// never showed the CPU winning a GPU layer's timing: see
	// engine.ExclusiveBackend)
	_ "github.com/kilnml/kiln/backend/cpu"
	cudabackend "github.com/kilnml/kiln/backend/cuda"
	"github.com/kilnml/kiln/builder"
	"github.com/kilnml/kiln/datasrc"
	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/floatx"
	"github.com/kilnml/kiln/gpu/cuda"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
	"github.com/kilnml/kiln/quant/calib"
)

// tacticLog receives the builds' tactic timing lines (-tacticlog).
var tacticLog io.Writer

type result struct {
	Bench  string  `json:"bench"`
	Prec   string  `json:"prec"`
	Batch  int     `json:"batch,omitempty"`
	MS     float64 `json:"ms"`               // median end-to-end per run
	TFLOPS float64 `json:"tflops,omitempty"` // GEMMs
	H2D    float64 `json:"h2d_ms,omitempty"`
	GPU    float64 `json:"gpu_ms,omitempty"`
	D2H    float64 `json:"d2h_ms,omitempty"`
	// host time copying between Go memory and pinned staging
	Staging float64 `json:"staging_ms,omitempty"`
	Steps   string  `json:"steps,omitempty"`
	Build   float64 `json:"build_s,omitempty"`  // engine build time, tactic timing included
	Tacs    string  `json:"tactics,omitempty"`  // convolution tactics chosen
	Shape   string  `json:"shape,omitempty"`    // GEMMs: M×N×K
	Acc     float64 `json:"accuracy,omitempty"` // MNIST: top-1 % on the test set
	Images  int     `json:"images,omitempty"`
	Err     string  `json:"error,omitempty"`
}

func emit(r result) {
	b, _ := json.Marshal(r)
	fmt.Println(string(b))
}

func main() {
	models := flag.String("models", "", "folder holding bench/simplecnn.{fp32,int8.qdq}.onnx")
	mnistDir := flag.String("mnist", "", "MNIST idx files for INT8/FP8 calibration (default: the GoMNIST module)")
	extra := flag.Bool("extra", false, "also ResNet-50 light (random weights) and mobilenetv2 at batch 256 in FP32, FP16, INT8 and FP8, and MNIST (zoo) accuracy on the GPU")
	shapes := flag.Bool("shapes", false, "also FP8 and BF16 GEMMs at bert4's MatMul shapes and ResNet-50's conv-as-GEMM shapes")
	batch := flag.Int("batch", 256, "batch of the -extra CNNs")
	tlog := flag.String("tacticlog", "", "file for the builds' tactic timings (per layer, GPU compute at the opt shape)")
	size := flag.Int("gemm", 8192, "GEMM size (M=N=K)")
	iters := flag.Int("iters", 30, "timed iterations")
	profile := flag.String("profile", "", "only profile ResNet-50 light and mobilenetv2 at -batch in these precisions (comma separated: fp32,fp16,int8,fp8): per-step GPU times")
	profOut := flag.String("profile-out", "", "also write the -profile tables to this file")
	nhwc := flag.String("nhwc", "on", "channels-last convolution tactics for -profile and the -extra/-cnn CNNs: on, off or both")
	cnnOnly := flag.String("cnn", "", "only time ResNet-50 light and mobilenetv2 at -batch in these precisions (comma separated), -nhwc settings")
	convSpec := flag.String("conv", "", "only build and profile one convolution layer at -batch (c=64,n=256,h=56,w=56,k=1,s=1,resid=1,act=relu; tactics timed at -batch): its steps' GPU times")
	convPrec := flag.String("convprec", "int8", "precision of -conv: fp16, int8 or fp8")
	tactic := flag.String("tactic", "", "with -conv: the only channels-last conv tactic offered where it lowers (e.g. implicit_nhwc.wgq)")
	cnnModels := flag.String("cnnmodels", "resnet50,mobilenetv2", "the -cnn models (comma separated)")
	rt := flag.String("rt", "", "also time each built CNN under these run-time variants, interleaved (comma separated: events, lean, pdl, graph, graph+pdl)")
	ioOnly := flag.Bool("io", false, "only time SimpleCNN FP16 (256, 4096) and ResNet-50 FP16 (256) end to end with and without pinned staging and CUDA graphs")
	ioModels := flag.String("iomodels", "simplecnn,resnet50", "the -io models (comma separated)")
	flag.Parse()
	if *rt != "" {
		rtVariants = strings.Split(*rt, ",")
	}
	if *tlog != "" {
		f, err := os.Create(*tlog)
		if err == nil {
			defer f.Close()
			tacticLog = f
		}
	}
	if err := cudabackend.Enable(); err != nil {
		emit(result{Bench: "setup", Err: err.Error()})
		os.Exit(1)
	}
	if *convSpec != "" {
		if err := convMain(os.Stdout, *convSpec, *convPrec, *tactic, *batch, *iters); err != nil {
			emit(result{Bench: "conv", Err: err.Error()})
			os.Exit(1)
		}
		return
	}
	if *profile != "" {
		profileMain(*models, *profOut, *batch, *iters, *profile, nhwcSettings(*nhwc))
		return
	}
	if *cnnOnly != "" {
		cnnOnlyModels = strings.Split(*cnnModels, ",")
		cnn(*models, *batch, *iters, strings.Split(*cnnOnly, ","), nhwcSettings(*nhwc))
		return
	}
	if *ioOnly {
		ioBench(*models, strings.Split(*ioModels, ","), *iters)
		return
	}
	for _, p := range []struct {
		name    string
		in, out cuda.DataType
	}{{"bf16", cuda.R16BF, cuda.R16BF}, {"int8", cuda.R8I, cuda.R32I}, {"fp8", cuda.R8FE4M3, cuda.R16BF}} {
		r, err := gemm(int64(*size), p.in, p.out, *iters)
		r.Bench, r.Prec = fmt.Sprintf("gemm%d", *size), p.name
		if err != nil {
			r.Err = err.Error()
		}
		emit(r)
	}
	if *shapes {
		for _, sh := range gemmShapes {
			for _, p := range []struct {
				name    string
				in, out cuda.DataType
			}{{"bf16", cuda.R16BF, cuda.R16BF}, {"fp8", cuda.R8FE4M3, cuda.R16BF}} {
				r, err := gemmMNK(sh.m, sh.n, sh.k, p.in, p.out, *iters)
				r.Bench, r.Prec, r.Shape = "gemm "+sh.what, p.name, fmt.Sprintf("%dx%dx%d", sh.m, sh.n, sh.k)
				if err != nil {
					r.Err = err.Error()
				}
				emit(r)
			}
		}
	}
	if *models == "" {
		return
	}
	calibrated := func(fp8 bool) builder.Config {
		cfg := builder.Config{INT8: !fp8, FP8: fp8, Calibration: &builder.Calibration{Algorithm: calib.MinMax}}
		m, err := onnx.Load(filepath.Join(*models, "bench", "simplecnn.fp32.onnx"))
		if err == nil {
			cfg.Calibration.Source, err = datasrc.Open("mnist:train", m.Graph.RealInputs(), datasrc.Options{MaxBatches: 16, MNISTDir: *mnistDir})
		}
		if err != nil {
			cfg.Calibration = nil // the build reports the missing ranges
		}
		return cfg
	}
	for _, c := range []struct {
		file, prec string
		cfg        func() builder.Config
	}{
		{"simplecnn.fp32.onnx", "fp32", func() builder.Config { return builder.Config{} }},
		{"simplecnn.fp32.onnx", "fp16", func() builder.Config { return builder.Config{FP16: true} }},
		{"simplecnn.int8.qdq.onnx", "int8 (ORT Q/DQ, uint8 acts)", func() builder.Config { return builder.Config{INT8: true} }},
		{"simplecnn.fp32.onnx", "int8 (calibrated)", func() builder.Config { return calibrated(false) }},
		{"simplecnn.fp32.onnx", "fp8 (calibrated)", func() builder.Config { return calibrated(true) }},
	} {
		for _, batch := range []int{256, 4096} {
			r, err := model(filepath.Join(*models, "bench", c.file), "input", []int64{int64(batch), 1, 28, 28}, c.cfg(), *iters)
			r.Bench, r.Prec, r.Batch = "simplecnn", c.prec, batch
			if err != nil {
				r.Err = err.Error()
			}
			emit(r)
		}
	}
	if !*extra {
		return
	}
	cnn(*models, *batch, *iters, []string{"fp32", "fp16", "int8", "fp8"}, nhwcSettings(*nhwc))
	mnistAccuracy(*models, *mnistDir)
}

// gemm times Y = X·Wᵀ with n×n×n on random data.
func gemm(n int64, in, out cuda.DataType, iters int) (result, error) {
	return gemmMNK(n, n, n, in, out, iters)
}

// gemmMNK times Y[M×N] = X[M×K]·W[N×K]ᵀ on random data.
func gemmMNK(m, n, k int64, in, out cuda.DataType, iters int) (result, error) {
	var r result
	d, err := cuda.Open(0)
	if err != nil {
		return r, err
	}
	unbind, err := d.Bind()
	if err != nil {
		return r, err
	}
	defer unbind()
	s, err := d.NewStream()
	if err != nil {
		return r, err
	}
	defer s.Destroy()
	blas, err := cuda.NewBLAS()
	if err != nil {
		return r, err
	}
	g, err := blas.Plan(cuda.GemmDesc{M: m, N: n, K: k, In: in, Out: out}, 32<<20)
	if err != nil {
		return r, err
	}
	defer g.Destroy()
	host := randomBytes(in, m*k)
	var bufs []cuda.DevPtr
	defer func() {
		for _, p := range bufs {
			cuda.Free(p)
		}
	}()
	up := func(b []byte) (cuda.DevPtr, error) {
		p, err := d.Upload(s, b)
		bufs = append(bufs, p)
		return p, err
	}
	x, err := up(host)
	if err != nil {
		return r, err
	}
	w, err := up(randomBytes(in, n*k))
	if err != nil {
		return r, err
	}
	y, err := d.Alloc(m * n * out.Size())
	if err != nil {
		return r, err
	}
	bufs = append(bufs, y)
	ws, err := d.Alloc(32 << 20)
	if err != nil {
		return r, err
	}
	bufs = append(bufs, ws)
	e0, _ := cuda.NewEvent()
	e1, _ := cuda.NewEvent()
	var times []float64
	for i := 0; i < iters+3; i++ {
		e0.Record(s)
		if err := g.Run(blas, s, x, w, y, ws, 32<<20); err != nil {
			return r, err
		}
		e1.Record(s)
		if err := e1.Sync(); err != nil {
			return r, err
		}
		ms, err := e1.Elapsed(e0)
		if err != nil {
			return r, err
		}
		if i >= 3 {
			times = append(times, float64(ms))
		}
	}
	r.MS = median(times)
	r.TFLOPS = 2 * float64(m) * float64(n) * float64(k) / (r.MS * 1e-3) / 1e12
	return r, nil
}

func randomBytes(t cuda.DataType, n int64) []byte {
	b := make([]byte, n*t.Size())
	rng := rand.New(rand.NewPCG(uint64(n), uint64(t)))
	switch t {
	case cuda.R16BF:
		for i := int64(0); i < n; i++ {
			h := floatx.F32ToBF16(rng.Float32()*2 - 1)
			b[2*i], b[2*i+1] = byte(h), byte(h>>8)
		}
	case cuda.R8FE4M3:
		// E4M3 codes of magnitude below 1 (exponent field < 7), random sign
		var tab [256]byte
		for i := range tab {
			tab[i] = floatx.F32ToF8(float32(i)/128-1, floatx.E4M3FN, true)
		}
		for i := range b {
			b[i] = tab[byte(rng.Uint32())]
		}
	default:
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
	}
	return b
}

// model builds an engine on the GPU at a fixed input shape and times
// Execute (end to end from host memory), splitting H2D/compute/D2H.
func model(path, input string, shape []int64, cfg builder.Config, iters int) (result, error) {
	m, err := onnx.Load(path)
	if err != nil {
		return result{}, err
	}
	cfg.Profiles = []builder.Profile{{input: {Min: shape, Opt: shape, Max: shape}}}
	return modelTimed(m, input, shape, cfg, iters)
}

// modelTimed builds m (cfg's profiles set) and times Execute at shape.
func modelTimed(m *ir.Model, input string, shape []int64, cfg builder.Config, iters int) (result, error) {
	var r result
	if tacticLog != nil {
		label := fmt.Sprintf("%s %v", m.Graph.Name, shape)
		if cfg.FP16 || cfg.INT8 || cfg.FP8 {
			label += fmt.Sprintf(" fp16=%v int8=%v fp8=%v", cfg.FP16, cfg.INT8, cfg.FP8)
		}
		cfg.Log = func(format string, args ...any) {
			if line := fmt.Sprintf(format, args...); strings.Contains(line, "tactic") {
				fmt.Fprintf(tacticLog, "%s: %s\n", label, line)
			}
		}
	}
	t0 := time.Now()
	p, _, err := builder.Build(m, nil, cfg)
	if err != nil {
		return r, err
	}
	r.Build = time.Since(t0).Seconds()
	r.Tacs = convTactics(p)
	e, err := engine.NewEngine(p)
	if err != nil {
		return r, err
	}
	on, total := 0, 0
	for _, s := range p.Steps {
		if !s.ShapeStep {
			total++
			if len(s.Kernel) > 5 && s.Kernel[:5] == "cuda." {
				on++
			}
		}
	}
	r.Steps = fmt.Sprintf("%d/%d on GPU", on, total)
	ctx := e.NewContext()
	x := ir.NewTensor(ir.Float32, shape)
	rng := rand.New(rand.NewPCG(1, 1))
	for i := range x.F32() {
		x.F32()[i] = rng.Float32()
	}
	if err := ctx.SetInput(input, x); err != nil {
		return r, err
	}
	for i := 0; i < 3; i++ {
		if err := ctx.Execute(); err != nil {
			return r, err
		}
	}
	cudabackend.ResetTiming()
	var times []float64
	for i := 0; i < iters; i++ {
		t0 := time.Now()
		if err := ctx.Execute(); err != nil {
			return r, err
		}
		times = append(times, float64(time.Since(t0).Microseconds())/1e3)
	}
	tm := cudabackend.ReadTiming()
	r.MS = median(times)
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 / float64(iters) }
	r.H2D, r.GPU, r.D2H = per(tm.H2D), per(tm.Compute), per(tm.D2H)
	if out, _ := ctx.Output(e.Outputs()[0].Name); out != nil && out.DType == ir.Float32 {
		for _, v := range out.F32() {
			if math.IsNaN(float64(v)) {
				return r, fmt.Errorf("NaN in the output")
			}
		}
	}
	if len(rtVariants) > 0 {
		if err := timeVariants(e, input, x, r, iters); err != nil {
			return r, err
		}
	}
	return r, nil
}

// rtVariants are the run-time settings -rt compares on the same engine.
var rtVariants []string

// rtSet applies a run-time variant: "events" (CUDA events around every
// step, no programmatic dependent launches, no graphs: the runtime before
// session 10), "lean" (the lean timeline), "pdl" (lean and PDL), "graph"
// (CUDA graphs with their own timeline nodes), "graph+pdl".
func rtSet(v string) error {
	ev, pdl, graphs := false, false, false
	switch v {
	case "events":
		ev = true
	case "lean":
	case "pdl":
		pdl = true
	case "graph":
		graphs = true
	case "graph+pdl":
		graphs, pdl = true, true
	default:
		return fmt.Errorf("unknown -rt variant %q (events, lean, pdl, graph, graph+pdl)", v)
	}
	cudabackend.SetStepEvents(ev)
	cudabackend.SetPDL(pdl)
	cudabackend.SetGraphs(graphs)
	return nil
}

// timeVariants times e once per -rt variant, each on its own context
// (graphs are captured per context, with the variant's launches),
// interleaved (one Execute of each variant per round, so that clock drift
// hits all alike; two warm-up rounds: graphs are captured on the second),
// and emits one line per variant: gpu_ms the median of the per-Execute GPU
// compute times, h2d_ms the median H2D.
func timeVariants(e *engine.Engine, input string, x *ir.Tensor, base result, iters int) error {
	wasEv, wasPDL, wasGraphs := cudabackend.StepEvents(), cudabackend.PDL(), cudabackend.Graphs()
	defer func() {
		cudabackend.SetStepEvents(wasEv)
		cudabackend.SetPDL(wasPDL)
		cudabackend.SetGraphs(wasGraphs)
	}()
	ctxs := make([]*engine.Context, len(rtVariants))
	for i := range ctxs {
		ctxs[i] = e.NewContext()
		if err := ctxs[i].SetInput(input, x); err != nil {
			return err
		}
	}
	gpu := make([][]float64, len(rtVariants))
	h2d := make([][]float64, len(rtVariants))
	wall := make([][]float64, len(rtVariants))
	for round := -2; round < iters; round++ {
		for i, v := range rtVariants {
			if err := rtSet(v); err != nil {
				return err
			}
			before := cudabackend.ReadTiming()
			t0 := time.Now()
			if err := ctxs[i].Execute(); err != nil {
				return fmt.Errorf("-rt %s: %w", v, err)
			}
			if round >= 0 {
				after := cudabackend.ReadTiming()
				wall[i] = append(wall[i], float64(time.Since(t0).Microseconds())/1e3)
				gpu[i] = append(gpu[i], float64((after.Compute-before.Compute).Microseconds())/1e3)
				h2d[i] = append(h2d[i], float64((after.H2D-before.H2D).Microseconds())/1e3)
			}
		}
	}
	gs := cudabackend.ReadGraphStats()
	for i, v := range rtVariants {
		r := base
		r.Prec += " rt=" + v
		r.MS, r.GPU, r.H2D, r.D2H, r.Staging = median(wall[i]), median(gpu[i]), median(h2d[i]), 0, 0
		if strings.HasPrefix(v, "graph") {
			r.Steps = fmt.Sprintf("graphs: %d captures, %d replays, %d fallbacks %s", gs.Captures, gs.Replays, gs.Failures, gs.LastFailure)
		}
		emit(r)
	}
	return nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}
