package accuracy

import "sort"

// Classes compares classifier outputs given as rows of scores (one row per
// sample, C classes each).
type Classes struct {
	Samples int
	// Top1Agree: samples whose arg max is the same on both sides.
	Top1Agree int
	// TopKOverlap: mean share of the reference's top-k classes found in the
	// candidate's top-k.
	K           int
	TopKOverlap float64
	// With labels (-1 entries are skipped): correct predictions per side.
	Labeled, RefCorrect, GotCorrect int
}

// CompareClasses compares rows of C scores; labels may be nil.
func CompareClasses(ref, got []float64, c, k int, labels []int) Classes {
	out := Classes{K: k}
	if c <= 0 {
		return out
	}
	rows := min(len(ref), len(got)) / c
	overlap := 0.0
	for i := 0; i < rows; i++ {
		r, g := ref[i*c:(i+1)*c], got[i*c:(i+1)*c]
		out.Samples++
		ar, ag := ArgMax(r), ArgMax(g)
		if ar == ag {
			out.Top1Agree++
		}
		tr, tg := TopK(r, k), TopK(g, k)
		in := map[int]bool{}
		for _, x := range tg {
			in[x] = true
		}
		hit := 0
		for _, x := range tr {
			if in[x] {
				hit++
			}
		}
		if len(tr) > 0 {
			overlap += float64(hit) / float64(len(tr))
		}
		if i < len(labels) && labels[i] >= 0 {
			out.Labeled++
			if ar == labels[i] {
				out.RefCorrect++
			}
			if ag == labels[i] {
				out.GotCorrect++
			}
		}
	}
	if out.Samples > 0 {
		out.TopKOverlap = overlap / float64(out.Samples)
	}
	return out
}

// Top1Rate is the share of samples whose top-1 class agrees.
func (c Classes) Top1Rate() float64 { return ratio(c.Top1Agree, c.Samples) }

// RefAccuracy and GotAccuracy are the accuracies against the labels.
func (c Classes) RefAccuracy() float64 { return ratio(c.RefCorrect, c.Labeled) }
func (c Classes) GotAccuracy() float64 { return ratio(c.GotCorrect, c.Labeled) }

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// ArgMax is the index of the first largest value (-1 for an empty row).
func ArgMax(x []float64) int {
	best := -1
	for i, v := range x {
		if best < 0 || v > x[best] {
			best = i
		}
	}
	return best
}

// TopK returns the indices of the k largest values, largest first (ties by index).
func TopK(x []float64, k int) []int {
	idx := make([]int, len(x))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return x[idx[a]] > x[idx[b]] })
	if k < len(idx) {
		idx = idx[:k]
	}
	return idx
}
