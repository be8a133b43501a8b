// Package kilnq registers the reference kernels of kiln's quantized layers
// (domain "kiln"): kiln.QConv, kiln.QGemm and kiln.QMatMul. Their semantics
// are the contract every INT8/FP8 kernel of every backend meets (see
// docs/ENGINE.md, "Formats and precision assignment"):
//
//	acc  = Σ (x−x_zero)·w over the codes (exact integers for int8/uint8; sums of
//	       decoded float8 values for E4M3, accumulated in float64 here)
//	y    = act(float32(acc)·m[c] + B[c] + Z), m[c] = float32(x_scale·w_scales[c]),
//	       each operation rounded to float32 in that order; act is
//	       kiln.Activation.Apply32 (GELU as kiln.Gelu32, all float32 steps, so
//	       that SIMD kernels can match it bit for bit)
//	out  = saturate(round_half_even(y / y_scale) + y_zero) when y_scale > 0, else y.
//
// Activations are int8 or uint8 with zero points x_zero and y_zero (0 for
// TensorRT's symmetric form; ONNX Runtime's quantizer writes asymmetric
// ones) or float8 (E4M3FN, or E5M2 for tensors whose range E4M3 cannot
// hold: builder.ChooseFP8Formats); weights are int8 or float8 (E4M3FN in
// kiln's engines, also with E5M2 activations) with per-output-channel
// scales w_scales. A layer that writes codes writes its activation's type.
//
// The residual Z (input 3) is float32, or, with z_scale > 0, codes of its
// own type (int8, uint8 with zero point z_zero, E4M3FN or E5M2) whose value
// is ONNX DequantizeLinear's, bit for bit: Z = float32(float32(code −
// z_zero)·z_scale), or float32(decode(code)·z_scale) for float8. That lets a
// residual stream stay quantized between blocks (TensorRT's conv + add +
// requantize) with the same result as a DequantizeLinear before the add.
//
// For int8 the result is bit-exact whatever the summation order, because
// the integer sum is exact and float32(acc) rounds it once.
package kilnq

import (
	"fmt"
	"math"

	"github.com/kilnml/kiln/floatx"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
	"github.com/kilnml/kiln/ops/kiln"
)

// inner op, its opset, and how many leading inputs it takes.
var inner = map[string]struct {
	op    string
	opset int64
	nIn   int
}{
	"QConv":   {"Conv", 11, 2},
	"QGemm":   {"Gemm", 13, 2},
	"QMatMul": {"MatMul", 13, 2},
}

func init() {
	for name := range inner {
		ops.Register(&ops.Op{Type: name, Domain: kiln.Domain, MinOpset: 1, MaxOpset: 1, Run: run, Infer: infer})
	}
}

// Layer holds a quantized node's decoded attributes.
type Layer struct {
	XScale  float32
	XZero   int32 // uint8 activations (ONNX Runtime's asymmetric form) carry a zero point
	WScales []float32
	YScale  float32
	YZero   int32
	ZScale  float32 // > 0: the residual is codes (see the package comment)
	ZZero   int32
	// MScale > 0 (attributes m_scale, m_zero; kernels that take it parse
	// with ParseLayerMid): ONNX Runtime's Q → DQ between the conv and its
	// residual add, kept exact: after the bias, y becomes DequantizeLinear of
	// QuantizeLinear of y with MScale and MZero over the layer's output
	// codes (mq.go), before the residual and the activation.
	MScale  float32
	MZero   int32
	Act     kiln.Activation
	OutType ir.DType // Float32 when YScale == 0, else the activation code type
}

// LayerOf reads and validates the quantization attributes of a node for a
// kernel that reads float32 residuals only: a layer with a quantized
// residual (z_scale) is an error, so that such a kernel declines it.
func LayerOf(n *ir.Node, xType ir.DType) (*Layer, error) {
	l, err := ParseLayer(n, xType)
	if err == nil && l.ZScale != 0 {
		return nil, fmt.Errorf("%s: this kernel does not read a quantized residual (z_scale)", n)
	}
	return l, err
}

// ParseLayer reads and validates the quantization attributes of a node,
// quantized residuals included; a layer with m_scale is an error (kernels
// that take it parse with ParseLayerMid).
func ParseLayer(n *ir.Node, xType ir.DType) (*Layer, error) {
	l, err := ParseLayerMid(n, xType)
	if err == nil && l.MScale != 0 {
		return nil, fmt.Errorf("%s: this kernel does not take m_scale (a quantization before the residual add)", n)
	}
	return l, err
}

// ParseLayerMid is ParseLayer that also accepts m_scale/m_zero.
func ParseLayerMid(n *ir.Node, xType ir.DType) (*Layer, error) {
	l := &Layer{}
	var err error
	if l.XScale, err = n.AttrFloat("x_scale", 0); err != nil {
		return nil, err
	}
	ws, err := n.AttrFloats("w_scales", nil)
	if err != nil {
		return nil, err
	}
	l.WScales = ws
	if l.YScale, err = n.AttrFloat("y_scale", 0); err != nil {
		return nil, err
	}
	xz, err := n.AttrInt("x_zero", 0)
	if err != nil {
		return nil, err
	}
	yz, err := n.AttrInt("y_zero", 0)
	if err != nil {
		return nil, err
	}
	lo, hi := int64(-128), int64(127)
	if xType == ir.Uint8 {
		lo, hi = 0, 255
	}
	if (xz != 0 || yz != 0) && xType != ir.Uint8 && xType != ir.Int8 {
		return nil, fmt.Errorf("%s: zero points need int8 or uint8 activations, not %s", n, xType)
	}
	if xz < lo || xz > hi || yz < lo || yz > hi {
		return nil, fmt.Errorf("%s: zero points %d/%d outside %s's range", n, xz, yz, xType)
	}
	l.XZero, l.YZero = int32(xz), int32(yz)
	if l.Act, err = kiln.ActivationOf(n); err != nil {
		return nil, err
	}
	if !(l.XScale > 0) || math.IsInf(float64(l.XScale), 0) {
		return nil, fmt.Errorf("%s: x_scale %v must be positive and finite", n, l.XScale)
	}
	if len(ws) == 0 {
		return nil, fmt.Errorf("%s: w_scales is missing", n)
	}
	for i, s := range ws {
		if !(s > 0) || math.IsInf(float64(s), 0) {
			return nil, fmt.Errorf("%s: w_scales[%d] = %v must be positive and finite", n, i, s)
		}
	}
	if l.YScale < 0 || math.IsInf(float64(l.YScale), 0) || math.IsNaN(float64(l.YScale)) {
		return nil, fmt.Errorf("%s: y_scale %v must be >= 0 and finite", n, l.YScale)
	}
	if err := l.parseResidual(n); err != nil {
		return nil, err
	}
	l.OutType = ir.Float32
	if l.YScale > 0 {
		l.OutType = xType
	}
	if err := l.parseMid(n); err != nil {
		return nil, err
	}
	return l, nil
}

// parseResidual reads z_scale and z_zero, the quantized residual's
// parameters; their range check against the residual's type is in
// CheckResidual, which sees the tensor.
func (l *Layer) parseResidual(n *ir.Node) error {
	zs, err := n.AttrFloat("z_scale", 0)
	if err != nil {
		return err
	}
	zz, err := n.AttrInt("z_zero", 0)
	if err != nil {
		return err
	}
	if zs < 0 || math.IsInf(float64(zs), 0) || math.IsNaN(float64(zs)) {
		return fmt.Errorf("%s: z_scale %v must be >= 0 and finite", n, zs)
	}
	if zs == 0 && zz != 0 {
		return fmt.Errorf("%s: z_zero %d without z_scale", n, zz)
	}
	if zz < -128 || zz > 255 {
		return fmt.Errorf("%s: z_zero %d outside the 8-bit codes' range", n, zz)
	}
	l.ZScale, l.ZZero = zs, int32(zz)
	return nil
}

// CheckResidual validates a residual's type against the layer: float32
// without z_scale; int8, uint8 (z_zero in range), E4M3FN or E5M2 (z_zero 0)
// with it.
func (l *Layer) CheckResidual(dt ir.DType) error {
	if l.ZScale == 0 {
		if dt != ir.Float32 {
			return fmt.Errorf("residual is %s without z_scale, want float32 (or codes with z_scale)", dt)
		}
		return nil
	}
	lo, hi := int32(0), int32(0)
	switch dt {
	case ir.Int8:
		lo, hi = -128, 127
	case ir.Uint8:
		lo, hi = 0, 255
	case ir.Float8E4M3FN, ir.Float8E5M2:
	default:
		return fmt.Errorf("quantized residual (z_scale %g) is %s, want int8, uint8, float8e4m3fn or float8e5m2", l.ZScale, dt)
	}
	if l.ZZero < lo || l.ZZero > hi {
		return fmt.Errorf("z_zero %d outside %s's range", l.ZZero, dt)
	}
	return nil
}

// ResidualValue is the residual's float32 value from its stored form v:
// the float itself without z_scale, else the code's exact value (code −
// z_zero for integers, the decoded float8), dequantized as
// DequantizeLinear does: one float32 multiplication.
func (l *Layer) ResidualValue(v float32) float32 {
	if l.ZScale == 0 {
		return v
	}
	return float32((v - float32(l.ZZero)) * l.ZScale)
}

// Epilogue maps one accumulator of output channel c to the output value
// (before output quantization), exactly as every backend must.
func (l *Layer) Epilogue(acc float32, c int, bias, resid float32) float32 {
	m := float32(l.XScale * l.WScales[min(c, len(l.WScales)-1)])
	y := float32(acc * m)
	y = float32(y + bias)
	if l.MScale > 0 {
		y = l.MidValue(y)
	}
	y = float32(y + resid)
	return l.Act.Apply32(y)
}

// QuantizeOut maps y to an output code: int8 or uint8 (with y_zero)
// saturating, or E4M3/E5M2 saturating (round to nearest even, as ONNX's
// QuantizeLinear with saturate=1).
func (l *Layer) QuantizeOut(y float32) int64 {
	v := float32(y / l.YScale)
	if f, ok := FP8Format(l.OutType); ok {
		return int64(floatx.F32ToF8(v, f, true))
	}
	lo, hi := float64(-128), float64(127)
	if l.OutType == ir.Uint8 {
		lo, hi = 0, 255
	}
	r := math.RoundToEven(float64(v)) + float64(l.YZero)
	switch {
	case math.IsNaN(r):
		return int64(lo)
	case r < lo:
		return int64(lo)
	case r > hi:
		return int64(hi)
	}
	return int64(r)
}

// FP8Format is the floatx codec of a float8 code type kiln's quantized
// layers take (E4M3FN, E5M2).
func FP8Format(dt ir.DType) (floatx.F8Format, bool) {
	switch dt {
	case ir.Float8E4M3FN:
		return floatx.E4M3FN, true
	case ir.Float8E5M2:
		return floatx.E5M2, true
	}
	return 0, false
}

// codesToFloat returns code − zero as float32 (exact for 8-bit codes).
func codesToFloat(t *ir.Tensor, zero int32) (*ir.Tensor, error) {
	switch t.DType {
	case ir.Int8, ir.Uint8, ir.Float8E4M3FN, ir.Float8E5M2:
	default:
		return nil, fmt.Errorf("quantized input %q is %s, want int8, uint8, float8e4m3fn or float8e5m2", t.Name, t.DType)
	}
	f := ir.NewTensor(ir.Float32, t.Dims)
	out := f.F32()
	for i := range out {
		out[i] = float32(t.Float64At(int64(i)) - float64(zero))
	}
	return f, nil
}

func innerNode(n *ir.Node) (*ir.Node, int64, int) {
	spec := inner[n.OpType]
	in := *n
	in.OpType, in.Domain = spec.op, ""
	in.Inputs = n.Inputs[:min(len(n.Inputs), spec.nIn)]
	var attrs []*ir.Attribute
	for _, a := range n.Attrs {
		switch a.Name {
		case "activation", "act_alpha", "act_beta", "kiln_members", "kiln_member_ops", "x_scale", "w_scales", "y_scale", "z_scale", "z_zero", "m_scale", "m_zero", kiln.PoolAttr:
		default:
			attrs = append(attrs, a)
		}
	}
	in.Attrs = attrs
	return &in, spec.opset, spec.nIn
}

// channelAxis is the axis of the output whose index selects w_scales[c] and B[c].
func channelAxis(op string, rank int) int {
	if op == "QConv" {
		return 1
	}
	return rank - 1
}

func run(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	if len(in) < 2 || in[0] == nil || in[1] == nil {
		return nil, c.Errorf("needs the quantized activation and weight inputs")
	}
	_, xf8 := FP8Format(in[0].DType)
	_, wf8 := FP8Format(in[1].DType)
	if in[0].DType != in[1].DType && !(in[0].DType == ir.Uint8 && in[1].DType == ir.Int8) && !(xf8 && wf8) {
		return nil, c.Errorf("activation is %s but weights are %s", in[0].DType, in[1].DType)
	}
	l, err := ParseLayerMid(c.Node, in[0].DType)
	if err != nil {
		return nil, err
	}
	pool, err := fusedPool(c.Node)
	if err != nil {
		return nil, err
	}
	x, err := codesToFloat(in[0], l.XZero)
	if err != nil {
		return nil, c.Errorf("%v", err)
	}
	w, err := codesToFloat(in[1], 0)
	if err != nil {
		return nil, c.Errorf("%v", err)
	}
	n, opset, _ := innerNode(c.Node)
	op, err := ops.Lookup("", n.OpType, opset)
	if err != nil {
		return nil, err
	}
	ic := ops.NewCtx(n, opset)
	outs, err := op.Run(ic, []*ir.Tensor{x, w})
	if err == nil {
		err = ic.Err()
	}
	if err != nil {
		return nil, err
	}
	acc := outs[0] // float32(exact sum) for int8: the float reference accumulates in float64
	ax := channelAxis(c.Node.OpType, acc.Rank())
	nc := acc.Dims[ax]
	if len(l.WScales) != 1 && int64(len(l.WScales)) != nc {
		return nil, c.Errorf("w_scales has %d entries for %d output channels", len(l.WScales), nc)
	}
	var bias, resid *ir.Tensor
	if len(in) > 2 && in[2] != nil {
		bias = in[2]
		if bias.DType != ir.Float32 || bias.Len() != nc {
			return nil, c.Errorf("bias is %s%v, want float32[%d]", bias.DType, bias.Dims, nc)
		}
	}
	if len(in) > 3 && in[3] != nil {
		resid = in[3]
		if err := l.CheckResidual(resid.DType); err != nil {
			return nil, c.Errorf("%v", err)
		}
		if !sameDims(resid.Dims, acc.Dims) {
			return nil, c.Errorf("residual dims %v, want %v", resid.Dims, acc.Dims)
		}
	}
	out := ir.NewTensor(l.OutType, acc.Dims)
	inner := int64(1)
	for _, d := range acc.Dims[ax+1:] {
		inner *= d
	}
	av := acc.F32()
	for i := range av {
		ch := int((int64(i) / inner) % nc)
		var b, z float32
		if bias != nil {
			b = bias.F32()[ch]
		}
		if resid != nil {
			z = l.ResidualValue(float32(resid.Float64At(int64(i)))) // exact: 8-bit codes and float32 values
		}
		y := l.Epilogue(av[i], ch, b, z)
		switch {
		case l.YScale == 0:
			out.F32()[i] = y
		case l.OutType == ir.Float8E4M3FN || l.OutType == ir.Float8E5M2:
			out.U8()[i] = uint8(l.QuantizeOut(y)) // the code itself, not its value
		default:
			out.SetInt64At(int64(i), l.QuantizeOut(y))
		}
	}
	if pool { // over the output codes (or floats), as the unfused MaxPool
		if out, err = kiln.ApplyPool(c.Node, out); err != nil {
			return nil, err
		}
	}
	return []*ir.Tensor{out}, nil
}

// fusedPool reads the pool attribute (kiln.PoolOf), which only QConv takes,
// and not with float8 outputs (ONNX's MaxPool has no float8 form).
func fusedPool(n *ir.Node) (bool, error) {
	pool, err := kiln.PoolOf(n)
	if err == nil && pool && n.OpType != "QConv" {
		err = fmt.Errorf("%s: only kiln.QConv takes a fused pool", n)
	}
	return pool, err
}

func infer(c *ops.InferCtx) error {
	x, err := c.Input(0)
	if err != nil {
		return err
	}
	l, err := ParseLayerMid(c.Node, x.DType)
	if err != nil {
		return err
	}
	if len(c.In) > 3 && c.In[3] != nil {
		if err := l.CheckResidual(c.In[3].DType); err != nil {
			return fmt.Errorf("%s: %v", c.Node, err)
		}
	}
	n, opset, nIn := innerNode(c.Node)
	op, err := ops.Lookup("", n.OpType, opset)
	if err != nil {
		return err
	}
	k := min(len(c.In), nIn)
	ic := ops.NewInferCtx(n, opset, floatTypes(c.In[:k]), make([]*ir.Tensor, k), make([]ir.Shape, k))
	if err := op.Infer(ic); err != nil {
		return err
	}
	if err := ic.Err(); err != nil {
		return err
	}
	t := ic.Out[0].Clone()
	t.DType = l.OutType
	pool, err := fusedPool(c.Node)
	if err != nil {
		return err
	}
	if pool {
		if t, err = kiln.InferPool(c.Node, t); err != nil {
			return err
		}
	}
	c.Out[0] = t
	return nil
}

func floatTypes(ts []*ir.Type) []*ir.Type {
	out := make([]*ir.Type, len(ts))
	for i, t := range ts {
		if t != nil {
			out[i] = t.Clone()
			out[i].DType = ir.Float32
		}
	}
	return out
}

func sameDims(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
