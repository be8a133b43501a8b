//go:build noasm || !amd64

package avx

var packTranspose = false

func packStrip8(strip, a []float32, k, rs int) { packStrip8Go(strip, a, k, rs) }
