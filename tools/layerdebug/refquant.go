package layerdebug

import (
	"fmt"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/quant"
)

// refQuant knows the QuantizeLinear nodes of the reference graph, so that
// the per-layer comparison can put a reference tensor into the domain of
// the engine value it is compared with:
//
//   - a Q node's output holds codes; it is compared dequantized by that
//     node's own parameters ((q − zero)·scale in float32, as the graph's
//     DequantizeLinear computes it);
//   - a Q node that the builder moved above ops that commute with it
//     (Reshape, Flatten, MaxPool, Relu...: builder/quantize.go's sink)
//     quantizes the float tensor it now reads, which the reference graph
//     never quantizes under that name; the engine's codes then stand for
//     Q(t) with the moved node's parameters, not for t, and comparing them
//     with t would report the quantization noise the reference graph
//     itself adds as the engine's error.
type refQuant struct {
	byOutput map[string]*ir.Node // Q node by the code tensor it writes
	byName   map[string]*ir.Node // Q node by node name
	konst    map[string]*ir.Tensor
}

func newRefQuant(g *ir.Graph) *refQuant {
	r := &refQuant{byOutput: map[string]*ir.Node{}, byName: map[string]*ir.Node{}, konst: g.InitializerMap()}
	for _, n := range g.Nodes {
		if n.Domain != "" {
			continue
		}
		if n.OpType == "Constant" && len(n.Outputs) == 1 {
			if t, _ := n.AttrTensor("value"); t != nil {
				r.konst[n.Outputs[0]] = t
			}
		}
		if n.OpType == "QuantizeLinear" && len(n.Outputs) == 1 {
			r.byOutput[n.Outputs[0]] = n
			if n.Name != "" {
				r.byName[n.Name] = n
			}
		}
	}
	return r
}

// params are a Q node's quantization parameters for an input of the given
// rank; the scale and zero point must be constants.
func (r *refQuant) params(n *ir.Node, rank int) (*quant.Params, error) {
	if len(n.Inputs) < 2 || r.konst[n.Inputs[1]] == nil {
		return nil, fmt.Errorf("QuantizeLinear %s: its scale is not a constant", n.Name)
	}
	q := quant.QDQ{DType: ir.Uint8, Scale: r.konst[n.Inputs[1]], Rank: rank, Saturate: true}
	if len(n.Inputs) > 2 && n.Inputs[2] != "" {
		z := r.konst[n.Inputs[2]]
		if z == nil {
			return nil, fmt.Errorf("QuantizeLinear %s: its zero point is not a constant", n.Name)
		}
		q.ZeroPoint, q.DType = z, z.DType
	}
	if od, _ := n.AttrInt("output_dtype", 0); od != 0 {
		q.DType = ir.DType(od)
	}
	q.Axis, _ = n.AttrInt("axis", 1)
	q.BlockSize, _ = n.AttrInt("block_size", 0)
	if s, _ := n.AttrInt("saturate", 1); s == 0 {
		q.Saturate = false
	}
	p, err := quant.FromQDQ(q)
	if err != nil {
		return nil, fmt.Errorf("QuantizeLinear %s: %w", n.Name, err)
	}
	return p, nil
}

// dequantize returns the real values of codes that Q node n wrote.
func (r *refQuant) dequantize(n *ir.Node, codes *ir.Tensor) ([]float64, error) {
	p, err := r.params(n, codes.Rank())
	if err != nil {
		return nil, err
	}
	f, err := quant.Dequantize(codes, p)
	if err != nil {
		return nil, fmt.Errorf("QuantizeLinear %s: %w", n.Name, err)
	}
	return f.Float64s(), nil
}

// fakeQuantize returns DQ(Q(x)) with Q node n's parameters.
func (r *refQuant) fakeQuantize(n *ir.Node, x *ir.Tensor) ([]float64, error) {
	p, err := r.params(n, x.Rank())
	if err != nil {
		return nil, err
	}
	codes, err := quant.Quantize(x, p)
	if err != nil {
		return nil, fmt.Errorf("QuantizeLinear %s on %s: %w", n.Name, x.Name, err)
	}
	return r.dequantize(n, codes)
}
