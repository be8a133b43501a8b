package avx

// qpoolMaxGeneric is the reference loop of qpoolMax8x32AVX2 (an MR×NR
// accumulator tile whose columns f·PoolGroup + j, f < 4, are the four
// positions of pooled output j's 2×2 window), in place:
//
//	for i < MR, j < PoolGroup:
//		tile[i·NR + j] = max_f tile[i·NR + f·PoolGroup + j]
func qpoolMaxGeneric(tile *[MR * NR]int32) {
	for i := 0; i < MR; i++ {
		for j := 0; j < PoolGroup; j++ {
			v := tile[i*NR+j]
			for f := 1; f < 4; f++ {
				v = max(v, tile[i*NR+f*PoolGroup+j])
			}
			tile[i*NR+j] = v
		}
	}
}
