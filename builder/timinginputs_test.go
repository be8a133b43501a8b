package builder

import (
	"testing"

	"github.com/kilnml/kiln/ir"
)

// A layer's tactics share its random timing inputs: one tensor per input
// index, type and shape, made once. Code tensors cover every byte value
// (E4M3 every one but the NaN codes), so no tactic is timed on a
// degenerate input.
func TestTimingInputsShared(t *testing.T) {
	c := timingInputs{}
	a := c.get(0, ir.Int8, []int64{2, 64, 16, 16})
	if b := c.get(0, ir.Int8, []int64{2, 64, 16, 16}); b != a {
		t.Fatal("the same input was made twice")
	}
	if b := c.get(1, ir.Int8, []int64{2, 64, 16, 16}); b == a || string(b.Data) == string(a.Data) {
		t.Fatal("inputs 0 and 1 share a tensor or its values")
	}
	if b := c.get(0, ir.Int8, []int64{4, 64, 16, 16}); b == a || b.Len() != 4*64*16*16 {
		t.Fatal("a new shape did not get a new tensor")
	}
	seen := map[byte]bool{}
	for _, v := range a.Data {
		seen[v] = true
	}
	if len(seen) != 256 {
		t.Errorf("int8 timing input has %d distinct codes of 256", len(seen))
	}
	f8 := c.get(2, ir.Float8E4M3FN, []int64{64, 1024})
	seen = map[byte]bool{}
	for _, v := range f8.Data {
		if v&0x7f == 0x7f {
			t.Fatalf("E4M3 timing input holds the NaN code %#x", v)
		}
		seen[v] = true
	}
	if len(seen) != 254 {
		t.Errorf("E4M3 timing input has %d distinct codes of 254", len(seen))
	}
	f := c.get(3, ir.Float32, []int64{1000})
	var sum, sq float64
	for _, v := range f.F32() {
		sum += float64(v)
		sq += float64(v) * float64(v)
	}
	if m, v := sum/1000, sq/1000; m < -0.2 || m > 0.2 || v < 0.8 || v > 1.2 {
		t.Errorf("float32 timing input mean %.3f, mean square %.3f; want about 0 and 1", m, v)
	}
}
