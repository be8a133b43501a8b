package train

import (
	"fmt"
	"math"

	"github.com/kilnml/kiln/ir"
)

// BatchNorm2dLayer is batch normalization in inference form (running
// statistics, PyTorch's eval mode): y = (x − mean)/√(var + eps)·γ + β per
// channel of x [N,C,H,W]. Its statistics and affine parameters are frozen
// (no gradients reach them): it exists so that models with batch norm can be
// folded (Fuse, FoldBatchNorm) before quantization-aware training.
type BatchNorm2dLayer struct {
	LayerName                   string
	Gamma, Beta, Mean, Variance *Tensor // [C] each
	Eps                         float64
}

// NewBatchNorm2d makes an identity batch norm (γ=1, β=0, mean 0, var 1).
func NewBatchNorm2d(name string, channels int) *BatchNorm2dLayer {
	l := &BatchNorm2dLayer{LayerName: name, Eps: 1e-5,
		Gamma: NewParam(channels), Beta: NewParam(channels), Mean: NewParam(channels), Variance: NewParam(channels)}
	for i := 0; i < channels; i++ {
		l.Gamma.Data[i], l.Variance.Data[i] = 1, 1
	}
	// Frozen: they are checkpointed but not trained.
	for _, t := range []*Tensor{l.Gamma, l.Beta, l.Mean, l.Variance} {
		t.requiresGrad = false
	}
	return l
}

func (l *BatchNorm2dLayer) Name() string { return l.LayerName }

// Params uses PyTorch's names so that checkpoints map one to one.
func (l *BatchNorm2dLayer) Params() []NamedParam {
	return []NamedParam{{l.LayerName + ".weight", l.Gamma}, {l.LayerName + ".bias", l.Beta},
		{l.LayerName + ".running_mean", l.Mean}, {l.LayerName + ".running_var", l.Variance}}
}

// affine returns the per-channel a, b with y = a·x + b.
func (l *BatchNorm2dLayer) affine() (a, b []float64) {
	n := len(l.Gamma.Data)
	a, b = make([]float64, n), make([]float64, n)
	for c := 0; c < n; c++ {
		a[c] = float64(l.Gamma.Data[c]) / math.Sqrt(float64(l.Variance.Data[c])+l.Eps)
		b[c] = float64(l.Beta.Data[c]) - float64(l.Mean.Data[c])*a[c]
	}
	return a, b
}

func (l *BatchNorm2dLayer) Forward(c *Ctx, x *Tensor) *Tensor {
	if len(x.Shape) != 4 || x.Shape[1] != len(l.Gamma.Data) {
		panic(fmt.Sprintf("train.BatchNorm2d %s: input %v for %d channels", l.LayerName, x.Shape, len(l.Gamma.Data)))
	}
	a, b := l.affine()
	ch, hw := x.Shape[1], x.Shape[2]*x.Shape[3]
	out := c.newResult(x.Shape, func(out *Tensor) {
		if !x.requiresGrad {
			return
		}
		dx := c.gradOf(x)
		for i := range dx {
			dx[i] += out.Grad[i] * float32(a[(i/hw)%ch])
		}
	}, x)
	for i, v := range x.Data {
		k := (i / hw) % ch
		out.Data[i] = float32(float64(v)*a[k] + b[k])
	}
	return out
}

func (l *BatchNorm2dLayer) ExportONNX(e *Exporter, in string) (string, error) {
	return e.AddNode("BatchNormalization", l.LayerName, []string{in,
		e.AddInitializer(l.LayerName+".weight", l.Gamma), e.AddInitializer(l.LayerName+".bias", l.Beta),
		e.AddInitializer(l.LayerName+".running_mean", l.Mean), e.AddInitializer(l.LayerName+".running_var", l.Variance)},
		&ir.Attribute{Name: "epsilon", Type: ir.AttrFloat, F: float32(l.Eps)}), nil
}

// FoldBatchNorm returns a convolution equal to conv followed by bn:
// W'[o] = W[o]·γ[o]/√(var[o]+eps), b'[o] = (b[o] − mean[o])·γ[o]/√(var[o]+eps) + β[o]
// (in float64, rounded once). conv is not modified.
func FoldBatchNorm(conv *Conv2dLayer, bn *BatchNorm2dLayer) (*Conv2dLayer, error) {
	if len(bn.Gamma.Data) != conv.Out {
		return nil, fmt.Errorf("fold %s into %s: %d batch-norm channels, %d conv outputs", bn.LayerName, conv.LayerName, len(bn.Gamma.Data), conv.Out)
	}
	a, b := bn.affine()
	out := *conv
	out.Weight = NewParam(conv.Weight.Shape...)
	out.Bias = NewParam(conv.Out)
	per := len(conv.Weight.Data) / conv.Out
	for o := 0; o < conv.Out; o++ {
		for i := o * per; i < (o+1)*per; i++ {
			out.Weight.Data[i] = float32(float64(conv.Weight.Data[i]) * a[o])
		}
		bias := 0.0
		if conv.Bias != nil {
			bias = float64(conv.Bias.Data[o])
		}
		out.Bias.Data[o] = float32(bias*a[o] + b[o])
	}
	return &out, nil
}
