package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"time"

	cudabackend "github.com/kilnml/kiln/backend/cuda"
	"github.com/kilnml/kiln/builder"
	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
)

// ioVariant is one way of moving data and launching work: copies from
// pageable Go memory (the old path), through the context's pinned staging
// buffer, from a caller's pinned input buffer, each with or without CUDA
// graphs.
type ioVariant struct {
	name                       string
	graphs, pinned, userPinned bool
}

var ioVariants = []ioVariant{
	{"pageable, eager", false, false, false},
	{"pinned staging, eager", false, true, false},
	{"caller-pinned input, eager", false, true, true},
	{"pinned staging, graphs", true, true, false},
	{"caller-pinned input, graphs", true, true, true},
}

// ioBench times SimpleCNN FP16 at batch 256 and 4096 and ResNet-50 FP16 at
// batch 256 (those of names) end to end in every ioVariant on one engine
// each, and checks that every variant's output equals the first's bit for
// bit.
func ioBench(models string, names []string, iters int) {
	sc := filepath.Join(models, "bench", "simplecnn.fp32.onnx")
	for _, batch := range []int64{256, 4096} {
		if !slices.Contains(names, "simplecnn") {
			break
		}
		m, err := onnx.Load(sc)
		if err != nil {
			emit(result{Bench: "io simplecnn", Err: err.Error()})
			return
		}
		shape := []int64{batch, 1, 28, 28}
		cfg := builder.Config{FP16: true, Profiles: []builder.Profile{{"input": {Min: shape, Opt: shape, Max: shape}}}}
		ioModel(m, "simplecnn", "input", shape, cfg, iters)
	}
	if !slices.Contains(names, "resnet50") {
		return
	}
	m, err := onnx.Load(filepath.Join(models, "onnx-light-cnns", "resnet50", "model.onnx"))
	if err == nil {
		err = cudabackend.BatchDynamic(m)
	}
	if err == nil {
		err = cudabackend.Opset13(m)
	}
	if err != nil {
		emit(result{Bench: "io resnet50", Err: err.Error()})
		return
	}
	cudabackend.RandomWeights(m, 1)
	input := "gpu_0/data_0"
	shape := []int64{256, 3, 224, 224}
	cfg := builder.Config{FP16: true, Profiles: []builder.Profile{{input: {Min: []int64{1, 3, 224, 224}, Opt: []int64{16, 3, 224, 224}, Max: shape}}}}
	ioModel(m, "resnet50", input, shape, cfg, iters)
}

func ioModel(m *ir.Model, bench, input string, shape []int64, cfg builder.Config, iters int) {
	fail := func(err error) { emit(result{Bench: "io " + bench, Batch: int(shape[0]), Err: err.Error()}) }
	t0 := time.Now()
	p, _, err := builder.Build(m, nil, cfg)
	if err != nil {
		fail(err)
		return
	}
	build := time.Since(t0).Seconds()
	e, err := engine.NewEngine(p)
	if err != nil {
		fail(err)
		return
	}
	x := ir.NewTensor(ir.Float32, shape)
	rng := rand.New(rand.NewPCG(1, 1))
	for i := range x.F32() {
		x.F32()[i] = rng.Float32()
	}
	px, err := cudabackend.NewPinnedTensor(ir.Float32, shape)
	if err != nil {
		fail(err)
		return
	}
	defer cudabackend.HostFree(px.Data)
	copy(px.Data, x.Data)
	defer cudabackend.SetGraphs(cudabackend.Graphs())
	defer cudabackend.SetPinned(cudabackend.Pinned())
	var ref []byte
	for _, v := range ioVariants {
		r := result{Bench: "io " + bench, Prec: "fp16 [" + v.name + "]", Batch: int(shape[0]), Build: build}
		cudabackend.SetGraphs(v.graphs)
		cudabackend.SetPinned(v.pinned)
		in := x
		if v.userPinned {
			in = px
		}
		before := cudabackend.ReadGraphStats()
		ctx := e.NewContext()
		if err := ctx.SetInput(input, in); err != nil {
			fail(err)
			return
		}
		for i := 0; i < 3; i++ { // warm-up, capture, first replay
			if err := ctx.Execute(); err != nil {
				r.Err = err.Error()
				break
			}
		}
		if r.Err != "" {
			emit(r)
			continue
		}
		cudabackend.ResetTiming()
		var times []float64
		for i := 0; i < iters; i++ {
			t0 := time.Now()
			if err := ctx.Execute(); err != nil {
				r.Err = err.Error()
				break
			}
			times = append(times, float64(time.Since(t0).Microseconds())/1e3)
		}
		tm := cudabackend.ReadTiming()
		r.MS = median(times)
		per := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 / float64(len(times)) }
		r.H2D, r.GPU, r.D2H, r.Staging = per(tm.H2D), per(tm.Compute), per(tm.D2H), per(tm.Staging)
		after := cudabackend.ReadGraphStats()
		r.Steps = fmt.Sprintf("%d CUDA steps/run; graphs: %d captures, %d replays, %d fallbacks %s", tm.Steps/int64(max(len(times), 1)),
			after.Captures-before.Captures, after.Replays-before.Replays, after.Failures-before.Failures, after.LastFailure)
		out, err := ctx.Output(e.Outputs()[0].Name)
		if err != nil {
			r.Err = err.Error()
		} else if ref == nil {
			ref = append([]byte(nil), out.Data...)
		} else if !bytes.Equal(ref, out.Data) {
			r.Err = "output differs from the pageable eager run's"
		}
		emit(r)
	}
}
