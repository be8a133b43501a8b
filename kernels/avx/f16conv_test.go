package avx

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestF16Conversions checks both conversions (every variant) against their
// reference loops on every float16 code and on float32 values around every
// float16 rounding midpoint, overflow, denormals, ±0, ±Inf and NaNs
// (signaling and quiet), at lengths around 16.
func TestF16Conversions(t *testing.T) {
	codes := make([]uint16, 1<<16+7)
	for i := range codes {
		codes[i] = uint16(i)
	}
	r := rand.New(rand.NewPCG(93, 94))
	var vals []float32
	for h := 0; h < 1<<16; h += 1 + r.IntN(3) {
		want := make([]float32, 2)
		f16ToF32Generic(&want[0], &[]uint16{uint16(h)}[0], 1)
		b := math.Float32bits(want[0])
		for _, d := range []int32{-1 << 12, -1, 0, 1, 1 << 12, 1 << 13} { // 1<<12: the midpoint to the next half
			vals = append(vals, math.Float32frombits(uint32(int32(b)+d)))
		}
	}
	vals = append(vals, 65504, 65520, 65519.996, 1e10, float32(math.Inf(-1)), math.Float32frombits(0x7f800001), math.Float32frombits(0xffc00123), 1e-8, 3e-8, -6e-8)
	forEachVariant(t, func(t *testing.T) {
		for _, n := range []int{1, 15, 16, 17, len(codes)} {
			got, want := make([]float32, n+1), make([]float32, n+1)
			got[n] = 42
			F16ToF32(got[:n], codes[:n])
			f16ToF32Generic(&want[0], &codes[0], n)
			for i := 0; i < n; i++ {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("widen %#x: %#x, want %#x", codes[i], math.Float32bits(got[i]), math.Float32bits(want[i]))
				}
			}
			if got[n] != 42 {
				t.Fatalf("widen wrote past %d", n)
			}
		}
		for _, n := range []int{1, 15, 16, 17, len(vals)} {
			got, want := make([]uint16, n+1), make([]uint16, n+1)
			got[n] = 0xA5A5
			F32ToF16(got[:n], vals[:n])
			f32ToF16Generic(&want[0], &vals[0], n)
			for i := 0; i < n; i++ {
				if got[i] != want[i] {
					t.Fatalf("narrow %v (%#x): %#x, want %#x", vals[i], math.Float32bits(vals[i]), got[i], want[i])
				}
			}
			if got[n] != 0xA5A5 {
				t.Fatalf("narrow wrote past %d", n)
			}
		}
	})
}
