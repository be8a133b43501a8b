//go:build !unix

package cpu

func cpuSeconds() float64 { return 0 } // no portable CPU clock: the metric is left out
