package train

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Layer is one step of a Sequential model. Layers are values the ONNX
// exporter and the checkpoint code can inspect, and a later pass (QAT) can
// insert new layers (fake quantization) between existing ones.
type Layer interface {
	// Name is the layer's name, the prefix of its parameters ("conv1" gives
	// "conv1.weight", "conv1.bias").
	Name() string
	Forward(c *Ctx, x *Tensor) *Tensor
	// Params lists the named parameters, in a fixed order.
	Params() []NamedParam
}

// NamedParam is a parameter and its checkpoint/ONNX name.
type NamedParam struct {
	Name string
	T    *Tensor
}

// Conv2dLayer is a stride-1, unpadded 2-D convolution with bias.
type Conv2dLayer struct {
	LayerName       string
	In, Out, Kernel int
	Weight, Bias    *Tensor // [Out,In,K,K], [Out]
}

// NewConv2d makes a convolution layer initialized as PyTorch does.
func NewConv2d(name string, in, out, k int, r *rand.Rand) *Conv2dLayer {
	l := &Conv2dLayer{LayerName: name, In: in, Out: out, Kernel: k,
		Weight: NewParam(out, in, k, k), Bias: NewParam(out)}
	initPyTorch(l.Weight, l.Bias, in*k*k, r)
	return l
}

func (l *Conv2dLayer) Name() string                      { return l.LayerName }
func (l *Conv2dLayer) Forward(c *Ctx, x *Tensor) *Tensor { return c.Conv2d(x, l.Weight, l.Bias) }
func (l *Conv2dLayer) Params() []NamedParam {
	return []NamedParam{{l.LayerName + ".weight", l.Weight}, {l.LayerName + ".bias", l.Bias}}
}

// LinearLayer is a fully connected layer y = x·Wᵀ + b.
type LinearLayer struct {
	LayerName    string
	In, Out      int
	Weight, Bias *Tensor // [Out,In], [Out]
}

// NewLinear makes a fully connected layer initialized as PyTorch does.
func NewLinear(name string, in, out int, r *rand.Rand) *LinearLayer {
	l := &LinearLayer{LayerName: name, In: in, Out: out, Weight: NewParam(out, in), Bias: NewParam(out)}
	initPyTorch(l.Weight, l.Bias, in, r)
	return l
}

func (l *LinearLayer) Name() string                      { return l.LayerName }
func (l *LinearLayer) Forward(c *Ctx, x *Tensor) *Tensor { return c.Linear(x, l.Weight, l.Bias) }
func (l *LinearLayer) Params() []NamedParam {
	return []NamedParam{{l.LayerName + ".weight", l.Weight}, {l.LayerName + ".bias", l.Bias}}
}

// ReLULayer applies max(x, 0).
type ReLULayer struct{ LayerName string }

func (l *ReLULayer) Name() string                      { return l.LayerName }
func (l *ReLULayer) Forward(c *Ctx, x *Tensor) *Tensor { return c.ReLU(x) }
func (l *ReLULayer) Params() []NamedParam              { return nil }

// MaxPool2dLayer takes window maxima.
type MaxPool2dLayer struct {
	LayerName      string
	Kernel, Stride int
}

func (l *MaxPool2dLayer) Name() string { return l.LayerName }
func (l *MaxPool2dLayer) Forward(c *Ctx, x *Tensor) *Tensor {
	return c.MaxPool2d(x, l.Kernel, l.Stride)
}
func (l *MaxPool2dLayer) Params() []NamedParam { return nil }

// FlattenLayer reshapes [N, ...] to [N, rest].
type FlattenLayer struct{ LayerName string }

func (l *FlattenLayer) Name() string                      { return l.LayerName }
func (l *FlattenLayer) Forward(c *Ctx, x *Tensor) *Tensor { return c.Flatten(x) }
func (l *FlattenLayer) Params() []NamedParam              { return nil }

// initPyTorch fills weight and bias as torch.nn.Conv2d/Linear.reset_parameters
// do: kaiming_uniform_(a=√5), which is U(−1/√fan_in, 1/√fan_in), for the
// weight, and the same bound for the bias.
func initPyTorch(weight, bias *Tensor, fanIn int, r *rand.Rand) {
	bound := 1 / math.Sqrt(float64(fanIn))
	for i := range weight.Data {
		weight.Data[i] = float32((2*r.Float64() - 1) * bound)
	}
	for i := range bias.Data {
		bias.Data[i] = float32((2*r.Float64() - 1) * bound)
	}
}

// Sequential runs layers one after another.
type Sequential struct {
	Layers []Layer
}

// Forward runs every layer.
func (s *Sequential) Forward(c *Ctx, x *Tensor) *Tensor {
	for _, l := range s.Layers {
		x = l.Forward(c, x)
	}
	return x
}

// Params lists all parameters in layer order.
func (s *Sequential) Params() []NamedParam {
	var out []NamedParam
	for _, l := range s.Layers {
		out = append(out, l.Params()...)
	}
	return out
}

// Layer returns the layer of that name, or nil.
func (s *Sequential) Layer(name string) Layer {
	for _, l := range s.Layers {
		if l.Name() == name {
			return l
		}
	}
	return nil
}

// NewSimpleCNN builds the lesson's MNIST model, exactly:
// Conv2d(1→32,k3) → ReLU → MaxPool(2,2) → Conv2d(32→64,k3) → ReLU →
// MaxPool(2,2) → flatten (1600) → Linear(1600→128) → ReLU → Linear(128→10),
// initialized from seed. Input [N,1,28,28], output logits [N,10].
func NewSimpleCNN(seed uint64) *Sequential {
	r := rand.New(rand.NewPCG(seed, 0x6b696c6e)) // "kiln"
	return &Sequential{Layers: []Layer{
		NewConv2d("conv1", 1, 32, 3, r),
		&ReLULayer{"relu1"},
		&MaxPool2dLayer{"pool1", 2, 2},
		NewConv2d("conv2", 32, 64, 3, r),
		&ReLULayer{"relu2"},
		&MaxPool2dLayer{"pool2", 2, 2},
		&FlattenLayer{"flatten"},
		NewLinear("fc1", 1600, 128, r),
		&ReLULayer{"relu3"},
		NewLinear("fc2", 128, 10, r),
	}}
}

// String describes the layers, one a line.
func (s *Sequential) String() string {
	out := ""
	for _, l := range s.Layers {
		switch l := l.(type) {
		case *Conv2dLayer:
			out += fmt.Sprintf("%s: Conv2d(%d→%d, k%d)\n", l.LayerName, l.In, l.Out, l.Kernel)
		case *LinearLayer:
			out += fmt.Sprintf("%s: Linear(%d→%d)\n", l.LayerName, l.In, l.Out)
		case *MaxPool2dLayer:
			out += fmt.Sprintf("%s: MaxPool2d(%d, stride %d)\n", l.LayerName, l.Kernel, l.Stride)
		default:
			out += fmt.Sprintf("%s: %T\n", l.Name(), l)
		}
	}
	return out
}
