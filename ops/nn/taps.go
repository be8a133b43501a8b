package nn

// Taps precompute, once per Conv/ConvTranspose call, which positions every
// kernel offset touches, so that the inner loops are plain strided
// multiply-adds over contiguous rows with no bounds tests.
//
// Along spatial axis i, position p of the "iterated" tensor meets position
// q = p*stride + k*dil - padB of the "other" tensor (Conv iterates over the
// output and reads the input; ConvTranspose iterates over the input and
// scatters into the output).

// tap is one kernel offset: its flat index in the kernel, the length of
// its innermost run, and (iterStart, otherStart) flat offsets of each run.
type tap struct {
	k    int64
	n    int64
	rows []int64 // pairs: iterated-tensor offset, other-tensor offset
}

// buildTaps lists the taps of a kernel. iter and other are the spatial
// sizes of the iterated and the other tensor. Kernel offsets that touch
// nothing are left out.
func buildTaps(iter, other, kernel, stride, dil, padB []int64) []tap {
	r := len(kernel)
	iterStr, otherStr := spatialStrides(iter), spatialStrides(other)
	var taps []tap
	kpos := make([]int64, r)
	lo, hi := make([]int64, r), make([]int64, r)
	kSize := prod(kernel)
	for kFlat := int64(0); kFlat < kSize; kFlat++ {
		// kernel multi-index of kFlat
		rem := kFlat
		for i := r - 1; i >= 0; i-- {
			kpos[i] = rem % kernel[i]
			rem /= kernel[i]
		}
		empty := false
		for i := 0; i < r; i++ {
			off := kpos[i]*dil[i] - padB[i]
			lo[i] = max(0, ceilDiv(-off, stride[i]))
			hi[i] = min(iter[i], floorDiv(other[i]-1-off, stride[i])+1)
			if hi[i] <= lo[i] {
				empty = true
			}
		}
		if empty {
			continue
		}
		t := tap{k: kFlat, n: hi[r-1] - lo[r-1]}
		// walk the outer axes (all but the innermost) with an odometer
		p := append([]int64(nil), lo...)
		for {
			var a, b int64
			for i := 0; i < r; i++ {
				a += p[i] * iterStr[i]
				b += (p[i]*stride[i] + kpos[i]*dil[i] - padB[i]) * otherStr[i]
			}
			t.rows = append(t.rows, a, b)
			i := r - 2
			for ; i >= 0; i-- {
				p[i]++
				if p[i] < hi[i] {
					break
				}
				p[i] = lo[i]
			}
			if i < 0 {
				break
			}
		}
		taps = append(taps, t)
	}
	return taps
}

func spatialStrides(d []int64) []int64 {
	s := make([]int64, len(d))
	acc := int64(1)
	for i := len(d) - 1; i >= 0; i-- {
		s[i] = acc
		acc *= d[i]
	}
	return s
}

// gatherTaps adds w[t.k] * x[other] into y[iter] for every tap
// (Conv: y is an output plane, x an input plane).
func gatherTaps(y, x, w []float64, taps []tap, s int64) {
	for ti := range taps {
		t := &taps[ti]
		wv := w[t.k]
		n := t.n
		for r := 0; r < len(t.rows); r += 2 {
			yr := y[t.rows[r] : t.rows[r]+n]
			xi := t.rows[r+1]
			if s == 1 {
				xr := x[xi : xi+n]
				for j, v := range xr {
					yr[j] += wv * v
				}
				continue
			}
			xr := x[xi : xi+(n-1)*s+1]
			for j := range yr {
				yr[j] += wv * xr[int64(j)*s]
			}
		}
	}
}

// scatterTaps adds w[t.k] * x[iter] into y[other] for every tap
// (ConvTranspose: x is an input plane, y an output plane).
func scatterTaps(y, x, w []float64, taps []tap, s int64) {
	for ti := range taps {
		t := &taps[ti]
		wv := w[t.k]
		n := t.n
		for r := 0; r < len(t.rows); r += 2 {
			xr := x[t.rows[r] : t.rows[r]+n]
			yi := t.rows[r+1]
			yr := y[yi : yi+(n-1)*s+1]
			for j, v := range xr {
				yr[int64(j)*s] += wv * v
			}
		}
	}
}
