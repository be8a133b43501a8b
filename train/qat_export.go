package train

import (
	"errors"
	"fmt"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/quant/qdq"
)

// ConvertOptions selects the Q/DQ form Convert writes.
type ConvertOptions struct {
	// InputShape is one example's shape ([1,28,28]); Classes the outputs.
	InputShape []int
	Classes    int
	// Flavor: qdq.TensorRT (symmetric int8 activations, default) or qdq.ORT
	// (uint8 activations with zero point 128: the same grid as int8, so
	// the model computes the same values).
	Flavor qdq.Flavor
	// QuantizedWeights stores int8 weights behind DequantizeLinear instead
	// of float weights behind QuantizeLinear → DequantizeLinear.
	QuantizedWeights bool
	// FP8 writes float8 E4M3 Q/DQ from the same ranges (activations amax/448,
	// weights per channel from max |w|) instead of the trained int8 grid.
	FP8 bool
}

// Convert exports a calibrated or QAT-trained model as an ONNX graph with
// QuantizeLinear/DequantizeLinear pairs (PyTorch's convert, in ONNX form for
// TensorRT and ONNX Runtime): on the input of every quantized Conv/Gemm its
// activation scale, on the weight its per-channel (or per-tensor) scale;
// weights are exported as their fake-quantized values, so that the
// exported model reproduces the trained codes exactly.
func Convert(model *Sequential, opt ConvertOptions) (*ir.Model, error) {
	qs := QuantLayers(model)
	if len(qs) == 0 {
		return nil, errors.New("convert: the model has no quantized layers (call Prepare and Calibrate first)")
	}
	ranges := map[string]qdq.Range{}
	scales := map[string][]float32{}
	perTensor, bits := false, 8
	for i, q := range qs {
		if q.Mode != FakeQuant || q.ActScale == nil {
			return nil, fmt.Errorf("convert: layer %s is not calibrated", q.Name())
		}
		if i == 0 {
			perTensor, bits = q.Config.PerTensorWeights, q.Config.WeightBits
		} else if perTensor != q.Config.PerTensorWeights {
			return nil, errors.New("convert: layers mix per-tensor and per-channel weights")
		}
		s := float64(max(q.ActScale.Data[0], minScale))
		ranges[q.InputName] = qdq.Range{Amax: s * 127, Min: -s * 128, Max: s * 127}
		ws := make([]float32, len(q.WeightScale.Data))
		for k, v := range q.WeightScale.Data {
			ws[k] = max(v, minScale) // as FakeQuantize uses it (a learned scale may have been pushed below 0)
		}
		scales[q.Name()+".weight"] = ws
	}
	m, err := ExportONNX(model, opt.InputShape, opt.Classes)
	if err != nil {
		return nil, err
	}
	o := qdq.Options{Flavor: opt.Flavor, Ranges: ranges, PerTensorWeights: perTensor, QuantizedWeights: opt.QuantizedWeights,
		WeightScales: scales, WeightBits: bits}
	if opt.FP8 {
		o.DType, o.WeightScales, o.WeightBits = ir.Float8E4M3FN, nil, 0
	}
	out, err := qdq.Insert(m, o)
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	out.Doc = "quantized by kiln (Q/DQ)"
	return out, nil
}
