package cpu

import (
	"github.com/kilnml/kiln/kernels/avx"
	"github.com/kilnml/kiln/kernels/winograd"
)

// winogradSplit chooses how a Winograd conv's work becomes items for th
// workers: tiles per chunk (a multiple of 16, at most maxChunk) and the
// number of output-channel splits per chunk (each split transforms the
// chunk's inputs again). With many 16-tile groups per worker, the largest
// chunks and no split. With few (batch 1: 1–13 groups), every candidate
// is played out as kernels/parallel hands items out (playSpans),
// under a cost model in units of one 16-tile, one-channel, one-row slice
// of the GEMMs (~10 ns; a partial group costs by its tiles there): the
// input transform of a group and channel costs ~15 of them (gathers), the
// output transform of a group and row ~20, an item ~100 (calls, scratch). The first candidate within 2% of the best
// makespan wins (fewer, larger items first). ResNet-50's 28×28 layers
// (49 tiles: chunks of 32 + 17) left a worker idle a third of the time.
func winogradSplit(tiles, c, m, th, maxChunk int) (chunk, nsplit int) {
	const lanes = winograd.Lanes
	groups := (tiles + lanes - 1) / lanes
	maxG := max(1, maxChunk/lanes)
	if th <= 1 || groups >= 8*th {
		return min(maxG, groups) * lanes, 1
	}
	strips := (m + avx.MR - 1) / avx.MR
	var cost []int
	free := make([]int, th)
	best, bestG, bestS := -1, 1, 1
	for ng := min(maxG, groups); ng >= 1; ng-- {
		for ns := 1; ns <= min(4, strips); ns++ {
			rows := (strips + ns - 1) / ns * avx.MR
			cost = cost[:0]
			for p := 0; p < groups; p += ng { // items in Do's order: chunk, then split
				gc := min(ng, groups-p)
				tc := min(ng*lanes, tiles-p*lanes) // the GEMMs cost by tile, the transforms by group
				for s := 0; s < ns; s++ {
					if r := min(rows, m-s*rows); r > 0 {
						cost = append(cost, (tc*c*r+lanes-1)/lanes+gc*(15*c+20*r)+100)
					}
				}
			}
			span := playSpans(cost, free)
			if best < 0 || span*50 < best*49 {
				best, bestG, bestS = span, ng, ns
			}
		}
	}
	return bestG * lanes, bestS
}

// playSpans returns the makespan of items of the given costs on
// len(free) workers as kernels/parallel hands them out: worker w runs the
// w-th contiguous run of items front to back, then takes the last items
// of the others' runs; whichever worker is free first takes next.
func playSpans(cost, free []int) int {
	th, n := len(free), len(cost)
	var lo, hi [16]int
	if th > len(lo) {
		th = len(lo) // a model of the first 16 workers is close enough
	}
	for w := 0; w < th; w++ {
		lo[w], hi[w], free[w] = w*n/th, (w+1)*n/th, 0
	}
	for {
		w := 0
		for i := 1; i < th; i++ {
			if free[i] < free[w] {
				w = i
			}
		}
		item := -1
		if lo[w] < hi[w] {
			item, lo[w] = lo[w], lo[w]+1
		}
		for d := 1; item < 0 && d < th; d++ {
			if v := (w + d) % th; lo[v] < hi[v] {
				hi[v]--
				item = hi[v]
			}
		}
		if item < 0 {
			break
		}
		free[w] += cost[item]
	}
	span := 0
	for _, f := range free[:th] {
		span = max(span, f)
	}
	return span
}
