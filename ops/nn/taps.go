package nn

// Taps precompute, once per Conv/ConvTranspose call, which positions every
// kernel offset touches, so that the inner loops are plain strided
// multiply-adds over contiguous rows with no bounds tests.
//
// Along spatial axis i, position p of the "iterated" tensor meets position
// q = p*stride + k*dil - padB of the "other" tensor (Conv iterates over the
// output and reads the input; ConvTranspose iterates over the input and
// scatters into the output).

// tap is one kernel offset: its flat index in the kernel and its runs,
// each a triple (iterated-tensor offset, other-tensor offset, length).
// Along a run the iterated offset advances by 1 and the other by the
// innermost stride. Rows that continue each other in both tensors (full
// rows at stride 1, as in 1x1 convolutions) are merged into one run.
type tap struct {
	k    int64
	runs []int64
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
		t := tap{k: kFlat}
		n := hi[r-1] - lo[r-1]
		s := stride[r-1]
		// walk the outer axes (all but the innermost) with an odometer
		p := append([]int64(nil), lo...)
		for {
			var a, b int64
			for i := 0; i < r; i++ {
				a += p[i] * iterStr[i]
				b += (p[i]*stride[i] + kpos[i]*dil[i] - padB[i]) * otherStr[i]
			}
			if m := len(t.runs); m > 0 && t.runs[m-3]+t.runs[m-1] == a && t.runs[m-2]+t.runs[m-1]*s == b {
				t.runs[m-1] += n // continues the previous run
			} else {
				t.runs = append(t.runs, a, b, n)
			}
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
		for r := 0; r < len(t.runs); r += 3 {
			a, b, n := t.runs[r], t.runs[r+1], t.runs[r+2]
			if s == 1 {
				axpy(y[a:a+n], x[b:b+n], wv)
				continue
			}
			yr := y[a : a+n]
			xr := x[b : b+(n-1)*s+1]
			for j := range yr {
				yr[j] += wv * xr[int64(j)*s]
			}
		}
	}
}

// gatherTaps4 is gatherTaps for four output planes sharing the input
// plane x, with weights w[0..3].
func gatherTaps4(y *[4][]float64, x []float64, w *[4][]float64, taps []tap, s int64) {
	for ti := range taps {
		t := &taps[ti]
		w0, w1, w2, w3 := w[0][t.k], w[1][t.k], w[2][t.k], w[3][t.k]
		for r := 0; r < len(t.runs); r += 3 {
			a, b, n := t.runs[r], t.runs[r+1], t.runs[r+2]
			y0, y1, y2, y3 := y[0][a:a+n], y[1][a:a+n], y[2][a:a+n], y[3][a:a+n]
			if s == 1 {
				xr := x[b : b+n]
				y0, y1, y2, y3 = y0[:len(xr)], y1[:len(xr)], y2[:len(xr)], y3[:len(xr)]
				for j, v := range xr {
					y0[j] += w0 * v
					y1[j] += w1 * v
					y2[j] += w2 * v
					y3[j] += w3 * v
				}
				continue
			}
			xr := x[b : b+(n-1)*s+1]
			for j := range y0 {
				v := xr[int64(j)*s]
				y0[j] += w0 * v
				y1[j] += w1 * v
				y2[j] += w2 * v
				y3[j] += w3 * v
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
		for r := 0; r < len(t.runs); r += 3 {
			a, b, n := t.runs[r], t.runs[r+1], t.runs[r+2]
			xr := x[a : a+n]
			if s == 1 {
				axpy(y[b:b+n], xr, wv)
				continue
			}
			yr := y[b : b+(n-1)*s+1]
			for j, v := range xr {
				yr[int64(j)*s] += wv * v
			}
		}
	}
}

// axpy is y += a·x over len(x) elements, unrolled by four.
func axpy(y, x []float64, a float64) {
	y = y[:len(x)]
	i := 0
	for ; i+4 <= len(x); i += 4 {
		xs, ys := x[i:i+4:i+4], y[i:i+4:i+4]
		ys[0] += a * xs[0]
		ys[1] += a * xs[1]
		ys[2] += a * xs[2]
		ys[3] += a * xs[3]
	}
	for ; i < len(x); i++ {
		y[i] += a * x[i]
	}
}
