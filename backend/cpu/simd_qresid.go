package cpu

import (
	"fmt"
	"slices"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/kernels/avx"
	"github.com/kilnml/kiln/ops/kilnq"
)

// Quantized residuals (ops/kilnq's z_scale/z_zero): a kiln.QConv/QGemm/
// QMatMul whose residual input is codes, whose value is DequantizeLinear's
// float32(code − z_zero)·z_scale. The INT8 kernels read int8/uint8 codes in
// the micro-kernel's epilogue (avx.QEpi's QZCode), so the residual stream
// between ResNet blocks stays one byte per element and the QuantizeLinear
// between blocks disappears.

// qEpilogueInputs is epilogueInputs for a quantized layer: the residual is
// float32 without z_scale, else codes of one of zTypes (the kernel's); any
// other residual type declines the layer. zType is the residual's type
// (Undefined without one).
func qEpilogueInputs(l *engine.Layer, ql *kilnq.Layer, weights []*ir.Tensor, channels int, zTypes ...ir.DType) (_ []*ir.Tensor, inputs []int, bias bool, zType ir.DType, err error) {
	n := l.Node
	if !hasInput(n, 3) {
		if ql.ZScale != 0 {
			return nil, nil, false, 0, fmt.Errorf("%s: z_scale %g without a residual input", n, ql.ZScale)
		}
		weights, inputs, bias, _, err = epilogueInputs(l, weights, channels)
		return weights, inputs, bias, ir.Undefined, err
	}
	zType = inDType(l, 3)
	if err := ql.CheckResidual(zType); err != nil {
		return nil, nil, false, 0, fmt.Errorf("%s: %v", n, err)
	}
	if ql.ZScale == 0 {
		weights, inputs, bias, _, err = epilogueInputs(l, weights, channels)
		return weights, inputs, bias, zType, err
	}
	if !slices.Contains(zTypes, zType) {
		return nil, nil, false, 0, fmt.Errorf("%s: %s residual codes: this kernel reads %v", n, zType, zTypes)
	}
	// The bias as epilogueInputs checks it, on the node without input 3.
	nn := *n
	nn.Inputs = n.Inputs[:3]
	ll := *l
	ll.Node = &nn
	if weights, inputs, bias, _, err = epilogueInputs(&ll, weights, channels); err != nil {
		return nil, nil, false, 0, err
	}
	return weights, append(inputs, 3), bias, zType, nil
}

// checkResidualType reports a residual tensor whose type is not the one
// the layer was built for (zType: Float32 or the codes' type).
func checkResidualType(in []*ir.Tensor, zType ir.DType) error {
	if zType == ir.Undefined {
		zType = ir.Float32 // plans from before quantized residuals
	}
	if len(in) > 1 && in[1] != nil && in[1].DType != zType {
		return fmt.Errorf("residual is %s, the layer reads %s", in[1].DType, zType)
	}
	return nil
}

// setResidual sets the micro-kernel epilogue's residual codes parameters
// (with z_scale > 0; zType int8 or uint8).
func setResidual(q *avx.QLayer, l *kilnq.Layer, zType ir.DType) {
	if l.ZScale == 0 {
		return
	}
	q.ZScale, q.ZZero, q.ZSigned = l.ZScale, l.ZZero, zType == ir.Int8
}

// residualTable maps each residual code of type zt to its value as the
// layer reads it, l.ResidualValue(code's value): for the kernels that add
// the residual in Go (the fp8 ones), a 256-entry lookup gives kilnq's
// float32((v − z_zero)·z_scale) exactly, whatever the code type. nil for
// a type that is no 8-bit code.
func residualTable(l *kilnq.Layer, zt ir.DType) *[256]float32 {
	var t [256]float32
	for c := range 256 {
		var v float32
		switch zt {
		case ir.Int8:
			v = float32(int8(c))
		case ir.Uint8:
			v = float32(c)
		case ir.Float8E4M3FN, ir.Float8E5M2:
			v = fp8Table(zt)[c]
		default:
			return nil
		}
		t[c] = l.ResidualValue(v)
	}
	return &t
}

// portableResidual is the residual check of the portable kernels'
// Lower (cpu.conv, cpu.gemm): floatT without z_scale; with z_scale, any
// code type kilnq allows (they add values from residualTable). It returns
// the residual's type.
func portableResidual(l *engine.Layer, q *quantParam, floatT ir.DType) (ir.DType, error) {
	n, zt := l.Node, inDType(l, 3)
	if q == nil || q.ZScale == 0 {
		if zt != floatT {
			return 0, fmt.Errorf("%s: the residual must be %s", n, floatT)
		}
		return zt, nil
	}
	if err := q.CheckResidual(zt); err != nil {
		return 0, fmt.Errorf("%s: %v", n, err)
	}
	return zt, nil
}

// portableResidualTable is the decoders' check of a quantized residual
// (z_scale > 0: the codes' value table; nil without).
func portableResidualTable(id string, q *quantParam, resid bool, zType ir.DType) (*[256]float32, error) {
	if q == nil || q.ZScale == 0 {
		if !floatResidualOK(0, zType) {
			return nil, fmt.Errorf("%s: residual codes (%s) without z_scale", id, zType)
		}
		return nil, nil
	}
	t := residualTable(&q.Layer, zType)
	if t == nil || !resid {
		return nil, fmt.Errorf("%s: z_scale %g needs residual codes, the plan says %s", id, q.ZScale, zType)
	}
	return t, nil
}

// decodeResidual returns the residual's values: codes through ztab into
// the front of prefix (4 bytes per code).
func decodeResidual(z *ir.Tensor, ztab *[256]float32, prefix []byte) []float32 {
	v := bytesAs[float32](prefix, len(z.Data))
	decodeCodes(v, z.Data, ztab)
	return v
}

// floatResidualOK reports a plan's residual type that the layer reads as
// floats (no z_scale): float32 (Undefined in plans from before quantized
// residuals) or float16; codes there are a corrupt plan, declined by the
// decoders rather than read as floats.
func floatResidualOK(zScale float32, zType ir.DType) bool {
	return zScale != 0 || zType == ir.Undefined || zType == ir.Float32 || zType == ir.Float16
}
