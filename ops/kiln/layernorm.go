package kiln

import (
	"fmt"
	"math"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// kiln.LayerNorm(X, Scale, [B]): Y = (X - mean) / sqrt(var + epsilon) · Scale
// + B over the trailing axes from `axis` (default -1), with the population
// variance. Scale and B hold one value per normalized element (the product
// of X.Dims[axis:]). It is what passes make of ONNX LayerNormalization and
// of its expanded form (ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div,
// Mul, Add); it always computes in float64 (the reference) and backends keep
// it in FP32 inside INT8/FP8/FP16 engines.
func init() {
	ops.Register(&ops.Op{Type: "LayerNorm", Domain: Domain, MinOpset: 1, MaxOpset: 1, Run: layerNorm, Infer: ops.SameAsInput(0)})
}

// LayerNormSpec returns the normalized length (product of X.Dims[axis:])
// and the rows, checking Scale and B.
func LayerNormSpec(n *ir.Node, x, scale, bias *ir.Tensor) (rows, size int64, eps float64, err error) {
	axis, err := n.AttrInt("axis", -1)
	if err != nil {
		return 0, 0, 0, err
	}
	e, err := n.AttrFloat("epsilon", 1e-5)
	if err != nil {
		return 0, 0, 0, err
	}
	ax, err := ops.NormAxis(axis, x.Rank())
	if err != nil {
		return 0, 0, 0, err
	}
	size = 1
	for _, d := range x.Dims[ax:] {
		size *= d
	}
	rows = 1
	for _, d := range x.Dims[:ax] {
		rows *= d
	}
	for _, p := range []*ir.Tensor{scale, bias} {
		if p != nil && p.Len() != size {
			return 0, 0, 0, fmt.Errorf("scale/bias has %d elements, want %d (X %v, axis %d)", p.Len(), size, x.Dims, axis)
		}
	}
	return rows, size, float64(e), nil
}

func layerNorm(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	if len(in) < 2 || in[0] == nil || in[1] == nil {
		return nil, c.Errorf("needs X and Scale")
	}
	x, scale := in[0], in[1]
	var bias *ir.Tensor
	if len(in) > 2 {
		bias = in[2]
	}
	if !x.DType.IsFloat() || x.Rank() == 0 {
		return nil, c.Errorf("X must be a floating-point tensor of rank >= 1, got %s%v", x.DType, x.Dims)
	}
	rows, size, eps, err := LayerNormSpec(c.Node, x, scale, bias)
	if err != nil {
		return nil, c.Errorf("%v", err)
	}
	out := ir.NewTensor(x.DType, x.Dims)
	row := make([]float64, size)
	for r := int64(0); r < rows; r++ {
		mean := 0.0
		for i := range row {
			row[i] = x.Float64At(r*size + int64(i))
			mean += row[i]
		}
		mean /= float64(size)
		v := 0.0
		for _, e := range row {
			v += (e - mean) * (e - mean)
		}
		inv := 1 / math.Sqrt(v/float64(size)+eps)
		for i, e := range row {
			y := (e - mean) * inv * scale.Float64At(int64(i))
			if bias != nil {
				y += bias.Float64At(int64(i))
			}
			out.SetFloat64At(r*size+int64(i), y)
		}
	}
	return []*ir.Tensor{out}, nil
}

func errorf(n *ir.Node, format string, args ...any) error {
	return fmt.Errorf("%s: %s", n, fmt.Sprintf(format, args...))
}
