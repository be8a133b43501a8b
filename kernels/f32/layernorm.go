package f32

import "math"

// LayerNormRow writes y = (x − mean)·inv·gamma (+ beta when not nil), inv =
// 1/√(var + eps), the population variance, in float32 with 8 partial sums
// per pass (the Go compiler keeps them in registers; the float64 reference
// loop is sequential and several times slower). Two passes: a first mean,
// then Σd and Σd² of d = x − mean, which corrects the mean by dm = Σd/n
// and gives var = Σd²/n − dm², so a large common offset (rows after
// residual adds) costs little accuracy. Within LayerNormRowErr of the float64
// reference (layernorm_test.go).
func LayerNormRow(y, x, gamma, beta []float32, eps float32) {
	n := len(x)
	if n == 0 {
		return
	}
	y, gamma = y[:n], gamma[:n]
	var s [8]float32
	i := 0
	for ; i+8 <= n; i += 8 {
		v := x[i : i+8 : i+8]
		s[0] += v[0]
		s[1] += v[1]
		s[2] += v[2]
		s[3] += v[3]
		s[4] += v[4]
		s[5] += v[5]
		s[6] += v[6]
		s[7] += v[7]
	}
	for ; i < n; i++ {
		s[0] += x[i]
	}
	inv := 1 / float32(n)
	mean := ((s[0] + s[1]) + (s[2] + s[3]) + ((s[4] + s[5]) + (s[6] + s[7]))) * inv
	var d, q [4]float32
	i = 0
	for ; i+4 <= n; i += 4 {
		v := x[i : i+4 : i+4]
		d0, d1, d2, d3 := v[0]-mean, v[1]-mean, v[2]-mean, v[3]-mean
		d[0] += d0
		d[1] += d1
		d[2] += d2
		d[3] += d3
		q[0] += d0 * d0
		q[1] += d1 * d1
		q[2] += d2 * d2
		q[3] += d3 * d3
	}
	for ; i < n; i++ {
		e := x[i] - mean
		d[0] += e
		q[0] += e * e
	}
	dm := ((d[0] + d[1]) + (d[2] + d[3])) * inv
	vr := ((q[0]+q[1])+(q[2]+q[3]))*inv - dm*dm
	r := float32(1 / math.Sqrt(float64(max(vr, 0)+eps)))
	// (x − mean) − dm rather than x − (mean + dm): the corrected mean would
	// round at the offset's magnitude.
	if beta == nil {
		for j, v := range x {
			y[j] = ((v - mean) - dm) * r * gamma[j]
		}
		return
	}
	beta = beta[:n]
	for j, v := range x {
		y[j] = ((v-mean)-dm)*r*gamma[j] + beta[j]
	}
}

// LayerNormRowErr bounds |LayerNormRow − reference| relative to
// max(1, |gamma|)·(|normalized value| + 1) for rows up to 4096 long whose
// offset is up to 1000 standard deviations (measured worst 2.5e-7).
const LayerNormRowErr = 2e-6
