package engine

import (
	"fmt"
	"strings"
)

// Precision is the arithmetic a layer runs in.
type Precision uint8

const (
	FP32 Precision = iota
	FP16
	BF16
	INT8
	FP8
)

var precisionNames = [...]string{"fp32", "fp16", "bf16", "int8", "fp8"}

func (p Precision) String() string {
	if int(p) < len(precisionNames) {
		return precisionNames[p]
	}
	return fmt.Sprintf("precision(%d)", p)
}

// ParsePrecision reads fp32, fp16, bf16, int8, fp8 (any case).
func ParsePrecision(s string) (Precision, error) {
	for i, n := range precisionNames {
		if strings.EqualFold(s, n) {
			return Precision(i), nil
		}
	}
	return 0, fmt.Errorf("unknown precision %q (want fp32, fp16, bf16, int8 or fp8)", s)
}
