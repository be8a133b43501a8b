package kilnq_test

import (
	"fmt"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
	"github.com/kilnml/kiln/ops/kiln"
	"github.com/kilnml/kiln/ops/kilnq"
)

// A QConv with m_scale (ONNX Runtime's Conv → Q → DQ → Add → [Relu] → Q in
// one layer) equals, bit for bit, the QConv writing the mid codes followed
// by kiln.QAdd of those codes and the residual's: int8 and uint8 codes, zero
// points at both ends, with and without Relu, scales that saturate.
func TestQConvMidQuantization(t *testing.T) {
	qconv, _ := ops.Lookup(kiln.Domain, "QConv", 1)
	qadd, _ := ops.Lookup(kiln.Domain, "QAdd", 1)
	w := codes([]int64{3, 4, 3, 3}, 2, -127, 127)
	b := ir.FromFloat32s([]int64{3}, []float32{0.5, -1, 0.25})
	for _, dt := range []ir.DType{ir.Int8, ir.Uint8} {
		x := codes([]int64{2, 4, 5, 5}, 1, -128, 127)
		x.DType = dt
		zeros := map[ir.DType][]int64{ir.Int8: {-128, 0, 127}, ir.Uint8: {0, 128, 255}}[dt]
		for zi, mz := range zeros {
			for _, ms := range []float32{0.02, 0.3, 3} {
				for _, relu := range []bool{false, true} {
					xz, zz, yz := zeros[(zi+1)%3], zeros[(zi+2)%3], zeros[zi]
					z, _ := residualCodes(dt, []int64{2, 3, 5, 5}, zz, uint64(zi+7))
					attrs := func(n *ir.Node, more ...*ir.Attribute) *ir.Node {
						n.Attrs = append(n.Attrs, &ir.Attribute{Name: "x_zero", Type: ir.AttrInt, I: xz})
						n.Attrs = append(n.Attrs, more...)
						return n
					}
					// the unfused pair
					mid := attrs(qconvNode(ms, ""), &ir.Attribute{Name: "y_zero", Type: ir.AttrInt, I: mz})
					mid.Inputs = mid.Inputs[:3]
					c1, err := qconv.Run(ops.NewCtx(mid, 1), []*ir.Tensor{x, w, b})
					if err != nil {
						t.Fatal(err)
					}
					add := &ir.Node{Name: "add", OpType: "QAdd", Domain: kiln.Domain, Attrs: []*ir.Attribute{
						{Name: "a_scale", Type: ir.AttrFloat, F: ms}, {Name: "a_zero", Type: ir.AttrInt, I: mz},
						{Name: "b_scale", Type: ir.AttrFloat, F: 0.05}, {Name: "b_zero", Type: ir.AttrInt, I: zz},
						{Name: "y_scale", Type: ir.AttrFloat, F: 0.07}, {Name: "y_zero", Type: ir.AttrInt, I: yz}}}
					act := ""
					if relu {
						act = "Relu"
						add.Attrs = append(add.Attrs, &ir.Attribute{Name: "activation", Type: ir.AttrString, S: []byte("Relu")})
					}
					want, err := qadd.Run(ops.NewCtx(add, 1), []*ir.Tensor{c1[0], z})
					if err != nil {
						t.Fatal(err)
					}
					// the fused layer
					n := attrs(withResidualAttrs(qconvNode(0.07, act), 0.05, zz),
						&ir.Attribute{Name: "y_zero", Type: ir.AttrInt, I: yz},
						&ir.Attribute{Name: "m_scale", Type: ir.AttrFloat, F: ms}, &ir.Attribute{Name: "m_zero", Type: ir.AttrInt, I: mz})
					got, err := qconv.Run(ops.NewCtx(n, 1), []*ir.Tensor{x, w, b, z})
					if err != nil {
						t.Fatal(err)
					}
					what := fmt.Sprintf("%s m %g/%d relu %v", dt, ms, mz, relu)
					if i := sameBits(want[0], got[0]); i >= 0 {
						t.Fatalf("%s: element %d: %d, the unfused pair %d", what, i, got[0].Int64At(int64(i)), want[0].Int64At(int64(i)))
					}
					if _, err := kilnq.ParseLayer(n, dt); err == nil {
						t.Fatalf("%s: ParseLayer accepted m_scale", what)
					}
				}
			}
		}
	}
}
