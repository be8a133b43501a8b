package quant

import (
	"fmt"

	"github.com/kilnml/kiln/ir"
)

// each quantizes every element of x (row-major, dims) under p and calls visit
// with the element's index, code, whether it was clipped, and its scale and
// zero point.
func each(p *Params, dims []int64, x []float32, visit func(i, code int64, clipped bool, s float32, z int32)) error {
	l, err := p.layoutFor(dims)
	if err != nil {
		return err
	}
	if int64(len(x)) != l.n {
		return fmt.Errorf("quant: %d values for dims %v (%d elements)", len(x), dims, l.n)
	}
	f, _ := formatOf(p.DType)
	lo, hi, _ := IntRange(p.DType, p.Narrow)
	l.walk(func(start, count int64, g0, gstep int) {
		g := g0
		s, z := p.Scale[g], p.Zero(g)
		for i := start; i < start+count; i++ {
			if gstep != 0 {
				s, z = p.Scale[g], p.Zero(g)
				g += gstep
			}
			code, clipped := f.quantizeOne(x[i], s, z, lo, hi, p.Saturate)
			visit(i, code, clipped, s, z)
		}
	})
	return nil
}

func float32Data(x *ir.Tensor) ([]float32, error) {
	if x == nil {
		return nil, fmt.Errorf("quant: nil tensor")
	}
	if x.DType != ir.Float32 {
		return nil, fmt.Errorf("quant: tensor %q is %s; quantization takes float32", x.Name, x.DType)
	}
	if err := x.Check(); err != nil {
		return nil, fmt.Errorf("quant: %w", err)
	}
	return x.F32(), nil
}

// Quantize returns x quantized under p: a tensor of p.DType with x's name and dims.
func Quantize(x *ir.Tensor, p *Params) (*ir.Tensor, error) {
	data, err := float32Data(x)
	if err != nil {
		return nil, err
	}
	q, err := QuantizeSlice(data, x.Dims, p)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", x.Name, err)
	}
	q.Name = x.Name
	return q, nil
}

// QuantizeSlice quantizes row-major float32 values of the given dims.
func QuantizeSlice(x []float32, dims []int64, p *Params) (*ir.Tensor, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if _, err := ir.NumElements(dims); err != nil {
		return nil, fmt.Errorf("quant: %w", err)
	}
	q := ir.NewTensor(p.DType, dims)
	f, _ := formatOf(p.DType)
	err := each(p, dims, x, func(i, code int64, _ bool, _ float32, _ int32) { f.storeCode(q, i, code) })
	if err != nil {
		return nil, err
	}
	return q, nil
}

// Dequantize returns the float32 tensor (q − Z)·S (float types: decode(q)·S).
func Dequantize(q *ir.Tensor, p *Params) (*ir.Tensor, error) {
	if q == nil {
		return nil, fmt.Errorf("quant: nil tensor")
	}
	if _, err := ir.NumElements(q.Dims); err != nil {
		return nil, fmt.Errorf("quant: tensor %q: %w", q.Name, err)
	}
	out := ir.NewTensor(ir.Float32, q.Dims)
	out.Name = q.Name
	if err := DequantizeInto(out.F32(), q, p); err != nil {
		return nil, err
	}
	return out, nil
}

// DequantizeInto writes the dequantized values of q into dst (len q.Len()).
func DequantizeInto(dst []float32, q *ir.Tensor, p *Params) error {
	if q == nil {
		return fmt.Errorf("quant: nil tensor")
	}
	if q.DType != p.DType {
		return fmt.Errorf("quant: tensor %q is %s, parameters are for %s", q.Name, q.DType, p.DType)
	}
	if err := q.Check(); err != nil {
		return fmt.Errorf("quant: %w", err)
	}
	l, err := p.layoutFor(q.Dims)
	if err != nil {
		return fmt.Errorf("tensor %q: %w", q.Name, err)
	}
	if int64(len(dst)) != l.n {
		return fmt.Errorf("quant: dequantize %s%v into %d values", q.DType, q.Dims, len(dst))
	}
	f, _ := formatOf(p.DType)
	l.walk(func(start, count int64, g0, gstep int) {
		g := g0
		s, z := p.Scale[g], p.Zero(g)
		for i := start; i < start+count; i++ {
			if gstep != 0 {
				s, z = p.Scale[g], p.Zero(g)
				g += gstep
			}
			dst[i] = f.dequantizeOne(f.loadCode(q, i), s, z)
		}
	})
	return nil
}

// FakeQuantize writes dequantize(quantize(x)) into dst (which may be x itself):
// the float32 values a quantized tensor stands for, as QAT and the
// quantize–dequantize evaluation of calibrated models use them.
func FakeQuantize(dst, x []float32, dims []int64, p *Params) error {
	return FakeQuantizeClipped(dst, nil, x, dims, p)
}

// FakeQuantizeClipped is FakeQuantize that also records, when clipped is not
// nil, which elements lay beyond the representable range (NaN included): the
// mask a straight-through estimator zeroes gradients with in QAT.
func FakeQuantizeClipped(dst []float32, clipped []bool, x []float32, dims []int64, p *Params) error {
	if len(dst) != len(x) || (clipped != nil && len(clipped) != len(x)) {
		return fmt.Errorf("quant: fake-quantize into %d values (mask %d) from %d", len(dst), len(clipped), len(x))
	}
	f, _ := formatOf(p.DType)
	return each(p, dims, x, func(i, code int64, c bool, s float32, z int32) {
		dst[i] = f.dequantizeOne(code, s, z)
		if clipped != nil {
			clipped[i] = c
		}
	})
}

// FakeQuantizeValue quantizes and dequantizes one value with scale group g,
// for callers (calibrators) that score thresholds without building tensors.
// It panics if g is out of range; p must be valid (see Validate).
func (p *Params) FakeQuantizeValue(x float32, g int) float32 {
	f, _ := formatOf(p.DType)
	lo, hi, _ := IntRange(p.DType, p.Narrow)
	code, _ := f.quantizeOne(x, p.Scale[g], p.Zero(g), lo, hi, p.Saturate)
	return f.dequantizeOne(code, p.Scale[g], p.Zero(g))
}
