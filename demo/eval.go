package demo

import (
	"fmt"
	"time"

	"github.com/kilnml/kiln/data/mnist"
	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
	_ "github.com/kilnml/kiln/ops/all" // every reference kernel, for the baseline
	"github.com/kilnml/kiln/tools/benchstat"
)

// testBatch is one batch of normalized test images with their labels.
type testBatch struct {
	x      *ir.Tensor
	labels []byte
}

// makeBatches cuts the first n images of set into batches of bs (the last
// may be smaller: the engines' batch axis is dynamic).
func makeBatches(set *mnist.Set, bs, n int) []testBatch {
	n = min(n, set.Len())
	px := set.Images.Rows * set.Images.Cols
	var out []testBatch
	for lo := 0; lo < n; lo += bs {
		hi := min(lo+bs, n)
		t := ir.NewTensor(ir.Float32, []int64{int64(hi - lo), 1, int64(set.Images.Rows), int64(set.Images.Cols)})
		f := t.F32()
		for i := lo; i < hi; i++ {
			mnist.FillNormalized(f[(i-lo)*px:(i-lo+1)*px], set.Images.Image(i))
		}
		out = append(out, testBatch{x: t, labels: set.Labels[lo:hi]})
	}
	return out
}

// correct counts the rows of logits [n, classes] whose argmax is the label.
func correct(logits *ir.Tensor, labels []byte) (int, error) {
	if len(logits.Dims) != 2 || logits.Dims[0] != int64(len(labels)) || logits.Dims[1] < 1 {
		return 0, fmt.Errorf("the output is %s%v, want [%d, classes]", logits.DType, logits.Dims, len(labels))
	}
	classes := int(logits.Dims[1])
	n := 0
	for i, want := range labels {
		best, bestV := 0, logits.Float64At(int64(i*classes))
		for c := 1; c < classes; c++ {
			if v := logits.Float64At(int64(i*classes + c)); v > bestV {
				best, bestV = c, v
			}
		}
		if best == int(want) {
			n++
		}
	}
	return n, nil
}

// measurement is one mode's pass over the batches.
type measurement struct {
	correct, images int
	times           []float64 // ms per timed (full) batch
	perBatch        []int     // correct answers per batch
}

func (m measurement) accuracy() float64 {
	if m.images == 0 {
		return 0
	}
	return 100 * float64(m.correct) / float64(m.images)
}

// runner runs one batch and returns the logits (valid until the next call).
type runner func(x *ir.Tensor) (*ir.Tensor, error)

// measure runs every batch once after one untimed warm-up run on the first
// (binding shapes and allocating, as TensorRT's first enqueue does), timing
// each full batch.
func (r *run) measure(desc string, batches []testBatch, bs int, f runner) (measurement, error) {
	var m measurement
	if len(batches) == 0 {
		return m, nil
	}
	if _, err := f(batches[0].x); err != nil {
		return m, fmt.Errorf("%s: %w", desc, err)
	}
	anyFull := false
	for _, b := range batches {
		anyFull = anyFull || len(b.labels) == bs
	}
	bar := r.bar(len(batches), desc, "batches")
	for i, b := range batches {
		t0 := time.Now()
		out, err := f(b.x)
		el := time.Since(t0)
		if err != nil {
			return m, fmt.Errorf("%s, batch %d: %w", desc, i, err)
		}
		if len(b.labels) == bs || !anyFull {
			m.times = append(m.times, float64(el)/float64(time.Millisecond))
		}
		k, err := correct(out, b.labels)
		if err != nil {
			return m, fmt.Errorf("%s: %w", desc, err)
		}
		m.correct += k
		m.images += len(b.labels)
		m.perBatch = append(m.perBatch, k)
		bar.Set(int64(i + 1))
		bar.Detail(fmt.Sprintf("accuracy %.2f%%", m.accuracy()))
	}
	bar.Finish()
	return m, nil
}

// engineRunner binds, executes and reads the output of an engine context.
func (r *run) engineRunner(e *engine.Engine, src *sourceModel) runner {
	ctx := e.NewContext()
	ctx.SetThreads(r.cfg.Threads)
	in, out := src.inputName(), src.outputName()
	return func(x *ir.Tensor) (*ir.Tensor, error) {
		if err := ctx.SetInput(in, x); err != nil {
			return nil, err
		}
		if err := ctx.Execute(); err != nil {
			return nil, err
		}
		return ctx.Output(out)
	}
}

// baselineRunner runs the unoptimized ONNX graph in the reference executor.
func baselineRunner(src *sourceModel) (runner, error) {
	sess, err := ops.NewSession(src.Model)
	if err != nil {
		return nil, err
	}
	in, out := src.inputName(), src.outputName()
	return func(x *ir.Tensor) (*ir.Tensor, error) {
		res, err := sess.Run(map[string]*ir.Tensor{in: x})
		if err != nil {
			return nil, err
		}
		return res[out], nil
	}, nil
}

// accuracyOnly evaluates an engine on every test image at batch 256 (or
// the largest batch of the profile).
func (r *run) accuracyOnly(e *engine.Engine, src *sourceModel, set *mnist.Set, desc string) (float64, error) {
	bs := min(256, maxOf(r.cfg.BatchSizes))
	m, err := r.measure(desc, makeBatches(set, bs, set.Len()), bs, r.engineRunner(e, src))
	return m.accuracy(), err
}

func maxOf(xs []int) int {
	m := xs[0]
	for _, x := range xs[1:] {
		m = max(m, x)
	}
	return m
}

// modes are the table's rows, in order.
var modes = []struct{ key, name string }{
	{"baseline", "reference executor FP32 (baseline)"},
	{"fp32", "kiln FP32 engine"},
	{"fp16", "kiln FP16 engine"},
	{"int8", "kiln INT8 engine"},
	{"fp8", "kiln FP8 engine"},
	{"ort", "ONNX Runtime FP32"},
}

// table measures every mode at batch size bs.
func (r *run) table(src *sourceModel, set *mnist.Set, engines map[string]*engine.Engine, bs int, ortDir string) (*Table, error) {
	all := makeBatches(set, bs, set.Len())
	t := &Table{BatchSize: bs}
	var baselineM, fp32M *measurement
	for _, md := range modes {
		row := Row{Mode: md.name, Key: md.key}
		desc := fmt.Sprintf("%s @%d", md.key, bs)
		switch md.key {
		case "baseline":
			nb := len(all)
			if r.cfg.BaselineImages > 0 {
				nb = min(nb, (r.cfg.BaselineImages+bs-1)/bs)
			}
			f, err := baselineRunner(src)
			if err != nil {
				return nil, err
			}
			m, err := r.measure(desc, all[:nb], bs, f)
			if err != nil {
				return nil, err
			}
			baselineM = &m
			row.fill(m)
			if row.Images < set.Len() {
				row.Note = fmt.Sprintf("reference executor on the first %d test images only (it is slow)", row.Images)
			}
		case "ort":
			if ortDir == "" {
				continue
			}
			acc, images, err := r.ortAccuracy(src, set)
			if err != nil {
				return nil, err
			}
			med, runs, err := r.ortBench(src, all[0].x)
			if err != nil {
				return nil, err
			}
			row.Accuracy, row.Images = acc, images
			row.AvgMs, row.MedianMs, row.TimedBatches = med, med, runs
			row.Note = fmt.Sprintf("time: ONNX Runtime's median of %d timed runs at batch %d (run.js --bench)", runs, len(all[0].labels))
		default:
			m, err := r.measure(desc, all, bs, r.engineRunner(engines[md.key], src))
			if err != nil {
				return nil, err
			}
			if md.key == "fp32" {
				fp32M = &m
			}
			row.fill(m)
		}
		t.Rows = append(t.Rows, row)
	}
	if baselineM != nil && fp32M != nil && len(baselineM.perBatch) < len(all) {
		nb := len(baselineM.perBatch)
		ok, n := 0, 0
		for i := 0; i < nb; i++ {
			ok, n = ok+fp32M.perBatch[i], n+len(all[i].labels)
		}
		t.Rows[0].Note += fmt.Sprintf("; the FP32 engine scores %.2f%% on the same images", 100*float64(ok)/float64(n))
	}
	base := t.Rows[0].AvgMs
	for i := range t.Rows {
		if t.Rows[i].AvgMs > 0 {
			t.Rows[i].Speedup = base / t.Rows[i].AvgMs
		}
	}
	return t, nil
}

func (row *Row) fill(m measurement) {
	row.Accuracy, row.Images = m.accuracy(), m.images
	row.AvgMs, row.MedianMs, row.TimedBatches = benchstat.Mean(m.times), benchstat.Median(m.times), len(m.times)
}
