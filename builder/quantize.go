package builder

import (
	"fmt"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/quant"
)

// Explicit quantization: turn the QuantizeLinear/DequantizeLinear pairs of a
// Q/DQ graph (from a file, or inserted by kiln from calibration ranges) into
// kiln.QConv/QGemm/QMatMul layers that run on quantized codes, as TensorRT
// does with Q/DQ networks:
//
//  1. sink: Q(p(y)) → p(Q(y)) for ops p that commute with quantization
//     (MaxPool, Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Identity,
//     and Relu with a zero point of 0), so quantized layers chain through them;
//  2. layers: Conv/Gemm/MatMul (plain or fused kiln.*) whose activation comes
//     from a per-tensor DequantizeLinear and whose weight is a constant behind
//     a DequantizeLinear (or a Q→DQ pair on a float constant) become kiln.Q*
//     layers reading the codes directly, with float output; a fused residual
//     input behind a per-tensor DequantizeLinear is read as codes too;
//  3. outputs: a kiln.Q* whose only reader is a per-tensor QuantizeLinear of
//     its own code type writes codes directly (requantization in the epilogue);
//  4. residual adds: DQ(a) + DQ(b) → [Relu] → Q becomes one kiln.QAdd on
//     the codes (quantize_add.go), folded into the conv producing one input
//     where it can (m_scale: quantize_mid.go);
//  5. Q(DQ(q)) with the same parameters cancels; dead Q/DQ nodes go.
//
// What remains of Q and DQ are the reformats at the edges of quantized
// regions. Layers that do not match stay in float and are reported.
func convertQDQ(m *ir.Model, rep *Report, logf func(string, ...any), floatResiduals bool) error {
	c := &qdqConv{m: m, rep: rep, logf: logf, floatResiduals: floatResiduals}
	c.index()
	for changed := true; changed; {
		changed = c.sink()
	}
	if err := c.layers(); err != nil {
		return err
	}
	c.fuseOutputs()
	if !qaddVetoed() {
		c.fuseAdds()
		c.fuseMids()
	}
	c.cancelPairs()
	c.dce()
	return nil
}

type qdqConv struct {
	m     *ir.Model
	rep   *Report
	logf  func(string, ...any)
	cst   map[string]*ir.Tensor
	prod  map[string]*ir.Node
	cons  map[string][]*ir.Node
	outs  map[string]bool
	count int
	// floatResiduals keeps dequantized residual inputs float (Config.FloatResiduals)
	floatResiduals bool
}

func (c *qdqConv) index() {
	g := c.m.Graph
	c.cst = g.InitializerMap()
	for _, n := range g.Nodes {
		if n.OpType == "Constant" && n.Domain == "" && len(n.Outputs) == 1 {
			if t, _ := n.AttrTensor("value"); t != nil {
				c.cst[n.Outputs[0]] = t
			}
		}
	}
	c.prod, c.cons = g.Producers(), g.Consumers()
	c.outs = map[string]bool{}
	for _, o := range g.Outputs {
		c.outs[o.Name] = true
	}
}

func (c *qdqConv) fresh(base string) string {
	c.count++
	return fmt.Sprintf("%s__kq%d", base, c.count)
}

// qdqParams reads the scale/zero point/axis of a Q or DQ node.
type qdqParams struct {
	scale []float32
	zero  *ir.Tensor // nil: uint8 zero (ONNX's default)
	dtype ir.DType
	axis  int64
	node  *ir.Node
}

func (c *qdqConv) params(n *ir.Node) (*qdqParams, bool) {
	if n.Domain != "" || len(n.Inputs) < 2 {
		return nil, false
	}
	s := c.cst[n.Inputs[1]]
	if s == nil || s.DType != ir.Float32 {
		return nil, false
	}
	p := &qdqParams{scale: s.F32(), dtype: ir.Uint8, node: n}
	if len(n.Inputs) > 2 && n.Inputs[2] != "" {
		z := c.cst[n.Inputs[2]]
		if z == nil {
			return nil, false
		}
		p.zero, p.dtype = z, z.DType
	}
	if od, _ := n.AttrInt("output_dtype", 0); n.OpType == "QuantizeLinear" && od != 0 {
		p.dtype = ir.DType(od)
	}
	if bs, _ := n.AttrInt("block_size", 0); bs != 0 {
		return nil, false
	}
	p.axis, _ = n.AttrInt("axis", 1)
	if s.Len() == 1 {
		p.axis = -1
	}
	return p, true
}

// perTensor returns scale and zero point of per-tensor activation params.
func (p *qdqParams) perTensor() (float32, int32, bool) {
	if len(p.scale) != 1 || !(p.scale[0] > 0) {
		return 0, 0, false
	}
	z := int32(0)
	if p.zero != nil {
		if p.zero.Len() != 1 {
			return 0, 0, false
		}
		z = int32(p.zero.Int64At(0))
	}
	switch p.dtype {
	case ir.Float8E4M3FN, ir.Float8E5M2:
		return p.scale[0], z, z == 0
	case ir.Int8, ir.Uint8:
		return p.scale[0], z, true
	}
	return 0, 0, false
}

func sameParams(a, b *qdqParams) bool {
	if a.dtype != b.dtype || len(a.scale) != len(b.scale) || a.axis != b.axis {
		return false
	}
	for i := range a.scale {
		if a.scale[i] != b.scale[i] {
			return false
		}
	}
	za, zb := int64(0), int64(0)
	for i := range a.scale {
		if a.zero != nil {
			za = a.zero.Int64At(int64(i))
		}
		if b.zero != nil {
			zb = b.zero.Int64At(int64(i))
		}
		if za != zb {
			return false
		}
	}
	return true
}

var commutesWithQ = map[string]bool{"MaxPool": true, "GlobalMaxPool": true, "Reshape": true, "Flatten": true, "Transpose": true,
	"Squeeze": true, "Unsqueeze": true, "Identity": true, "Relu": true}

// sink moves one QuantizeLinear above a commuting op; it reports a change.
func (c *qdqConv) sink() bool {
	g := c.m.Graph
	for qi, q := range g.Nodes {
		if q.OpType != "QuantizeLinear" || q.Domain != "" {
			continue
		}
		p := c.prod[q.Inputs[0]]
		if p == nil || p.Domain != "" || !commutesWithQ[p.OpType] || len(p.Outputs) != 1 || len(c.cons[p.Outputs[0]]) != 1 || c.outs[p.Outputs[0]] {
			continue
		}
		qp, ok := c.params(q)
		if !ok {
			continue
		}
		if _, z, ok := qp.perTensor(); !ok || (p.OpType == "Relu" && z != 0) {
			continue
		}
		if p.OpType == "Relu" && qp.dtype == ir.Uint8 {
			// uint8 codes with zero point 0 already clamp negatives to 0:
			// Q(Relu(y)) = Q(y), and ONNX's Relu has no uint8 form, so
			// the Relu goes (dead code) instead of moving onto the codes.
			q.Inputs[0] = p.Inputs[0]
			c.logf("Dropping %s before %s (uint8 codes with zero point 0 clamp at 0 already)", p.Name, q.Name)
			c.index()
			return true
		}
		// New Q on p's data input; p then reads codes and writes q's output.
		x := p.Inputs[0]
		xq := c.fresh(x + "_quantized")
		nq := q.Clone()
		nq.Name = c.fresh(q.Name)
		nq.Inputs[0], nq.Outputs = x, []string{xq}
		p.Inputs[0] = xq
		p.Outputs = []string{q.Outputs[0]}
		// Replace q by nq, placed before p.
		nodes := make([]*ir.Node, 0, len(g.Nodes))
		for i, n := range g.Nodes {
			if i == qi {
				continue
			}
			if n == p {
				nodes = append(nodes, nq)
			}
			nodes = append(nodes, n)
		}
		g.Nodes = nodes
		c.logf("Moving %s above %s (%s runs on quantized data)", q.Name, p.Name, p.OpType)
		c.index()
		return true
	}
	return false
}

// dqInput returns the DequantizeLinear producing name, with its params.
func (c *qdqConv) dqInput(name string) (*qdqParams, bool) {
	n := c.prod[name]
	if n == nil || n.OpType != "DequantizeLinear" || n.Domain != "" {
		return nil, false
	}
	return c.params(n)
}

// constWeight returns the quantized codes of a weight input: a constant
// behind DQ, or a float constant behind Q→DQ (quantized here).
func (c *qdqConv) constWeight(dq *qdqParams) (*ir.Tensor, bool) {
	src := dq.node.Inputs[0]
	if t := c.cst[src]; t != nil {
		return t, true
	}
	q := c.prod[src]
	if q == nil || q.OpType != "QuantizeLinear" {
		return nil, false
	}
	f := c.cst[q.Inputs[0]]
	qp, ok := c.params(q)
	if f == nil || !ok || !sameParams(qp, dq) || f.DType != ir.Float32 {
		return nil, false
	}
	p, err := quant.FromQDQ(quant.QDQ{DType: qp.dtype, Scale: scaleTensor(qp), ZeroPoint: qp.zero, Axis: qp.axis, Rank: f.Rank(), Saturate: true})
	if err != nil {
		return nil, false
	}
	codes, err := quant.Quantize(f, p)
	if err != nil {
		return nil, false
	}
	return codes, true
}

func scaleTensor(p *qdqParams) *ir.Tensor {
	dims := []int64{}
	if len(p.scale) != 1 || p.axis >= 0 {
		dims = []int64{int64(len(p.scale))}
	}
	return ir.FromFloat32s(dims, p.scale)
}
