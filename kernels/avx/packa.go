package avx

// packStrip8Go is the Go twin of packA8AVX2: strip[p*MR+i] = a[i*rs+p]
// for the 8 rows of a full strip.
func packStrip8Go(strip, a []float32, k, rs int) {
	for i := 0; i < MR; i++ {
		for p, v := range a[i*rs : i*rs+k] {
			strip[p*MR+i] = v
		}
	}
}
