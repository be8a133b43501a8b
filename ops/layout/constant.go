package layout

import (
	"math"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

func init() {
	ops.Register(&ops.Op{Type: "Constant", MinOpset: 1, Run: constant, Infer: constantInfer})
	ops.Register(&ops.Op{Type: "ConstantOfShape", MinOpset: 9, Run: constantOfShape, Infer: constantOfShapeInfer})
	ops.Register(&ops.Op{Type: "EyeLike", MinOpset: 9, Run: eyeLike, Infer: eyeLikeInfer})
	ops.Register(&ops.Op{Type: "Range", MinOpset: 11, Run: rangeOp, Infer: rangeInfer})
}

// constantValue builds Constant's tensor from whichever value attribute it has.
func constantValue(n *ir.Node) (*ir.Tensor, error) {
	var found []*ir.Attribute
	for _, a := range n.Attrs {
		switch a.Name {
		case "value", "sparse_value", "value_float", "value_floats", "value_int", "value_ints", "value_string", "value_strings":
			found = append(found, a)
		}
	}
	if len(found) != 1 {
		return nil, errorf(n, "needs exactly one value attribute, has %d", len(found))
	}
	a := found[0]
	want := map[string]ir.AttrType{"value": ir.AttrTensor, "sparse_value": ir.AttrSparseTensor,
		"value_float": ir.AttrFloat, "value_floats": ir.AttrFloats, "value_int": ir.AttrInt, "value_ints": ir.AttrInts,
		"value_string": ir.AttrString, "value_strings": ir.AttrStrings}[a.Name]
	if a.Type != want {
		return nil, errorf(n, "attribute %q is %v, want %v", a.Name, a.Type, want)
	}
	switch a.Name {
	case "value":
		if a.T == nil {
			return nil, errorf(n, "attribute value holds no tensor")
		}
		if err := a.T.Check(); err != nil {
			return nil, errorf(n, "attribute value: %v", err)
		}
		t := *a.T
		t.Name = ""
		return &t, nil
	case "sparse_value":
		return nil, errorf(n, "sparse_value is not supported")
	case "value_float":
		return ir.ScalarFloat32(a.F), nil
	case "value_floats":
		return ir.FromFloat32s([]int64{int64(len(a.Floats))}, a.Floats), nil
	case "value_int":
		return ir.ScalarInt64(a.I), nil
	case "value_ints":
		return ir.FromInt64s(ir.Int64, []int64{int64(len(a.Ints))}, a.Ints), nil
	case "value_string":
		t := ir.NewTensor(ir.String, nil)
		t.Strings[0] = append([]byte{}, a.S...)
		return t, nil
	default: // value_strings
		t := ir.NewTensor(ir.String, []int64{int64(len(a.Strings))})
		for i, s := range a.Strings {
			t.Strings[i] = append([]byte{}, s...)
		}
		return t, nil
	}
}

func constant(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	t, err := constantValue(c.Node)
	if err != nil {
		return nil, err
	}
	return []*ir.Tensor{t}, nil
}

func constantInfer(c *ops.InferCtx) error {
	t, err := constantValue(c.Node)
	if err != nil {
		return err
	}
	c.Out[0] = t.Type()
	c.OutValue[0] = ops.ValueOf(t)
	return nil
}

// fillValue returns ConstantOfShape's one-element value (float32 0 by default).
func fillValue(e attrGetter) (*ir.Tensor, error) {
	v := e.Tensor("value")
	if v == nil {
		return ir.ScalarFloat32(0), nil
	}
	if err := v.Check(); err != nil {
		return nil, e.Errorf("attribute value: %v", err)
	}
	if v.Len() != 1 {
		return nil, e.Errorf("attribute value must have one element, has shape %v", v.Dims)
	}
	return v, nil
}

func constantOfShape(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	st, err := input(c, in, 0, "input")
	if err != nil {
		return nil, err
	}
	dims, err := intsOf(c, st, "shape")
	if err != nil {
		return nil, err
	}
	v, err := fillValue(c)
	if err != nil {
		return nil, err
	}
	out, err := newOut(c, v.DType, dims)
	if err != nil {
		return nil, err
	}
	fill(out, v)
	return []*ir.Tensor{out}, nil
}

// fill sets every element of out to v's single element, doubling runs so
// that a big fill costs a few large copies.
func fill(out, v *ir.Tensor) {
	n := out.Len()
	if n == 0 {
		return
	}
	copyElem(out, 0, v, 0)
	for done := int64(1); done < n; done *= 2 {
		copyRun(out, done, out, 0, min(done, n-done))
	}
}

func constantOfShapeInfer(c *ops.InferCtx) error {
	v, err := fillValue(c)
	if err != nil {
		return err
	}
	dims, ok := c.InputValue(0)
	if !ok {
		c.Out[0] = &ir.Type{DType: v.DType}
		if st, ok := ranked(c, 0); ok && len(st.Shape) == 1 && st.Shape[0].Known() {
			c.Out[0] = ir.TensorType(v.DType, unknownShape(int(st.Shape[0].Value)))
		}
		return nil
	}
	s := make(ir.Shape, len(dims))
	for i, d := range dims {
		if x, ok := ops.DimValue(d); ok && x < 0 {
			return c.Errorf("shape %v has a negative dimension", dims)
		}
		s[i] = d
	}
	c.Out[0] = ir.TensorType(v.DType, s)
	if len(s) <= 1 && (v.DType.IsInteger()) {
		if n, ok := ops.ValueInts(s); ok && (len(n) == 0 || n[0] <= ops.MaxValueLen) {
			out := ir.NewTensor(v.DType, n)
			fill(out, v)
			c.OutValue[0] = ops.ValueOf(out)
		}
	}
	return nil
}

func eyeLikeType(e attrGetter, in ir.DType) (ir.DType, error) {
	dt := ir.DType(e.Int("dtype", int64(in)))
	if !numeric(dt) {
		return 0, e.Errorf("dtype %d is not supported", int32(dt))
	}
	return dt, nil
}

func eyeLike(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := input(c, in, 0, "input")
	if err != nil {
		return nil, err
	}
	if x.Rank() != 2 {
		return nil, c.Errorf("input must be 2-D, has shape %v", x.Dims)
	}
	dt, err := eyeLikeType(c, x.DType)
	if err != nil {
		return nil, err
	}
	out, err := newOut(c, dt, x.Dims)
	if err != nil {
		return nil, err
	}
	k := c.Int("k", 0)
	rows, cols := x.Dims[0], x.Dims[1]
	for i := int64(0); i < rows; i++ {
		if j := i + k; j >= 0 && j < cols {
			out.SetFloat64At(i*cols+j, 1)
		}
	}
	return []*ir.Tensor{out}, nil
}

func eyeLikeInfer(c *ops.InferCtx) error {
	t, err := c.Input(0)
	if err != nil {
		return err
	}
	dt, err := eyeLikeType(c, t.DType)
	if err != nil {
		return err
	}
	o := t.Clone()
	o.DType = dt
	if o.HasShape && len(o.Shape) != 2 {
		return c.Errorf("input must be 2-D, has shape %v", o.Shape)
	}
	c.Out[0] = o
	return nil
}

// rangeLen is max(ceil((limit-start)/delta), 0).
func rangeLen(start, limit, delta float64) float64 {
	return math.Max(math.Ceil((limit-start)/delta), 0)
}

func rangeOp(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	var s [3]*ir.Tensor
	for i, what := range []string{"start", "limit", "delta"} {
		t, err := input(c, in, i, what)
		if err != nil {
			return nil, err
		}
		if t.Len() != 1 {
			return nil, c.Errorf("%s must be a scalar, has shape %v", what, t.Dims)
		}
		if t.DType != in[0].DType {
			return nil, c.Errorf("%s is %s but start is %s", what, t.DType, in[0].DType)
		}
		s[i] = t
	}
	dt := s[0].DType
	if dt.IsInteger() {
		start, limit, delta := s[0].Int64At(0), s[1].Int64At(0), s[2].Int64At(0)
		if delta == 0 {
			return nil, c.Errorf("delta is 0")
		}
		n := rangeLen(float64(start), float64(limit), float64(delta))
		if n > maxElements {
			return nil, c.Errorf("range(%d, %d, %d) would have %g elements, more than the limit of %d", start, limit, delta, n, int64(maxElements))
		}
		out, err := newOut(c, dt, []int64{int64(n)})
		if err != nil {
			return nil, err
		}
		for i := int64(0); i < int64(n); i++ {
			out.SetInt64At(i, start+i*delta)
		}
		return []*ir.Tensor{out}, nil
	}
	if !dt.IsFloat() {
		return nil, c.Errorf("Range does not support %s", dt)
	}
	start, limit, delta := s[0].Float64At(0), s[1].Float64At(0), s[2].Float64At(0)
	if delta == 0 || math.IsNaN(delta) || math.IsNaN(start) || math.IsNaN(limit) || math.IsInf(start, 0) {
		return nil, c.Errorf("invalid range(%g, %g, %g)", start, limit, delta)
	}
	n := rangeLen(start, limit, delta)
	if math.IsNaN(n) || n > maxElements {
		return nil, c.Errorf("range(%g, %g, %g) would have %g elements, more than the limit of %d", start, limit, delta, n, int64(maxElements))
	}
	out, err := newOut(c, dt, []int64{int64(n)})
	if err != nil {
		return nil, err
	}
	for i := int64(0); i < int64(n); i++ {
		out.SetFloat64At(i, start+float64(i)*delta)
	}
	return []*ir.Tensor{out}, nil
}

func rangeInfer(c *ops.InferCtx) error {
	t, err := c.Input(0)
	if err != nil {
		return err
	}
	c.Out[0] = ir.TensorType(t.DType, ir.Shape{ir.Unknown()})
	if t.DType.IsInteger() {
		var v [3]int64
		for i := range v {
			x, ok := c.InputInts(i)
			if !ok || len(x) != 1 {
				// Range(0, n, 1) has n elements, also when n is a symbol.
				start, ok0 := c.InputInts(0)
				step, ok2 := c.InputInts(2)
				lim, ok1 := c.InputValue(1)
				if ok0 && ok1 && ok2 && len(start) == 1 && start[0] == 0 && len(step) == 1 && step[0] == 1 && len(lim) == 1 {
					if _, isNum := ops.DimValue(lim[0]); !isNum && lim[0].Param != "" {
						c.Out[0].Shape[0] = lim[0]
					}
				}
				return nil
			}
			v[i] = x[0]
		}
		if v[2] == 0 {
			return c.Errorf("delta is 0")
		}
		n := int64(rangeLen(float64(v[0]), float64(v[1]), float64(v[2])))
		c.Out[0].Shape[0] = ir.D(n)
		if n <= ops.MaxValueLen {
			val := make(ir.Shape, n)
			for i := range val {
				val[i] = ops.ValueDim(v[0] + int64(i)*v[2])
			}
			c.OutValue[0] = val
		}
		return nil
	}
	var v [3]float64
	for i := range v {
		if i >= len(c.Const) || c.Const[i] == nil || c.Const[i].Len() != 1 || !c.Const[i].DType.IsFloat() {
			return nil
		}
		v[i] = c.Const[i].Float64At(0)
	}
	if n := rangeLen(v[0], v[1], v[2]); !math.IsNaN(n) && !math.IsInf(n, 0) && n <= maxElements {
		c.Out[0].Shape[0] = ir.D(int64(n))
	}
	return nil
}
