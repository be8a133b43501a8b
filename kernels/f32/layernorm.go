package f32

import "math"

// LayerNormRow writes y = (x − mean)·inv·gamma (+ beta when not nil), inv =
// 1/√(var + eps), the population variance, in float32 with 16 partial sums
// per pass (element i in lane i%16 for the first len&^15, the rest in lanes
// 0..14; reduced as a fixed tree), AVX-512 where present with Go twins
// that give the same bits. Two passes: a first mean, then Σd and Σd² of
// d = x − mean, which corrects the mean by dm = Σd/n and gives var =
// Σd²/n − dm², so a large common offset (rows after residual adds) costs
// little accuracy. Within LayerNormRowErr of the float64 reference
// (layernorm_test.go).
func LayerNormRow(y, x, gamma, beta []float32, eps float32) {
	n := len(x)
	if n == 0 {
		return
	}
	y, gamma = y[:n], gamma[:n]
	if beta != nil {
		beta = beta[:n]
	}
	n16 := n &^ 15
	inv := 1 / float32(n)
	var s [16]float32
	sumLanes16(x[:n16], &s)
	for i := n16; i < n; i++ {
		s[i-n16] += x[i]
	}
	mean := reduce16(&s) * inv
	var d, q [16]float32
	devLanes16(x[:n16], mean, &d, &q)
	for i := n16; i < n; i++ {
		e := x[i] - mean
		d[i-n16] += e
		q[i-n16] += float32(e * e)
	}
	dm := reduce16(&d) * inv
	vr := reduce16(&q)*inv - float32(dm*dm)
	r := float32(1 / math.Sqrt(float64(max(vr, 0)+eps)))
	// (x − mean) − dm rather than x − (mean + dm): the corrected mean would
	// round at the offset's magnitude.
	k := [3]float32{mean, dm, r}
	normAffine16(y[:n16], x[:n16], gamma[:n16], sub(beta, 0, n16), &k)
	normAffine(y[n16:], x[n16:], gamma[n16:], sub(beta, n16, n), &k)
}

func sub(b []float32, lo, hi int) []float32 {
	if b == nil {
		return nil
	}
	return b[lo:hi]
}

// reduce16 sums 16 lanes as a fixed tree (8, 4, 2, 1 apart).
func reduce16(l *[16]float32) float32 {
	for w := 8; w > 0; w /= 2 {
		for j := range w {
			l[j] += l[j+w]
		}
	}
	return l[0]
}

// sumLanes is the Go twin of sumLanesAVX512.
func sumLanes(x []float32, lanes *[16]float32) {
	for i, v := range x {
		lanes[i%16] += v
	}
}

// devLanes is the Go twin of devLanesAVX512.
func devLanes(x []float32, mean float32, d, q *[16]float32) {
	for i, v := range x {
		e := v - mean
		d[i%16] += e
		q[i%16] += float32(e * e)
	}
}

// normAffine is the Go twin of normAffineAVX512 (k: mean, dm, r).
func normAffine(y, x, gamma, beta []float32, k *[3]float32) {
	if beta == nil {
		for j, v := range x {
			y[j] = float32(float32(float32((v-k[0])-k[1])*k[2]) * gamma[j])
		}
		return
	}
	for j, v := range x {
		y[j] = float32(float32(float32(float32((v-k[0])-k[1])*k[2])*gamma[j]) + beta[j])
	}
}

// LayerNormRowErr bounds |LayerNormRow − reference| relative to
// max(1, |gamma|)·(|normalized value| + 1) for rows up to 4096 long whose
// offset is up to 1000 standard deviations (measured worst 2.5e-7).
const LayerNormRowErr = 2e-6
