package nn

import (
	"math"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

func init() {
	ops.Register(&ops.Op{Type: "BatchNormalization", MinOpset: 6, Run: batchNorm, Infer: inferBatchNorm})
}

// bnTraining reports whether the node computes batch statistics: the
// training_mode attribute from opset 14, extra outputs before.
func bnTraining(a attrGetter, n *ir.Node, opset int64) bool {
	if opset >= 14 {
		return a.Int("training_mode", 0) != 0
	}
	return wantOut(n, 1) || wantOut(n, 2) || wantOut(n, 3) || wantOut(n, 4)
}

func inferBatchNorm(c *ops.InferCtx) error {
	x, err := c.Input(0)
	if err != nil {
		return err
	}
	c.Out[0] = x.Clone()
	for k := 1; k < len(c.Out); k++ {
		if !wantOut(c.Node, k) {
			continue
		}
		src := optType(c, 3) // running statistics have the type of mean
		if src == nil {
			src = x
		}
		if src != x && src.HasShape {
			c.Out[k] = ir.TensorType(src.DType, append(ir.Shape{}, src.Shape...))
		} else if x.HasShape && len(x.Shape) >= 2 {
			c.Out[k] = ir.TensorType(src.DType, ir.Shape{x.Shape[1]})
		} else {
			c.Out[k] = &ir.Type{DType: src.DType}
		}
	}
	return nil
}

// batchNorm normalizes per channel with the given statistics (inference) or
// the batch's (training), where it also returns the updated running mean
// and variance: running = input·momentum + batch·(1-momentum).
func batchNorm(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := needFloat(c, in, 0, "X")
	if err != nil {
		return nil, err
	}
	if x.Rank() < 2 {
		return nil, c.Errorf("X has rank %d, want at least 2 (N, C, ...)", x.Rank())
	}
	eps := float64(c.Float("epsilon", 1e-5))
	momentum := float64(c.Float("momentum", 0.9))
	spatial := c.Int("spatial", 1) != 0 || c.Opset >= 9
	training := bnTraining(c, c.Node, c.Opset)
	if err := c.Err(); err != nil {
		return nil, err
	}
	C, sp := x.Dims[1], prod(x.Dims[2:])
	// per is the number of parameter entries: C, or C·spatial with spatial=0 (opset < 9)
	per, stride := C, sp
	if !spatial {
		per, stride = C*sp, 1
	}
	var p [4][]float64
	for i, name := range []string{"scale", "B", "mean", "var"} {
		t := opt(in, i+1)
		if t == nil || !t.DType.IsFloat() {
			return nil, c.Errorf("input %s is missing or not floating-point", name)
		}
		if t.Len() != per {
			return nil, c.Errorf("%s has dims %v, want %d values for X %v", name, t.Dims, per, x.Dims)
		}
		p[i] = floats(t)
	}
	scale, bias, mean, variance := p[0], p[1], p[2], p[3]
	xs := floats(x)
	// param index of flat element i: (i / stride) % per
	if training {
		bm, bv := make([]float64, per), make([]float64, per)
		cnt := float64(len(xs)) / float64(per)
		for i, v := range xs {
			bm[(int64(i)/stride)%per] += v
		}
		for k := range bm {
			bm[k] /= cnt
		}
		for i, v := range xs {
			k := (int64(i) / stride) % per
			d := v - bm[k]
			bv[k] += d * d
		}
		for k := range bv {
			bv[k] /= cnt
		}
		rm, rv := make([]float64, per), make([]float64, per)
		for k := range rm {
			rm[k] = mean[k]*momentum + bm[k]*(1-momentum)
			rv[k] = variance[k]*momentum + bv[k]*(1-momentum)
		}
		normalize(xs, scale, bias, bm, bv, eps, stride, per)
		mdt, vdt := in[3].DType, in[4].DType
		outs := []*ir.Tensor{fromFloats(x.DType, x.Dims, xs)}
		pd := in[3].Dims
		extra := []*ir.Tensor{fromFloats(mdt, pd, rm), fromFloats(vdt, pd, rv),
			fromFloats(mdt, pd, bm), fromFloats(vdt, pd, bv)}
		for k := 1; k < len(c.Node.Outputs) && k <= 4; k++ {
			outs = append(outs, extra[k-1])
		}
		return outs, nil
	}
	normalize(xs, scale, bias, mean, variance, eps, stride, per)
	outs := []*ir.Tensor{fromFloats(x.DType, x.Dims, xs)}
	for k := 1; k < len(c.Node.Outputs); k++ {
		outs = append(outs, nil)
	}
	return outs, nil
}

func normalize(xs, scale, bias, mean, variance []float64, eps float64, stride, per int64) {
	for i, v := range xs {
		k := (int64(i) / stride) % per
		xs[i] = (v-mean[k])/math.Sqrt(variance[k]+eps)*scale[k] + bias[k]
	}
}
