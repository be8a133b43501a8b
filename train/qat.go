package train

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/quant/calib"
)

// Quantization in the trainer, with PyTorch's eager-mode workflow:
//
//	fused, _ := train.Fuse(model, [][]string{{"conv1", "relu1"}, ...}) // conv(+bn)+relu
//	prepared, _ := train.Prepare(fused, train.QConfig{})              // observers
//	train.Calibrate(prepared, batches, 20)                             // PTQ ranges
//	train.PrepareQAT(prepared)                                          // fake quant + STE
//	... train prepared with a Trainer ...
//	qdqModel, _ := train.Convert(prepared, train.ConvertOptions{...})  // Q/DQ ONNX
//
// Every Conv2d and Linear layer (alone or fused with the ReLU after it) is
// wrapped in a QuantLayer that quantizes its input activation (per tensor,
// symmetric int8) and its weight (per output channel, symmetric narrow
// int8, or fewer bits / per tensor for experiments): exactly TensorRT's
// explicit-quantization placement, so that the exported Q/DQ model computes
// what the trainer simulated.

// QuantMode is what a QuantLayer does in Forward.
type QuantMode int

const (
	// Observing runs in float and records the input's statistics (Prepare).
	Observing QuantMode = iota
	// FakeQuant quantizes and dequantizes the input and the weight
	// (after Calibrate: PTQ simulation; after PrepareQAT: training).
	FakeQuant
	// Float runs the wrapped layer unchanged.
	Float
)

// QConfig says how layers are quantized (PyTorch's qconfig).
type QConfig struct {
	// WeightBits is the weight grid's width: 8 (default) or fewer (4: codes
	// -7..7, stored in int8 on export).
	WeightBits int
	// PerTensorWeights uses one weight scale per layer instead of one per
	// output channel.
	PerTensorWeights bool
	// Calibrator picks activation ranges from the observed histograms
	// (default entropy2, TensorRT's EntropyCalibrator2).
	Calibrator  calib.Algorithm
	CalibParams calib.Params
	// LearnScales makes the activation and weight scales trainable
	// parameters in PrepareQAT (learned step size, LSQ); otherwise they stay
	// as calibrated (activations) and as max|w| at PrepareQAT (weights).
	LearnScales bool
}

func (q QConfig) withDefaults() QConfig {
	if q.WeightBits == 0 {
		q.WeightBits = 8
	}
	if q.Calibrator == "" {
		q.Calibrator = calib.Entropy2
	}
	return q
}

// FusedLayer runs layers as one (a Conv2d or Linear followed by ReLU), so
// that Prepare puts no quantizer between them. Its parameters keep their
// names ("conv1.weight"), so checkpoints load into fused models.
type FusedLayer struct {
	Layers []Layer
}

func (f *FusedLayer) Name() string { return f.Layers[0].Name() }
func (f *FusedLayer) Forward(c *Ctx, x *Tensor) *Tensor {
	for _, l := range f.Layers {
		x = l.Forward(c, x)
	}
	return x
}
func (f *FusedLayer) Params() []NamedParam {
	var out []NamedParam
	for _, l := range f.Layers {
		out = append(out, l.Params()...)
	}
	return out
}

func (f *FusedLayer) ExportONNX(e *Exporter, in string) (string, error) {
	for _, l := range f.Layers {
		x, ok := l.(ONNXExportable)
		if !ok {
			return "", fmt.Errorf("no ONNX form for %s (%T)", l.Name(), l)
		}
		var err error
		if in, err = x.ExportONNX(e, in); err != nil {
			return "", err
		}
	}
	return in, nil
}

// Fuse returns a model in which each group of consecutive layers (by name)
// becomes one FusedLayer: a Conv2d or Linear, then optionally a
// BatchNorm2d (folded into the convolution's weight and bias, as TensorRT
// expects before QAT; the Conv2d's tensors are replaced, not modified), then
// optionally a ReLU. Layers outside the groups are shared with model.
func Fuse(model *Sequential, groups [][]string) (*Sequential, error) {
	index := map[string]int{}
	for i, l := range model.Layers {
		index[l.Name()] = i
	}
	start := map[int][]string{}
	var problems []string
	for _, g := range groups {
		if len(g) < 2 {
			problems = append(problems, fmt.Sprintf("group %v: fuse at least two layers", g))
			continue
		}
		i0, ok := index[g[0]]
		if !ok {
			problems = append(problems, fmt.Sprintf("group %v: no layer %q", g, g[0]))
			continue
		}
		for k, name := range g {
			if i, ok := index[name]; !ok || i != i0+k {
				problems = append(problems, fmt.Sprintf("group %v: %q is not the layer after %q", g, name, g[max(k-1, 0)]))
				break
			}
		}
		start[i0] = g
	}
	if len(problems) > 0 {
		return nil, errors.New("fuse: " + strings.Join(problems, "; "))
	}
	out := &Sequential{}
	for i := 0; i < len(model.Layers); i++ {
		g, ok := start[i]
		if !ok {
			out.Layers = append(out.Layers, model.Layers[i])
			continue
		}
		f, err := fuseGroup(model.Layers[i : i+len(g)])
		if err != nil {
			return nil, fmt.Errorf("fuse %v: %w", g, err)
		}
		out.Layers = append(out.Layers, f)
		i += len(g) - 1
	}
	return out, nil
}

func fuseGroup(ls []Layer) (*FusedLayer, error) {
	first := ls[0]
	switch first.(type) {
	case *Conv2dLayer, *LinearLayer:
	default:
		return nil, fmt.Errorf("%s is %T: a fused group starts with a Conv2d or Linear", first.Name(), first)
	}
	f := &FusedLayer{Layers: []Layer{first}}
	rest := ls[1:]
	if bn, ok := rest[0].(*BatchNorm2dLayer); ok {
		conv, ok := first.(*Conv2dLayer)
		if !ok {
			return nil, fmt.Errorf("batch norm %s follows %T, not a Conv2d", bn.Name(), first)
		}
		folded, err := FoldBatchNorm(conv, bn)
		if err != nil {
			return nil, err
		}
		f.Layers[0] = folded
		rest = rest[1:]
	}
	for _, l := range rest {
		if _, ok := l.(*ReLULayer); !ok || len(f.Layers) > 1 {
			return nil, fmt.Errorf("cannot fuse %s (%T): supported are conv/linear [+ batchnorm] [+ relu]", l.Name(), l)
		}
		f.Layers = append(f.Layers, l)
	}
	return f, nil
}

// QuantLayer is a Conv2d or Linear layer (or a FusedLayer starting with
// one) with fake quantization of its input and weight.
type QuantLayer struct {
	Inner Layer
	// InputName is the name of the layer's input in the exported ONNX graph
	// (the previous layer's output, or "input"): the tensor whose Q/DQ pair
	// carries ActScale.
	InputName string
	Config    QConfig
	Mode      QuantMode
	// Stats are the input's statistics gathered while Observing.
	Stats *calib.TensorStats
	// ActScale [1] and WeightScale [channels] or [1]; parameters with LSQ.
	ActScale, WeightScale *Tensor
}

// compute returns the wrapped Conv2d or Linear layer.
func (q *QuantLayer) compute() Layer {
	if f, ok := q.Inner.(*FusedLayer); ok {
		return f.Layers[0]
	}
	return q.Inner
}

func (q *QuantLayer) weight() *Tensor {
	switch l := q.compute().(type) {
	case *Conv2dLayer:
		return l.Weight
	case *LinearLayer:
		return l.Weight
	}
	return nil
}

// WeightSpec is the layer's weight grid.
func (q *QuantLayer) WeightSpec() FakeQuantSpec {
	return WeightSpec(q.Config.WeightBits, q.Config.PerTensorWeights)
}

func (q *QuantLayer) Name() string { return q.Inner.Name() }

func (q *QuantLayer) Params() []NamedParam {
	ps := q.Inner.Params()
	if q.ActScale != nil && q.ActScale.requiresGrad {
		ps = append(ps, NamedParam{q.Name() + ".input_scale", q.ActScale})
	}
	if q.WeightScale != nil && q.WeightScale.requiresGrad {
		ps = append(ps, NamedParam{q.Name() + ".weight_scale", q.WeightScale})
	}
	return ps
}

func (q *QuantLayer) Forward(c *Ctx, x *Tensor) *Tensor {
	switch q.Mode {
	case Observing:
		q.Stats.ObserveValues(x.Data)
		return q.Inner.Forward(c, x)
	case Float:
		return q.Inner.Forward(c, x)
	}
	xq := c.FakeQuantize(x, q.ActScale, Int8Activation)
	wq := c.FakeQuantize(q.weight(), q.WeightScale, q.WeightSpec())
	var y *Tensor
	switch l := q.compute().(type) {
	case *Conv2dLayer:
		y = c.Conv2d(xq, wq, l.Bias)
	case *LinearLayer:
		y = c.Linear(xq, wq, l.Bias)
	}
	if f, ok := q.Inner.(*FusedLayer); ok {
		for _, l := range f.Layers[1:] {
			y = l.Forward(c, y)
		}
	}
	return y
}

// fakeQuantWeight returns the weight as the exported model will see it
// (codes·scale): exporting these values makes ONNX's quantization of them
// give exactly the trained codes, whatever the rounding of the scale.
func (q *QuantLayer) fakeQuantWeight() *Tensor {
	c := NewCtx(1)
	c.Grad = false
	w := c.FakeQuantize(q.weight(), q.WeightScale, q.WeightSpec())
	return FromData(append([]float32(nil), w.Data...), w.Shape...)
}

// ExportONNX writes the float layer with fake-quantized weights once
// quantized (Convert adds the Q/DQ pairs), the float weights otherwise.
func (q *QuantLayer) ExportONNX(e *Exporter, in string) (string, error) {
	inner := q.Inner
	if q.Mode == FakeQuant {
		inner = q.withWeight(q.fakeQuantWeight())
	}
	x, ok := inner.(ONNXExportable)
	if !ok {
		return "", fmt.Errorf("no ONNX form for %T", inner)
	}
	return x.ExportONNX(e, in)
}

// withWeight is a copy of the inner layer with another weight tensor.
func (q *QuantLayer) withWeight(w *Tensor) Layer {
	var first Layer
	switch l := q.compute().(type) {
	case *Conv2dLayer:
		cp := *l
		cp.Weight = w
		first = &cp
	case *LinearLayer:
		cp := *l
		cp.Weight = w
		first = &cp
	}
	if f, ok := q.Inner.(*FusedLayer); ok {
		return &FusedLayer{Layers: append([]Layer{first}, f.Layers[1:]...)}
	}
	return first
}

// outputName is the ONNX value a layer's export produces.
func outputName(l Layer) string {
	switch l := l.(type) {
	case *FusedLayer:
		return outputName(l.Layers[len(l.Layers)-1])
	case *QuantLayer:
		return outputName(l.Inner)
	}
	return l.Name()
}

// Prepare returns a model whose Conv2d and Linear layers (plain or fused)
// are wrapped in QuantLayers that observe their inputs (PyTorch's
// prepare). The wrapped layers' parameters are shared with model.
func Prepare(model *Sequential, cfg QConfig) (*Sequential, error) {
	cfg = cfg.withDefaults()
	if cfg.WeightBits < 2 || cfg.WeightBits > 8 {
		return nil, fmt.Errorf("prepare: weight bits %d outside 2..8", cfg.WeightBits)
	}
	out := &Sequential{}
	prev := "input"
	for _, l := range model.Layers {
		if _, ok := l.(*QuantLayer); ok {
			return nil, fmt.Errorf("prepare: layer %s is already prepared", l.Name())
		}
		inner := l
		if f, ok := l.(*FusedLayer); ok {
			inner = f.Layers[0]
		}
		switch inner.(type) {
		case *Conv2dLayer, *LinearLayer:
			stats := &calib.TensorStats{Name: prev, DType: ir.Float32, Hist: &calib.Histogram{}, Min: math.Inf(1), Max: math.Inf(-1)}
			out.Layers = append(out.Layers, &QuantLayer{Inner: l, InputName: prev, Config: cfg, Stats: stats})
		default:
			out.Layers = append(out.Layers, l)
		}
		prev = outputName(l)
	}
	return out, nil
}

// QuantLayers lists the model's QuantLayers in order.
func QuantLayers(model *Sequential) []*QuantLayer {
	var out []*QuantLayer
	for _, l := range model.Layers {
		if q, ok := l.(*QuantLayer); ok {
			out = append(out, q)
		}
	}
	return out
}

// Calibrate runs up to maxBatches batches of src (0: all) through a
// prepared model without gradients, then sets every QuantLayer's activation
// scale from its statistics with the configured calibrator and its weight
// scale from max |w| (per channel), and switches the layers to FakeQuant:
// the model then simulates post-training quantization.
func Calibrate(model *Sequential, src BatchSource, maxBatches, batchSize, workers int, inputShape ...int) error {
	qs := QuantLayers(model)
	if len(qs) == 0 {
		return errors.New("calibrate: the model has no quantized layers (call Prepare first)")
	}
	for _, q := range qs {
		q.Mode = Observing
	}
	c := NewCtx(workers)
	c.Grad = false
	per := numel(inputShape)
	x, labels := make([]float32, batchSize*per), make([]int, batchSize)
	src.Reset(0)
	seen := 0
	for k := 0; maxBatches == 0 || k < maxBatches; k++ {
		n := src.Next(x, labels)
		if n == 0 {
			break
		}
		c.Reset()
		model.Forward(c, FromData(x[:n*per], append([]int{n}, inputShape...)...))
		seen += n
	}
	if seen == 0 {
		return errors.New("calibrate: the data source gave no examples")
	}
	return SetRangesFromStats(model)
}

// SetRangesFromStats computes the scales of every QuantLayer from what it
// observed and switches it to FakeQuant.
func SetRangesFromStats(model *Sequential) error {
	for _, q := range QuantLayers(model) {
		r, err := calib.ComputeRange(q.Stats, q.Config.Calibrator, q.Config.CalibParams)
		if err != nil {
			return fmt.Errorf("calibrate %s: %w", q.Name(), err)
		}
		q.SetActAmax(float32(r.Amax))
		q.resetWeightScale()
		q.Mode = FakeQuant
	}
	return nil
}

// SetActAmax sets the input's range (scale amax/127).
func (q *QuantLayer) SetActAmax(amax float32) {
	q.ActScale = FromData(ScalesFromAmax([]float32{amax}, 127), 1)
}

// ActAmax is the input's range, scale·127.
func (q *QuantLayer) ActAmax() float64 { return float64(max(q.ActScale.Data[0], minScale)) * 127 }

func (q *QuantLayer) resetWeightScale() {
	w := q.weight()
	spec := q.WeightSpec()
	amax := AbsMaxPerChannel(w.Data, w.Shape[0], spec.Axis < 0)
	s := ScalesFromAmax(amax, spec.QMax)
	q.WeightScale = FromData(s, len(s))
}

// PrepareQAT switches a calibrated model to quantization-aware training:
// fake quantization with the straight-through estimator; with
// Config.LearnScales the scales become parameters (so make the optimizer
// after PrepareQAT, from model.Params()).
func PrepareQAT(model *Sequential) error {
	qs := QuantLayers(model)
	if len(qs) == 0 {
		return errors.New("prepare QAT: the model has no quantized layers (call Prepare and Calibrate first)")
	}
	for _, q := range qs {
		if q.ActScale == nil {
			return fmt.Errorf("prepare QAT: layer %s has no range yet (call Calibrate first)", q.Name())
		}
		q.Mode = FakeQuant
		if q.Config.LearnScales {
			for _, s := range []*Tensor{q.ActScale, q.WeightScale} {
				s.requiresGrad = true
				if s.Grad == nil {
					s.Grad = make([]float32, len(s.Data))
				}
			}
		}
	}
	return nil
}
