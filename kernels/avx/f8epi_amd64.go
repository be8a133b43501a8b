//go:build !noasm && amd64

package avx

import "unsafe"

// f8EpilogueAVX512 is the AVX-512 twin of f8EpilogueGeneric (hand-written,
// f8epi_amd64.s) over whole blocks of 16 (n a multiple of 16).
//
//go:noescape
func f8EpilogueAVX512(acc *float32, codes *byte, n int, p *F8Epi) int

func f8Epilogue(acc *float32, codes *byte, n int, p *F8Epi) int {
	if Variant != VariantAVX512 {
		return f8EpilogueGeneric(acc, codes, n, p)
	}
	whole := n &^ 15
	if whole > 0 {
		if done := f8EpilogueAVX512(acc, codes, whole, p); done < whole {
			return done
		}
	}
	if n == whole {
		return n
	}
	tail := *p
	if p.PerLane != 0 {
		tail.MS = (*float32)(unsafe.Add(unsafe.Pointer(p.MS), 4*whole))
		tail.BS = (*float32)(unsafe.Add(unsafe.Pointer(p.BS), 4*whole))
	}
	return whole + f8EpilogueGeneric((*float32)(unsafe.Add(unsafe.Pointer(acc), 4*whole)),
		(*byte)(unsafe.Add(unsafe.Pointer(codes), whole)), n-whole, &tail)
}
