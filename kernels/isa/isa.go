// Package isa says which instruction-set level kiln's CPU kernels may use:
// the best the CPU has (read once from golang.org/x/sys/cpu by the kernel
// packages), capped by the KILN_CPU_ISA environment variable, so that one
// machine can run, test and time the paths an older CPU would take:
//
//	KILN_CPU_ISA=avx512 (or unset, or "native"): everything the CPU has
//	KILN_CPU_ISA=avx2:   no AVX-512 (AVX2+FMA and the AVX2 INT8 kernel)
//	KILN_CPU_ISA=generic: the portable Go twins only (as -tags noasm)
//
// The cap only removes levels; it never enables one the CPU lacks.
package isa

import (
	"fmt"
	"os"
	"strings"
)

// Level is an instruction-set level, ordered.
type Level int

const (
	Generic Level = iota
	AVX2
	AVX512
)

func (l Level) String() string {
	return [...]string{"generic", "avx2", "avx512"}[l]
}

// Env is the environment variable that caps the level.
const Env = "KILN_CPU_ISA"

var capped, warning = parse(os.Getenv(Env))

// parse reads KILN_CPU_ISA; a value it does not know leaves the level
// uncapped and says so through Warning.
func parse(v string) (Level, string) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "native", "avx512":
		return AVX512, ""
	case "avx2":
		return AVX2, ""
	case "generic", "go", "none":
		return Generic, ""
	}
	return AVX512, fmt.Sprintf("%s=%q is not one of avx512, avx2, generic: ignored", Env, v)
}

// Allows says whether kernels may use level l (the CPU must also have it).
func Allows(l Level) bool { return l <= capped }

// Warning is a message for the user when KILN_CPU_ISA could not be read,
// else "".
func Warning() string { return warning }
