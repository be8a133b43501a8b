package kiln_test

import (
	"math"
	"strings"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
	. "github.com/kilnml/kiln/ops/kiln"
)

func runNode(t *testing.T, n *ir.Node, in ...*ir.Tensor) (*ir.Tensor, error) {
	t.Helper()
	op, err := ops.Lookup(Domain, n.OpType, 1)
	if err != nil {
		t.Fatal(err)
	}
	c := ops.NewCtx(n, 1)
	out, err := op.Run(c, in)
	if err == nil {
		err = c.Err()
	}
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// LayerNorm of [1,2,3] and [2,2,2] with γ = [1,2,1], β = [0,0,1] by hand.
func TestLayerNormByHand(t *testing.T) {
	x := ir.FromFloat32s([]int64{2, 3}, []float32{1, 2, 3, 2, 2, 2})
	g := ir.FromFloat32s([]int64{3}, []float32{1, 2, 1})
	b := ir.FromFloat32s([]int64{3}, []float32{0, 0, 1})
	n := &ir.Node{Name: "ln", OpType: "LayerNorm", Domain: Domain, Inputs: []string{"x", "g", "b"}, Outputs: []string{"y"},
		Attrs: []*ir.Attribute{{Name: "epsilon", Type: ir.AttrFloat, F: 0}}}
	y, err := runNode(t, n, x, g, b)
	if err != nil {
		t.Fatal(err)
	}
	s := math.Sqrt(2.0 / 3)
	want := []float64{-1 / s, 0, 1/s + 1, 0, 0, 1}
	for i, w := range want {
		if math.Abs(y.Float64At(int64(i))-w) > 1e-6 {
			t.Errorf("y[%d] = %v, want %v", i, y.Float64At(int64(i)), w)
		}
	}
	if _, err := runNode(t, n, x, ir.FromFloat32s([]int64{2}, []float32{1, 1}), b); err == nil || !strings.Contains(err.Error(), "ln") {
		t.Errorf("a scale of the wrong size: %v", err)
	}
}

// Attention with one key is V itself; a fully masked row is NaN, or zeros
// with nan_to_zero; mismatched shapes are errors naming the node.
func TestAttentionByHand(t *testing.T) {
	q := ir.FromFloat32s([]int64{2, 2}, []float32{1, 0, 0, 1})
	k := ir.FromFloat32s([]int64{1, 2}, []float32{3, 4})
	v := ir.FromFloat32s([]int64{1, 3}, []float32{5, 6, 7})
	n := &ir.Node{Name: "att", OpType: "Attention", Domain: Domain, Inputs: []string{"q", "k", "v", "m"}, Outputs: []string{"y"}}
	y, err := runNode(t, n, q, k, v)
	if err != nil {
		t.Fatal(err)
	}
	if y.Dims[0] != 2 || y.Dims[1] != 3 || y.Float64At(4) != 6 {
		t.Errorf("y %v %v", y.Dims, y.F32())
	}
	mask := ir.FromFloat32s([]int64{2, 1}, []float32{0, float32(math.Inf(-1))})
	y, _ = runNode(t, n, q, k, v, mask)
	if !math.IsNaN(y.Float64At(3)) || y.Float64At(0) != 5 {
		t.Errorf("masked row: %v", y.F32())
	}
	n.Attrs = []*ir.Attribute{{Name: "nan_to_zero", Type: ir.AttrInt, I: 1}}
	y, _ = runNode(t, n, q, k, v, mask)
	if y.Float64At(3) != 0 || y.Float64At(5) != 0 {
		t.Errorf("nan_to_zero: %v", y.F32())
	}
	if _, err := runNode(t, n, q, ir.FromFloat32s([]int64{1, 3}, []float32{1, 2, 3}), v); err == nil || !strings.Contains(err.Error(), "att") {
		t.Errorf("head sizes 2 and 3: %v", err)
	}
	if _, err := runNode(t, n, q, k, v, ir.FromFloat32s([]int64{3}, []float32{0, 0, 0})); err == nil {
		t.Error("a mask over 3 keys accepted for 1 key")
	}
}
