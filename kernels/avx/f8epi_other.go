//go:build noasm || !amd64

package avx

func f8Epilogue(acc *float32, codes *byte, n int, p *F8Epi) int {
	return f8EpilogueGeneric(acc, codes, n, p)
}
