package qops

import (
	"github.com/kilnml/kiln/floatx"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

func init() {
	ops.Register(&ops.Op{Type: "Cast", MinOpset: 6, Run: cast, Infer: castInfer})
	ops.Register(&ops.Op{Type: "CastLike", MinOpset: 15, Run: castLike, Infer: castLikeInfer})
}

// attrReader is what kernels and inference share for attribute parsing.
type attrReader interface {
	Int(name string, def int64) int64
	String(name string, def string) string
	Errorf(format string, args ...any) error
}

// castTarget validates a target element type.
func castTarget(a attrReader, to ir.DType) error {
	if !to.Valid() || to == ir.Complex64 || to == ir.Complex128 {
		return a.Errorf("cannot cast to element type %v", to)
	}
	return nil
}

// newConverter reads saturate (opset 19+) and round_mode (float8e8m0).
func newConverter(a attrReader, opset int64, to ir.DType) (*converter, error) {
	if err := castTarget(a, to); err != nil {
		return nil, err
	}
	cv := &converter{to: to, sat: true}
	if opset >= 19 {
		cv.sat = a.Int("saturate", 1) != 0
	}
	mode := a.String("round_mode", "up")
	r, ok := floatx.ParseE8M0Round(mode)
	if !ok {
		return nil, a.Errorf("round_mode %q: want up, down or nearest", mode)
	}
	cv.round = r
	return cv, nil
}

func castTo(c *ops.Ctx) (ir.DType, error) {
	if !c.Has("to") {
		return 0, c.Errorf("attribute 'to' is required")
	}
	return ir.DType(c.Int("to", 0)), nil
}

func cast(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := input(c, in, 0, "input")
	if err != nil {
		return nil, err
	}
	to, err := castTo(c)
	if err != nil {
		return nil, err
	}
	return runCast(c, x, to)
}

func castLike(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := input(c, in, 0, "input")
	if err != nil {
		return nil, err
	}
	like, err := input(c, in, 1, "target_type")
	if err != nil {
		return nil, err
	}
	return runCast(c, x, like.DType)
}

func runCast(c *ops.Ctx, x *ir.Tensor, to ir.DType) ([]*ir.Tensor, error) {
	cv, err := newConverter(c, c.Opset, to)
	if err != nil {
		return nil, err
	}
	if x.DType == ir.Complex64 || x.DType == ir.Complex128 {
		return nil, c.Errorf("cannot cast from %v", x.DType)
	}
	if _, err := newOut(c, to, x.Dims); err != nil {
		return nil, err
	}
	y, err := cv.convert(x)
	if err != nil {
		return nil, c.Errorf("%v", err)
	}
	return []*ir.Tensor{y}, nil
}

func castInfer(c *ops.InferCtx) error {
	if !c.Has("to") {
		return c.Errorf("attribute 'to' is required")
	}
	return castInferTo(c, ir.DType(c.Int("to", 0)))
}

func castLikeInfer(c *ops.InferCtx) error {
	like, err := c.Input(1)
	if err != nil {
		return err
	}
	return castInferTo(c, like.DType)
}

func castInferTo(c *ops.InferCtx, to ir.DType) error {
	if _, err := newConverter(c, c.Opset, to); err != nil {
		return err
	}
	x, err := c.Input(0)
	if err != nil {
		return err
	}
	c.Out[0] = sameShapeAs(x, to)
	// Shape -> Cast(int32/int64) chains keep their symbolic value.
	if (to == ir.Int64 || to == ir.Int32) && x.DType.IsInteger() {
		if v, ok := c.InputValue(0); ok {
			c.OutValue[0] = v
		}
	}
	return nil
}
