package kilnq_test

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
	"github.com/kilnml/kiln/ops/kiln"
	"github.com/kilnml/kiln/ops/kilnq"
)

// qaddCase is one parameter set of kiln.QAdd.
type qaddCase struct {
	at, bt, yt          ir.DType
	as, bs, ys          float32
	az, bz, yz          int64
	relu                bool
	adims, bdims, ydims []int64
}

func (c qaddCase) node() *ir.Node {
	n := &ir.Node{Name: "qadd", OpType: "QAdd", Domain: kiln.Domain, Inputs: []string{"a", "b"}, Outputs: []string{"y"}}
	f := func(name string, v float32) {
		n.Attrs = append(n.Attrs, &ir.Attribute{Name: name, Type: ir.AttrFloat, F: v})
	}
	i := func(name string, v int64) {
		n.Attrs = append(n.Attrs, &ir.Attribute{Name: name, Type: ir.AttrInt, I: v})
	}
	f("a_scale", c.as)
	f("b_scale", c.bs)
	f("y_scale", c.ys)
	i("a_zero", c.az)
	i("b_zero", c.bz)
	i("y_zero", c.yz)
	i("y_type", int64(c.yt))
	if c.relu {
		n.Attrs = append(n.Attrs, &ir.Attribute{Name: "activation", Type: ir.AttrString, S: []byte("Relu")})
	}
	return n
}

func scalarOf(dt ir.DType, v int64) *ir.Tensor {
	t := ir.NewTensor(dt, nil)
	t.SetInt64At(0, v)
	return t
}

// unfusedQAdd runs ONNX's DequantizeLinear ×2, Add, [Relu], QuantizeLinear
// through the reference ops: the semantics kiln.QAdd replaces.
func unfusedQAdd(t *testing.T, c qaddCase, a, b *ir.Tensor) *ir.Tensor {
	t.Helper()
	run := func(op string, opset int64, in ...*ir.Tensor) *ir.Tensor {
		k, err := ops.Lookup("", op, opset)
		if err != nil {
			t.Fatal(err)
		}
		ctx := ops.NewCtx(&ir.Node{Name: op, OpType: op}, opset)
		out, err := k.Run(ctx, in)
		if err == nil {
			err = ctx.Err()
		}
		if err != nil {
			t.Fatal(err)
		}
		return out[0]
	}
	da := run("DequantizeLinear", 21, a, ir.FromFloat32s(nil, []float32{c.as}), scalarOf(c.at, c.az))
	db := run("DequantizeLinear", 21, b, ir.FromFloat32s(nil, []float32{c.bs}), scalarOf(c.bt, c.bz))
	s := run("Add", 14, da, db)
	if c.relu {
		s = run("Relu", 14, s)
	}
	return run("QuantizeLinear", 21, s, ir.FromFloat32s(nil, []float32{c.ys}), scalarOf(c.yt, c.yz))
}

func runQAdd(t *testing.T, c qaddCase, a, b *ir.Tensor) *ir.Tensor {
	t.Helper()
	k, err := ops.Lookup(kiln.Domain, "QAdd", 1)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ops.NewCtx(c.node(), 1)
	out, err := k.Run(ctx, []*ir.Tensor{a, b})
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		t.Fatal(err)
	}
	return out[0]
}

// allPairs holds every (a, b) code pair: a varies along axis 0, b along axis 1.
func allPairs(at, bt ir.DType) (*ir.Tensor, *ir.Tensor) {
	a, b := ir.NewTensor(at, []int64{256, 256}), ir.NewTensor(bt, []int64{256, 256})
	for i := range 256 {
		for j := range 256 {
			a.Data[i*256+j], b.Data[i*256+j] = byte(i), byte(j)
		}
	}
	return a, b
}

// kiln.QAdd equals the unfused DQ/DQ/Add/Relu/Q chain of the reference ops
// on every code pair, for both code types on every side, zero points at
// both ends of their range, scales that make ties, saturation and
// subnormal sums, with and without Relu.
func TestQAddMatchesUnfusedChain(t *testing.T) {
	types := []ir.DType{ir.Int8, ir.Uint8}
	zeros := map[ir.DType][]int64{ir.Int8: {-128, 0, 127}, ir.Uint8: {0, 128, 255}}
	scales := [][3]float32{
		{0.0375, 0.021, 0.05},    // ResNet-like
		{0.5, 0.25, 1},           // exact halves: round-half-even ties
		{0.1, 0.1, 0.3},          // inexact scale, many near-ties
		{1, 1, 0.01},             // saturation everywhere
		{1e-39, 3e-39, 1e-38},    // subnormal values
		{3e37, 2e37, 1e36},       // sums near overflow
		{7.3e-5, 1.9e-3, 2.2e-3}, // mixed magnitudes
	}
	count := 0
	for _, at := range types {
		for _, bt := range types {
			for _, yt := range types {
				for zi := range 3 {
					for si, s := range scales {
						for _, relu := range []bool{false, true} {
							c := qaddCase{at: at, bt: bt, yt: yt, as: s[0], bs: s[1], ys: s[2],
								az: zeros[at][zi], bz: zeros[bt][(zi+si)%3], yz: zeros[yt][(zi+2*si)%3], relu: relu}
							a, b := allPairs(at, bt)
							want, got := unfusedQAdd(t, c, a, b), runQAdd(t, c, a, b)
							if got.DType != yt || !equalDims(got.Dims, want.Dims) {
								t.Fatalf("%+v: got %s%v, want %s%v", c, got.DType, got.Dims, yt, want.Dims)
							}
							if i := sameBits(want, got); i >= 0 {
								t.Fatalf("%+v: codes (%d, %d): got %d, want %d", c, a.Int64At(int64(i)), b.Int64At(int64(i)), got.Int64At(int64(i)), want.Int64At(int64(i)))
							}
							count++
						}
					}
				}
			}
		}
	}
	if count == 0 {
		t.Fatal("no case ran")
	}
}

// Broadcasting follows numpy, as the unfused Add does.
func TestQAddBroadcasts(t *testing.T) {
	c := qaddCase{at: ir.Uint8, bt: ir.Int8, yt: ir.Uint8, as: 0.02, bs: 0.03, ys: 0.04, az: 3, bz: -2, yz: 100}
	a := codes([]int64{2, 3, 4}, 5, -128, 127)
	a.DType = ir.Uint8 // the same bytes read as uint8 codes
	b := codes([]int64{3, 1}, 6, -128, 127)
	want, got := unfusedQAdd(t, c, a, b), runQAdd(t, c, a, b)
	if !equalDims(got.Dims, []int64{2, 3, 4}) || sameBits(want, got) >= 0 {
		t.Fatalf("got %v %v, want %v %v", got.Dims, got.Data, want.Dims, want.Data)
	}
}

// Bad attributes are errors naming the node.
func TestQAddRejects(t *testing.T) {
	good := qaddCase{at: ir.Uint8, bt: ir.Uint8, yt: ir.Uint8, as: 1, bs: 1, ys: 1}
	for _, tc := range []struct {
		mod  func(*qaddCase)
		want string
	}{
		{func(c *qaddCase) { c.ys = 0 }, "y_scale"},
		{func(c *qaddCase) { c.as = float32(math.Inf(1)) }, "a_scale"},
		{func(c *qaddCase) { c.bz = 256 }, "b_zero"},
		{func(c *qaddCase) { c.yt = ir.Int8; c.yz = 200 }, "y_zero"},
		{func(c *qaddCase) { c.yt = ir.Float32 }, "int8 or uint8"},
	} {
		c := good
		tc.mod(&c)
		_, err := kilnq.ParseQAdd(c.node(), c.at, c.bt)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "qadd") {
			t.Errorf("%+v: error %v, want one naming the node and %q", c, err, tc.want)
		}
	}
	n := good.node()
	n.Attrs = append(n.Attrs, &ir.Attribute{Name: "activation", Type: ir.AttrString, S: []byte("Sigmoid")})
	if _, err := kilnq.ParseQAdd(n, ir.Uint8, ir.Uint8); err == nil {
		t.Error("Sigmoid accepted")
	}
	if _, err := kilnq.ParseQAdd(good.node(), ir.Float32, ir.Uint8); err == nil {
		t.Error("float32 input accepted")
	}
}

func equalDims(a, b []int64) bool { return fmt.Sprint(a) == fmt.Sprint(b) }
