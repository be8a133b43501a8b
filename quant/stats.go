package quant

import (
	"fmt"
	"math"
)

// MinMax returns the minimum and maximum of x per scale group (axis PerTensor:
// one group; blockSize 0: per channel of axis; else per block), the input of
// Asymmetric. NaNs are ignored; a group with no other value gets [0, 0].
func MinMax(x []float32, dims []int64, axis, blockSize int) (min, max []float32, err error) {
	l, err := newLayout(dims, axis, blockSize)
	if err != nil {
		return nil, nil, err
	}
	if int64(len(x)) != l.n {
		return nil, nil, fmt.Errorf("quant: %d values for dims %v (%d elements)", len(x), dims, l.n)
	}
	k := l.groups()
	min, max = make([]float32, k), make([]float32, k)
	seen := make([]bool, k)
	l.walk(func(start, count int64, g0, gstep int) {
		g := g0
		for _, v := range x[start : start+count] {
			switch {
			case v != v:
			case !seen[g]:
				min[g], max[g], seen[g] = v, v, true
			case v < min[g]:
				min[g] = v
			case v > max[g]:
				max[g] = v
			}
			g += gstep
		}
	})
	return min, max, nil
}

// Amax returns max |x| per scale group (see MinMax), the input of Symmetric.
func Amax(x []float32, dims []int64, axis, blockSize int) ([]float32, error) {
	min, max, err := MinMax(x, dims, axis, blockSize)
	if err != nil {
		return nil, err
	}
	for i := range max {
		max[i] = float32(math.Max(math.Abs(float64(min[i])), math.Abs(float64(max[i]))))
	}
	return max, nil
}
