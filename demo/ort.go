package demo

import (
	"fmt"

	"github.com/kilnml/kiln/data/mnist"
	"github.com/kilnml/kiln/internal/ortrun"
	"github.com/kilnml/kiln/ir"
)

// ortChunk is how many test images one ONNX Runtime call classifies (one
// node process per call; bounded so that its activations stay small).
const ortChunk = 2000

// ortAvailable returns ONNX Runtime's tool folder, or "" after recording why
// it is not used.
func (r *run) ortAvailable() string {
	if r.cfg.ORT == "off" {
		r.res.ORT = &ORTInfo{Reason: "turned off (--ort off)"}
		return ""
	}
	dir, why := ortrun.Dir()
	if dir == "" {
		r.res.ORT = &ORTInfo{Reason: why}
		r.res.Notes = append(r.res.Notes, "no ONNX Runtime row: "+why)
		return ""
	}
	r.res.ORT = &ORTInfo{Used: true}
	return dir
}

// ortAccuracy classifies every test image with ONNX Runtime FP32 on the
// exported ONNX file (once; the accuracy does not depend on the batch size).
func (r *run) ortAccuracy(src *sourceModel, set *mnist.Set) (float64, int, error) {
	if r.ortAcc != nil {
		return r.ortAcc.accuracy(), r.ortAcc.images, nil
	}
	batches := makeBatches(set, ortChunk, set.Len())
	bar := r.bar(len(batches), "onnxruntime accuracy", "chunks")
	m := &measurement{}
	for i, b := range batches {
		outs, _, err := ortrun.Run(src.Path, []*ir.Tensor{b.x}, r.cfg.Threads, 0)
		if err != nil {
			return 0, 0, err
		}
		if len(outs) == 0 {
			return 0, 0, fmt.Errorf("onnxruntime returned no outputs for %s", src.Path)
		}
		k, err := correct(outs[0], b.labels)
		if err != nil {
			return 0, 0, fmt.Errorf("onnxruntime: %w", err)
		}
		m.correct += k
		m.images += len(b.labels)
		bar.Set(int64(i + 1))
	}
	bar.Finish()
	r.ortAcc = m
	return m.accuracy(), m.images, nil
}

// ortBench is ONNX Runtime's median time on one batch (run.js --bench).
func (r *run) ortBench(src *sourceModel, x *ir.Tensor) (float64, int, error) {
	bs := int(x.Dims[0])
	runs := min(max(10000/bs, 20), 200)
	_, tm, err := ortrun.Run(src.Path, []*ir.Tensor{x}, r.cfg.Threads, runs)
	if err != nil {
		return 0, 0, err
	}
	if tm == nil || tm.MedianMs <= 0 {
		return 0, 0, fmt.Errorf("onnxruntime --bench gave no timing")
	}
	if r.res.ORT != nil {
		r.res.ORT.Version = tm.Version
	}
	r.logf("onnxruntime %s @%d: median %.3f ms over %d runs (%d threads)\n", tm.Version, bs, tm.MedianMs, runs, r.cfg.Threads)
	return tm.MedianMs, runs, nil
}
