package qdq

import (
	"testing"

	"github.com/kilnml/kiln/ir"
)

// ActivationDTypes gives one activation of a float8 model E5M2 Q/DQ (scale
// amax/57344) while the other activation and the weights stay E4M3; an
// override in an int8 model, or to a non-float8 type, is an error.
func TestActivationDTypesE5M2(t *testing.T) {
	m := convNet(13)
	x := randT([]int64{2, 2, 5, 5}, 4)
	r := ranges(t, m, x)
	q, err := Insert(m, Options{DType: ir.Float8E4M3FN, Ranges: r, ActivationDTypes: map[string]ir.DType{"x": ir.Float8E5M2}})
	if err != nil {
		t.Fatal(err)
	}
	inits := q.Graph.InitializerMap()
	zeroType := map[string]ir.DType{} // quantized tensor -> its zero point's type
	for _, n := range q.Graph.Nodes {
		if n.OpType == "QuantizeLinear" {
			zeroType[n.Inputs[0]] = inits[n.Inputs[2]].DType
			if n.Inputs[0] == "x" {
				if s := inits[n.Inputs[1]].F32()[0]; s != float32(r["x"].Amax)/57344 {
					t.Errorf("x scale %g, want amax/57344 = %g", s, float32(r["x"].Amax)/57344)
				}
			}
		}
	}
	if zeroType["x"] != ir.Float8E5M2 || zeroType["f"] != ir.Float8E4M3FN || zeroType["conv.w"] != ir.Float8E4M3FN {
		t.Errorf("code types: %v", zeroType)
	}
	for _, bad := range []Options{
		{DType: ir.Int8, Ranges: r, ActivationDTypes: map[string]ir.DType{"x": ir.Float8E5M2}},
		{DType: ir.Float8E4M3FN, Ranges: r, ActivationDTypes: map[string]ir.DType{"x": ir.Int8}},
	} {
		if _, err := Insert(m, bad); err == nil {
			t.Errorf("%v accepted", bad.ActivationDTypes)
		}
	}
}
