package i8

import (
	"math/rand/v2"
	"testing"
)

// The SWAR micro-kernel's lanes are exact up to MaxK, at the extremes of
// the operand ranges and with mixed signs.
func TestMicroExact(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		k    int
		fill func(i int) (int8, int16)
	}{
		{MaxK, func(int) (int8, int16) { return -128, -255 }},
		{MaxK, func(int) (int8, int16) { return -128, 255 }},
		{MaxK, func(i int) (int8, int16) { return int8(-128 + 255*(i%2)), int16(255 - 510*(i/3%2)) }},
		{1, func(int) (int8, int16) { return 127, -255 }},
		{1000, func(int) (int8, int16) { return int8(r.IntN(256) - 128), int16(r.IntN(511) - 255) }},
	} {
		a := make([]int8, tc.k*MR)
		b := make([]int16, tc.k*NR)
		for i := range a {
			a[i], _ = tc.fill(i)
		}
		for i := range b {
			_, b[i] = tc.fill(i + 7)
		}
		pairs := make([]int64, PairsSize(tc.k))
		Pairs(pairs, b, tc.k)
		var acc Tile
		micro(tc.k, a, pairs, &acc)
		for i := 0; i < MR; i++ {
			for j := 0; j < NR; j++ {
				var want int64
				for p := 0; p < tc.k; p++ {
					want += int64(a[p*MR+i]) * int64(b[p*NR+j])
				}
				if int64(acc[i*NR+j]) != want {
					t.Fatalf("k %d tile (%d,%d): %d, want %d", tc.k, i, j, acc[i*NR+j], want)
				}
			}
		}
	}
}
