package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
)

// cpu.qadd equals kiln.QAdd's reference kernel bit for bit at 1-4 threads,
// for sizes below, at and above its 16 Ki chunks (several chunks and a
// partial one), int8/uint8 on each side, zero points at both ends, Relu,
// and a y_scale far from 1 (ONNX Runtime's ResNet-50 last stage).
func TestQAdd(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	cases := []struct {
		at, bt, yt ir.DType
		az, bz, yz int64
		scales     [3]float32
		relu       bool
	}{
		{ir.Uint8, ir.Uint8, ir.Uint8, 0, 0, 0, [3]float32{0.03, 0.0018, 0.04}, false},
		{ir.Uint8, ir.Uint8, ir.Uint8, 255, 128, 17, [3]float32{0.5, 0.25, 0.75}, true},
		{ir.Int8, ir.Int8, ir.Int8, -128, 127, 0, [3]float32{0.1, 0.1, 0.3}, true},
		{ir.Int8, ir.Uint8, ir.Int8, 5, 200, -128, [3]float32{2.5e9, 9.6e10, 1.07e13}, false},
		{ir.Uint8, ir.Int8, ir.Uint8, 3, -3, 255, [3]float32{1e-39, 3e-39, 1e-38}, false}, // subnormal scales: the Go loop
	}
	for _, dims := range [][]int64{{1, 3, 5, 7}, {1, 16, 32, 32}, {1, 256, 14, 14}, {2, 17, 31, 33}} {
		for _, c := range cases {
			n := node("kiln", "QAdd", 2, aFloat("a_scale", c.scales[0]), aFloat("b_scale", c.scales[1]), aFloat("y_scale", c.scales[2]),
				aInt("a_zero", c.az), aInt("b_zero", c.bz), aInt("y_zero", c.yz), aInt("y_type", int64(c.yt)))
			if c.relu {
				n.Attrs = append(n.Attrs, aStr("activation", "Relu"))
			}
			in := []*ir.Tensor{randCodes(r, c.at, dims...), randCodes(r, c.bt, dims...)}
			want := reference(t, n, in)
			what := fmt.Sprintf("%v %+v", dims, c)
			everyTactic(t, layer(n, in, nil, want, engine.INT8), in, func(name string, got *ir.Tensor) { sameBits(t, what+" "+name, got, want) })
		}
	}
}

// A broadcast QAdd has no cpu kernel (the reference runs it).
func TestQAddDeclinesBroadcast(t *testing.T) {
	r := rand.New(rand.NewPCG(43, 44))
	n := node("kiln", "QAdd", 2, aFloat("a_scale", 0.1), aFloat("b_scale", 0.1), aFloat("y_scale", 0.1))
	in := []*ir.Tensor{randCodes(r, ir.Uint8, 1, 4, 3, 3), randCodes(r, ir.Uint8, 1, 4, 1, 1)}
	want := reference(t, n, in)
	for _, tac := range (Backend{}).Tactics(layer(n, in, nil, want, engine.INT8)) {
		if _, err := tac.Lower(layer(n, in, nil, want, engine.INT8)); err == nil {
			t.Fatalf("%s lowered a broadcast QAdd", tac.Name())
		}
	}
}
