package arith

import (
	"math/rand"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// randomShapes returns an output shape and 1..3 input shapes that broadcast
// to it (dims dropped from the front or set to 1).
func randomShapes(r *rand.Rand) (out []int64, ins [][]int64) {
	out = make([]int64, r.Intn(5))
	for i := range out {
		out[i] = int64(r.Intn(4)) + map[bool]int64{true: 0, false: 1}[r.Intn(8) == 0]
	}
	for k := 0; k < 1+r.Intn(3); k++ {
		in := append([]int64{}, out[r.Intn(len(out)+1):]...)
		for i := range in {
			if r.Intn(3) == 0 {
				in[i] = 1
			}
		}
		ins = append(ins, in)
	}
	return out, ins
}

// walk's odometer must agree with the divmod mapping of ops.Broadcast.
func TestWalkMatchesBroadcastIndex(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for trial := 0; trial < 2000; trial++ {
		_, ins := randomShapes(r)
		out, err := ops.BroadcastDims(ins...)
		if err != nil {
			t.Fatal(err)
		}
		b := ops.NewBroadcast(out, ins...)
		visited := int64(0)
		walk(out, ins, func(o int64, idx []int64) {
			if o != visited {
				t.Fatalf("%v from %v: visited %d at step %d", out, ins, o, visited)
			}
			visited++
			for k := range ins {
				if want := b.Index(k, o); idx[k] != want {
					t.Fatalf("%v from %v: element %d of input %d: index %d, want %d", out, ins, o, k, idx[k], want)
				}
			}
		})
		if visited != numel(out) {
			t.Fatalf("%v: visited %d of %d", out, visited, numel(out))
		}
	}
}

// Reductions must agree with a naive loop over multi-indices.
func TestReduceMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	for trial := 0; trial < 500; trial++ {
		d := make([]int64, 1+r.Intn(4))
		for i := range d {
			d[i] = int64(r.Intn(4))
		}
		var axes []int64
		mask := make([]bool, len(d))
		for i := range d {
			if r.Intn(2) == 0 {
				axes = append(axes, int64(i-len(d)*r.Intn(2))) // some negative
				mask[i] = true
			}
		}
		if len(axes) == 0 {
			for i := range mask {
				mask[i] = true
			}
		}
		x := ir.NewTensor(ir.Float64, d)
		for i := range x.F64() {
			x.F64()[i] = float64(r.Intn(21) - 10)
		}
		kept := make([]int64, len(d))
		for i := range d {
			kept[i] = d[i]
			if mask[i] {
				kept[i] = 1
			}
		}
		want := make([]float64, numel(kept))
		wantMax := make([]float64, numel(kept))
		for i := range wantMax {
			wantMax[i] = -inf
		}
		inStr, outStr := ops.Strides(d), ops.Strides(kept)
		for i := int64(0); i < x.Len(); i++ {
			o := int64(0)
			for ax := range d {
				c := i / inStr[ax] % d[ax]
				if !mask[ax] {
					o += c * outStr[ax]
				}
			}
			want[o] += x.F64()[i]
			wantMax[o] = max(wantMax[o], x.F64()[i])
		}
		ax := i64([]int64{int64(len(axes))}, axes...)
		checkFloats(t, mustCall(t, "ReduceSum", 13, nil, x, ax), ir.Float64, kept, want...)
		checkFloats(t, mustCall(t, "ReduceMax", 18, nil, x, ax), ir.Float64, kept, wantMax...)
		var dropped []int64
		for i := range d {
			if !mask[i] {
				dropped = append(dropped, d[i])
			}
		}
		if dropped == nil {
			dropped = []int64{}
		}
		checkFloats(t, mustCall(t, "ReduceSum", 13, attrs(aInt("keepdims", 0)), x, ax), ir.Float64, dropped, want...)
	}
}
