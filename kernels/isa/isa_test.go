package isa

import "testing"

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Level
		warn bool
	}{
		{"", AVX512, false}, {"native", AVX512, false}, {"AVX512", AVX512, false},
		{" avx2 ", AVX2, false}, {"generic", Generic, false}, {"go", Generic, false},
		{"sse4", AVX512, true}, {"avx2,avx512", AVX512, true},
	} {
		got, w := parse(c.in)
		if got != c.want || (w != "") != c.warn {
			t.Errorf("parse(%q) = %v, %q; want %v, warning %v", c.in, got, w, c.want, c.warn)
		}
	}
}
