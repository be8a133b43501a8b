package ops

import (
	"github.com/kilnml/kiln/ir"
)

// SameAsInput is the inference of ops whose every output has input i's type.
func SameAsInput(i int) InferFunc {
	return func(c *InferCtx) error {
		t, err := c.Input(i)
		if err != nil {
			return err
		}
		for k := range c.Out {
			if c.Node.Outputs[k] != "" {
				c.Out[k] = t.Clone()
			}
		}
		return nil
	}
}

// BroadcastInfer infers a broadcasting op over inputs idx (all inputs when
// idx is empty). The output dtype is that of input 0, or outDType when it is
// not Undefined (comparisons give bool).
func BroadcastInfer(outDType ir.DType, idx ...int) InferFunc {
	return func(c *InferCtx) error {
		idx := idx // the closure is shared by every node of the op: don't keep one node's inputs
		if len(idx) == 0 {
			for i := range c.In {
				idx = append(idx, i)
			}
		}
		var shapes []ir.Shape
		known := true
		for _, i := range idx {
			if i >= len(c.In) || c.In[i] == nil {
				continue
			}
			if !c.In[i].HasShape {
				known = false
				continue
			}
			shapes = append(shapes, c.In[i].Shape)
		}
		t0, err := c.Input(idx[0])
		if err != nil {
			return err
		}
		dt := t0.DType
		if outDType != ir.Undefined {
			dt = outDType
		}
		if !known {
			c.Out[0] = &ir.Type{DType: dt}
			return nil
		}
		s, err := BroadcastShapes(shapes...)
		if err != nil {
			return c.Errorf("%v", err)
		}
		c.Out[0] = ir.TensorType(dt, s)
		return nil
	}
}

// CheckSameDType returns an error when inputs idx do not share one dtype.
func (c *InferCtx) CheckSameDType(idx ...int) error {
	var first ir.DType
	for _, i := range idx {
		if i >= len(c.In) || c.In[i] == nil {
			continue
		}
		if first == ir.Undefined {
			first = c.In[i].DType
		} else if c.In[i].DType != first {
			return c.Errorf("input %d is %s but an earlier input is %s", i, c.In[i].DType, first)
		}
	}
	return nil
}
