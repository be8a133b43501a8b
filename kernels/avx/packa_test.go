package avx

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/kilnml/kiln/kernels/pack"
)

// PackA's row path writes exactly what the generic pack.A writes (padding
// rows zero), for sizes below, at and above the strip height and row
// strides wider than k.
func TestPackAMatchesGeneric(t *testing.T) {
	saved := packTranspose
	defer func() { packTranspose = saved }()
	for _, g := range []bool{false, saved} {
		packTranspose = g
		testPackA(t)
	}
}

func testPackA(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, m := range []int{1, 7, 8, 9, 17, 64} {
		for _, k := range []int{1, 3, 64, 65} {
			for _, rs := range []int{k, k + 5} {
				a := make([]float32, m*rs)
				for i := range a {
					a[i] = r.Float32()
				}
				got, want := make([]float32, ASize(m, k)), make([]float32, ASize(m, k))
				for i := range got {
					got[i], want[i] = -1, -1
				}
				PackA(got, a, m, k, rs, 1)
				pack.A(want, a, (*[256]float32)(nil), m, k, rs, 1, MR)
				if !slices.Equal(got, want) {
					t.Fatalf("transpose %v m=%d k=%d rs=%d: PackA differs from pack.A", packTranspose, m, k, rs)
				}
			}
		}
	}
}

// go test -bench PackA ./kernels/avx: bert4's activations (128 tokens × 256
// and × 1024), Go loop vs transpose.
func BenchmarkPackA(b *testing.B) {
	saved := packTranspose
	defer func() { packTranspose = saved }()
	for _, k := range []int{256, 1024} {
		a := make([]float32, 128*k)
		dst := make([]float32, ASize(128, k))
		for _, g := range []bool{false, saved} {
			packTranspose = g
			b.Run(map[bool]string{false: "go", true: "transpose"}[g]+"/"+map[int]string{256: "k256", 1024: "k1024"}[k], func(b *testing.B) {
				for b.Loop() {
					PackA(dst, a, 128, k, k, 1)
				}
			})
		}
	}
}
